package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/NationTech/harmony-agent/internal/buildinfo"
)

type versionOptions struct {
	Output outputFlag
}

func newVersionCmd(g *globalOptions) *cobra.Command {
	opts := &versionOptions{}
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print harmony's version, commit, build date, Go version and platform",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(_ *cobra.Command, _ []string) error {
			if err := opts.Output.validate(); err != nil {
				return err
			}
			return versionRun(g, opts)
		},
	}
	opts.Output.bind(cmd, true)
	return cmd
}

func versionRun(g *globalOptions, opts *versionOptions) error {
	info := buildinfo.Get()
	if opts.Output.json() {
		return printJSON(g.Stdout, info)
	}
	_, err := fmt.Fprintf(g.Stdout, "harmony %s\n  commit:   %s\n  built:    %s\n  go:       %s\n  platform: %s/%s\n",
		info.Version, info.Commit, info.Date, info.GoVersion, info.OS, info.Arch)
	return err
}
