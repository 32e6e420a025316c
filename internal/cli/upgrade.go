package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/NationTech/harmony-agent/bootstrap"
)

type runtimeUpgradeOptions struct {
	To         string
	AllowMinor bool
	DryRun     bool
	Timeout    time.Duration
	Output     string
	Abandon    bool
}

func (o *runtimeUpgradeOptions) validate() error {
	if err := checkK3sVersion("to", &o.To, false); err != nil {
		return err
	}
	if err := checkTimeout(o.Timeout); err != nil {
		return err
	}
	if o.Output != "" && o.Output != "json" {
		return &usageError{fmt.Errorf("--output %q: only json is supported", o.Output)}
	}
	if o.Abandon && o.DryRun {
		return &usageError{errors.New("--abandon and --dry-run: choose one")}
	}
	return nil
}

func (o *runtimeUpgradeOptions) args(op string) []string {
	args := []string{"runtime", op, "--timeout", o.Timeout.String()}
	if o.To != "" {
		args = append(args, "--to", o.To)
	}
	if o.AllowMinor {
		args = append(args, "--allow-minor")
	}
	if o.DryRun {
		args = append(args, "--dry-run")
	}
	if o.Output != "" {
		args = append(args, "-o", o.Output)
	}
	if o.Abandon {
		args = append(args, "--abandon")
	}
	return args
}

func newRuntimeUpgradeCmd(g *globalOptions) *cobra.Command {
	opts := &runtimeUpgradeOptions{}
	cmd := &cobra.Command{
		Use:        "upgrade",
		Short:      "Move the runtime to the newest allowed patch, rolling back by itself if it fails",
		SuggestFor: []string{"update"},
		Long: `Refresh the signed runtime manifest, pick the newest version the policy allows (a patch
of the installed minor; the next minor only with --allow-minor; never older), download and verify
it, then stop → switch → start → wait for /readyz, a Ready node and k3s's own kube-system
deployments (those that were available before: a launched app's deployments never count).
Any failure switches back to the previous version and waits until it is healthy again. The data
directory is never touched; the previous version is kept for 'harmony runtime rollback'.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := opts.validate(); err != nil {
				return err
			}
			return runtimeSwitchRun(cmd.Context(), g, "upgrade", opts, func(ctx context.Context, rt bootstrap.Runtime) (bootstrap.UpgradeResult, error) {
				return rt.Upgrade(ctx, bootstrap.UpgradeOptions{To: opts.To, AllowMinor: opts.AllowMinor, DryRun: opts.DryRun, Timeout: opts.Timeout})
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.To, "to", "", "version to move to (default: the newest the policy allows)")
	f.BoolVar(&opts.AllowMinor, "allow-minor", false, "allow the next Kubernetes minor version (one at a time)")
	f.BoolVar(&opts.DryRun, "dry-run", false, "say what would happen and change nothing")
	f.DurationVar(&opts.Timeout, "timeout", bootstrap.DefaultTimeout, "how long to wait for each version to become healthy")
	f.StringVarP(&opts.Output, "output", "o", "", "output format: json")
	return cmd
}

func newRuntimeRollbackCmd(g *globalOptions) *cobra.Command {
	opts := &runtimeUpgradeOptions{}
	cmd := &cobra.Command{
		Use:   "rollback",
		Short: "Go back to the version before the last upgrade, with the same health check",
		Long: `Switch the runtime back to the version the last upgrade replaced (harmony keeps its files until
the next successful upgrade), and wait until it is healthy; if it is not, the current version is
restored. When an upgrade was interrupted, this finishes going back.

--abandon ends an interrupted upgrade or rollback that cannot be finished (its way back keeps
failing) without touching the runtime: the record of it is removed, the runtime stays set to
whichever version it is on, and harmony runtime status shows that version's state.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := opts.validate(); err != nil {
				return err
			}
			return runtimeSwitchRun(cmd.Context(), g, "rollback", opts, func(ctx context.Context, rt bootstrap.Runtime) (bootstrap.UpgradeResult, error) {
				if opts.Abandon {
					return abandonSwitch(rt)
				}
				return rt.Rollback(ctx, bootstrap.RollbackOptions{DryRun: opts.DryRun, Timeout: opts.Timeout})
			})
		},
	}
	f := cmd.Flags()
	f.BoolVar(&opts.DryRun, "dry-run", false, "say what would happen and change nothing")
	f.DurationVar(&opts.Timeout, "timeout", bootstrap.DefaultTimeout, "how long to wait for each version to become healthy")
	f.StringVarP(&opts.Output, "output", "o", "", "output format: json")
	f.BoolVar(&opts.Abandon, "abandon", false, "end an interrupted upgrade or rollback that cannot finish, leaving the runtime as it is")
	return cmd
}

