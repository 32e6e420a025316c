package cli

import "github.com/spf13/cobra"

// Commands whose issues have not landed yet. Each says so and exits non-zero.

func newLaunchCmd(_ *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "launch [DIR]",
		Short: "Find a repository's manifests, apply them and wait until they run",
		Args:  usageArgs(cobra.MaximumNArgs(1)),
		RunE:  func(*cobra.Command, []string) error { return notImplemented("launch") },
	}
}

func newDownCmd(_ *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "down [DIR]",
		Short: "Remove everything harmony launched for a repository",
		Args:  usageArgs(cobra.MaximumNArgs(1)),
		RunE:  func(*cobra.Command, []string) error { return notImplemented("down") },
	}
}

func newStatusCmd(_ *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "status [DIR]",
		Short: "Show the state of each object harmony launched for a repository",
		Args:  usageArgs(cobra.MaximumNArgs(1)),
		RunE:  func(*cobra.Command, []string) error { return notImplemented("status") },
	}
}
