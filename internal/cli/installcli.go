package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/NationTech/harmony-agent/bootstrap"
)

type installCLIOptions struct {
	Dir string
}

func newRuntimeInstallCLICmd(g *globalOptions) *cobra.Command {
	opts := &installCLIOptions{}
	cmd := &cobra.Command{
		Use:   "install-cli k3d",
		Short: "Install the pinned, verified k3d CLI (harmony itself never needs it)",
		Args: usageArgs(func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 || args[0] != "k3d" {
				return fmt.Errorf("install-cli installs k3d: harmony runtime install-cli k3d")
			}
			return nil
		}),
		RunE: func(cmd *cobra.Command, _ []string) error { return installCLIRun(cmd.Context(), g, opts) },
	}
	cmd.Flags().StringVar(&opts.Dir, "dir", "", "install into this directory (default: ~/.local/bin; %LOCALAPPDATA%\\harmony\\bin on Windows)")
	return cmd
}

func installCLIRun(ctx context.Context, g *globalOptions, opts *installCLIOptions) error {
	dir := opts.Dir
	if dir == "" {
		d, err := bootstrap.DefaultCLIDir()
		if err != nil {
			return err
		}
		dir = d
	}
	t, err := trust()
	if err != nil {
		return err
	}
	path, version, err := bootstrap.InstallK3dCLI(ctx, bootstrap.Config{
		Home: t.Home, Trust: t, Out: g.Stderr, Quiet: g.Quiet, NoUpdateCheck: os.Getenv("HARMONY_NO_UPDATE_CHECK") != "",
	}, dir)
	if err != nil {
		return err
	}
	fmt.Fprintf(g.out(), "k3d %s installed at %s (sha256 matches the pinned digest)\n", version, path)
	if !onPath(dir) {
		fmt.Fprintf(g.out(), "note: %s is not on your PATH\n", dir)
	}
	return nil
}

func onPath(dir string) bool {
	for _, p := range filepath.SplitList(os.Getenv("PATH")) {
		if filepath.Clean(p) == filepath.Clean(dir) || strings.EqualFold(filepath.Clean(p), filepath.Clean(dir)) && os.PathSeparator == '\\' {
			return true
		}
	}
	return false
}
