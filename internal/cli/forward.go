package cli

import (
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/NationTech/harmony-agent/launch"
)

type forwardOptions struct{ clusterOptions }

func newForwardCmd(g *globalOptions) *cobra.Command {
	opts := &forwardOptions{}
	cmd := &cobra.Command{
		Use:        "forward [DIR]",
		Short:      "Reach the app's services from this machine until Ctrl-C",
		SuggestFor: []string{"port-forward", "portforward", "expose", "open"},
		Long: `Reach each Service port of the app DIR belongs to from this machine: the ones harmony's runtime
already serves on the host (NodePort and LoadBalancer Services, Ingress rules) are listed with
their URLs; every other port is forwarded through the API server (as kubectl port-forward does;
no kubectl needed) to a local port, the Service's own when it is free (8000 plus it below 1024
without root), else the next free one. Each connection goes to a ready pod of the Service as it
is then, so a pod a rollout replaced is followed. Runs until Ctrl-C.`,
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			proj, eng, err := opts.project(ctx, g, args)
			if err != nil {
				return err
			}
			f, err := eng.Forwards(ctx, proj)
			if err != nil {
				return err
			}
			if opts.Output.json() {
				if err := printJSON(g.Stdout, f.Forwards); err != nil {
					f.Close()
					return err
				}
			} else {
				printForwards(g.Stdout, f.Forwards)
			}
			if len(f.Forwards) == 0 {
				fmt.Fprintf(opts.Output.chatter(g), "%s has no service to reach\n", printable(proj.App))
				return nil
			}
			fmt.Fprintln(opts.Output.chatter(g), "forwarding until Ctrl-C")
			f.Serve(ctx, g.Stderr)
			return nil
		},
	}
	opts.bind(cmd)
	return cmd
}

// printForwards lists where each service answers: the runtime's host URLs first.
func printForwards(w io.Writer, fws []*launch.Forward) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, host := range []bool{true, false} {
		for _, fw := range fws {
			if fw.Host != host {
				continue
			}
			how := fmt.Sprintf("forwarded (port %d)", fw.Port)
			if fw.Host {
				how = "served by the runtime"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", printable(fw.Service), fw.URL, how)
		}
	}
	tw.Flush()
}

type logsOptions struct {
	clusterOptions
	Follow bool
	Tail   int64
	Dir    string
}

func newLogsCmd(g *globalOptions) *cobra.Command {
	opts := &logsOptions{}
	cmd := &cobra.Command{
		Use:   "logs [SERVICE|WORKLOAD]",
		Short: "Print the app's logs, each line prefixed by its workload and container",
		Long: `Print the logs of the pods of the app this folder belongs to (--dir names another folder):
every workload it launched, or the one named (a Service or workload: web, deployment/web,
svc/web). Each line is prefixed by its workload and container. -f keeps printing, following the
pods that replace the old ones (a rollout, a relaunch), until Ctrl-C.`,
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Output.json() {
				return &usageError{errors.New("harmony logs prints the logs as they are: -o json is not one of its formats")}
			}
			ctx := cmd.Context()
			var dir []string
			if opts.Dir != "" {
				dir = []string{opts.Dir}
			}
			proj, eng, err := opts.project(ctx, g, dir)
			if err != nil {
				return err
			}
			o := launch.LogOptions{Follow: opts.Follow, Tail: opts.Tail, Errs: g.Stderr}
			if len(args) == 1 {
				o.Target = args[0]
			}
			err = eng.Logs(ctx, proj, o, g.Stdout)
			if opts.Follow && ctx.Err() != nil {
				return nil // Ctrl-C is how -f ends
			}
			return err
		},
	}
	opts.bind(cmd)
	f := cmd.Flags()
	f.BoolVarP(&opts.Follow, "follow", "f", false, "keep printing, following new pods, until Ctrl-C")
	f.Int64Var(&opts.Tail, "tail", 0, "print only the last N lines of each container's log first (0: all)")
	f.StringVar(&opts.Dir, "dir", "", "the app's folder (default: the current one)")
	_ = f.MarkHidden("output") // logs print as they are: --help must not offer -o json
	return cmd
}
