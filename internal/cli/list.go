package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/NationTech/harmony-agent/launch"
)

type listOptions struct{ clusterOptions }

func newListCmd(g *globalOptions) *cobra.Command {
	opts := &listOptions{}
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List every app harmony launched on the cluster",
		Long: `List every app harmony launched on the cluster (harmony's runtime, or the one --kubeconfig and
--context name): its folder, namespace, and how many of its objects are ready, as helm list -A
lists releases. status and down in an app's folder show and remove one.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := opts.validate(); err != nil {
				return err
			}
			cfg, err := opts.cluster(cmd.Context(), g, false)
			var rd *runtimeDown
			if errors.As(err, &rd) && errors.Is(err, errNothingInstalled) {
				fmt.Fprintf(opts.Output.chatter(g), "%s is not installed: nothing is launched\n", rd.state.name)
				if opts.Output.json() {
					return printJSON(g.Stdout, []launch.ListedApp{})
				}
				return nil
			}
			if err != nil {
				return err
			}
			eng, err := launch.NewEngine(cfg)
			if err != nil {
				return err
			}
			apps, err := eng.List(cmd.Context())
			if err != nil {
				return err
			}
			if opts.Output.json() {
				return printJSON(g.Stdout, apps)
			}
			if len(apps) == 0 {
				fmt.Fprintln(g.Stdout, "nothing launched: harmony launch in a repository launches its app")
				return nil
			}
			w := tabwriter.NewWriter(g.Stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "APP\tNAMESPACE\tREADY")
			for _, a := range apps {
				fmt.Fprintf(w, "%s\t%s\t%d/%d\n", printable(shortHome(a.Folder)), a.Namespace, a.Ready, a.Objects)
			}
			return w.Flush()
		},
	}
	opts.bind(cmd)
	_ = cmd.Flags().MarkHidden("namespace") // every namespace is listed
	return cmd
}

// shortHome writes a folder under the home folder as ~/….
func shortHome(dir string) string {
	home, err := os.UserHomeDir()
	if err != nil || home == "" || home == "/" {
		return dir
	}
	if rel, err := filepath.Rel(home, dir); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return filepath.Join("~", rel)
	}
	return dir
}
