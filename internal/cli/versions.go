package cli

import (
	"fmt"
	"runtime"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/NationTech/harmony-agent/manifests"
)

type runtimeVersionsOptions struct {
	Output outputFlag
}

func newRuntimeVersionsCmd(g *globalOptions) *cobra.Command {
	opts := &runtimeVersionsOptions{}
	cmd := &cobra.Command{
		Use:   "versions",
		Short: "List the pinned runtime versions and the allowed upgrades",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			if err := opts.Output.validate(); err != nil {
				return err
			}
			return runtimeVersionsRun(g, opts)
		},
	}
	opts.Output.bind(cmd, true)
	return cmd
}

type versionRow struct {
	Version  string `json:"version"`
	Default  bool   `json:"default"`
	Binary   string `json:"binary"`
	Airgap   string `json:"airgap"`
	Image    string `json:"image"`
	Platform string `json:"platform"`
}

type versionsReport struct {
	Serial   int64        `json:"serial"`
	Line     string       `json:"line"`
	Default  string       `json:"default"`
	Policy   string       `json:"policy"`
	K3d      string       `json:"k3d"`
	Releases []versionRow `json:"releases"`
}

// currentManifest returns the newest runtime manifest this user trusts.
func currentManifest() (*manifests.Manifest, error) {
	t, err := trust()
	if err != nil {
		return nil, err
	}
	return t.Current()
}

func runtimeVersionsRun(g *globalOptions, opts *runtimeVersionsOptions) error {
	m, err := currentManifest()
	if err != nil {
		return err
	}
	platform := "linux/" + runtime.GOARCH
	rep := versionsReport{
		Serial: m.Serial, Line: m.K3s.Line, Default: m.K3s.Default.String(), K3d: m.K3d.Version,
		Policy: "patch upgrades within " + m.K3s.Line + "; a minor upgrade only when asked, one at a time; no downgrade unless asked",
	}
	for _, tag := range m.Versions() {
		r, _ := m.Release(tag)
		row := versionRow{Version: tag, Default: tag == rep.Default, Platform: platform, Binary: "pinned", Airgap: "pinned", Image: "pinned"}
		if _, err := r.Binary("", platform); err != nil {
			row.Binary = "unavailable"
		}
		if _, err := r.AirgapImages("", platform); err != nil {
			row.Airgap = "unknown digest"
		}
		if _, err := r.Image.Pinned(); err != nil {
			row.Image = "unknown digest"
		}
		rep.Releases = append(rep.Releases, row)
	}
	if opts.Output.json() {
		return printJSON(g.Stdout, rep)
	}
	w := tabwriter.NewWriter(g.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "k3s line %s (manifest serial %d), k3d %s\n", rep.Line, rep.Serial, rep.K3d)
	fmt.Fprintf(w, "VERSION\tDEFAULT\tBINARY (%s)\tAIR-GAP IMAGES\tNODE IMAGE\n", platform)
	for _, r := range rep.Releases {
		def := ""
		if r.Default {
			def = "*"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", r.Version, def, r.Binary, r.Airgap, r.Image)
	}
	fmt.Fprintf(w, "policy: %s\n", rep.Policy)
	return w.Flush()
}