// abandonSwitch ends an unfinished switch without acting on it.
func abandonSwitch(rt bootstrap.Runtime) (bootstrap.UpgradeResult, error) {
	res := bootstrap.UpgradeResult{Op: "rollback"}
	a, ok := rt.(interface {
		AbandonSwitch() (*bootstrap.Journal, error)
	})
	if !ok {
		return res, errors.New("this runtime has no upgrades to abandon")
	}
	j, err := a.AbandonSwitch()
	if err != nil {
		return res, err
	}
	if j == nil {
		res.Abandoned = "no interrupted upgrade or rollback: nothing to abandon"
		return res, nil
	}
	res.Runtime, res.From, res.To = j.Runtime, j.From, j.To
	res.Abandoned = fmt.Sprintf("the interrupted %s of %s (%s → %s, stopped at %q) is abandoned: the runtime was left as it is; "+
		"harmony runtime status shows its version and health", j.Op, j.Runtime, j.From, j.To, j.Phase)
	return res, nil
}

func runtimeSwitchRun(ctx context.Context, g *globalOptions, op string, opts *runtimeUpgradeOptions,
	run func(context.Context, bootstrap.Runtime) (bootstrap.UpgradeResult, error)) error {
	rt, err := newRuntime(g, "auto")
	if err != nil {
		return err
	}
	if why := rt.NeedsRoot(op); why != "" {
		return rerunWithSudo(ctx, g, why, opts.args(op))
	}
	if err := checkHome(); err != nil {
		return err
	}
	res, err := run(ctx, rt)
	if err != nil {
		return err
	}
	if opts.Output == "json" {
		return printJSON(g.Stdout, res)
	}
	printSwitchResult(g.out(), g.Stderr, res)
	return nil
}

func printSwitchResult(out, notes io.Writer, res bootstrap.UpgradeResult) {
	for _, w := range res.Warnings {
		fmt.Fprintf(notes, "note: %s\n", printable(w))
	}
	if res.Abandoned != "" {
		fmt.Fprintln(out, res.Abandoned)
		return
	}
	if res.Recovered != "" && res.Op == "rollback" {
		fmt.Fprintln(out, res.Recovered)
		return
	}
	switch {
	case res.To == "":
		fmt.Fprintf(out, "%s %s is the newest version the policy allows (runtime manifest serial %d): nothing to do\n", res.Runtime, res.From, res.ManifestSerial)
	case res.DryRun:
		fmt.Fprintf(out, "would %s %s %s → %s (dry run: nothing changed):\n", res.Op, res.Runtime, res.From, res.To)
		for i, s := range res.Steps {
			fmt.Fprintf(out, "  %d. %s\n", i+1, printable(s))
		}
	case res.Op == "upgrade":
		fmt.Fprintf(out, "%s upgraded %s → %s and healthy; %s is kept: harmony runtime rollback goes back to it\n", res.Runtime, res.From, res.To, res.From)
	default:
		fmt.Fprintf(out, "%s rolled back %s → %s and healthy\n", res.Runtime, res.From, res.To)
	}
	if res.Held != "" {
		fmt.Fprintf(out, "newer, held back by the policy: %s\n", printable(strings.TrimSpace(res.Held)))
	}
}
