package cli

import "github.com/spf13/cobra"

func newRuntimeCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "runtime",
		Short: "Inspect and manage the local Kubernetes runtime",
		Args:  usageArgs(cobra.NoArgs),
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newRuntimeVersionsCmd(g))
	for _, name := range []string{"status", "start", "stop", "restart", "uninstall"} {
		cmd.AddCommand(&cobra.Command{
			Use:   name,
			Short: name + " the runtime (not implemented yet)",
			Args:  usageArgs(cobra.NoArgs),
			RunE:  func(*cobra.Command, []string) error { return notImplemented("runtime " + name) },
		})
	}
	return cmd
}
