package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/NationTech/harmony-agent/bootstrap"
)

func newRuntimeCmd(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "runtime",
		Short: "Inspect and manage the local Kubernetes runtime",
		Args:  usageArgs(cobra.NoArgs),
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(
		newRuntimeVersionsCmd(g),
		newRuntimeStatusCmd(g),
		newRuntimeLifecycleCmd(g, "start", "Start the installed runtime and wait until it serves",
			func(ctx context.Context, rt bootstrap.Runtime) error { return rt.Start(ctx) }),
		newRuntimeLifecycleCmd(g, "stop", "Stop the runtime",
			func(ctx context.Context, rt bootstrap.Runtime) error { return rt.Stop(ctx) }),
		newRuntimeLifecycleCmd(g, "restart", "Stop, then start the runtime",
			func(ctx context.Context, rt bootstrap.Runtime) error {
				if err := rt.Stop(ctx); err != nil {
					return err
				}
				return rt.Start(ctx)
			}),
		newRuntimeUpgradeCmd(g),
		newRuntimeRollbackCmd(g),
		newRuntimeUninstallCmd(g),
		newRuntimeInstallCLICmd(g),
	)
	return cmd
}
