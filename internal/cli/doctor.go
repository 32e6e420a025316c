package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/NationTech/harmony-agent/bootstrap"
	"github.com/NationTech/harmony-agent/bootstrap/preflight"
	"github.com/NationTech/harmony-agent/internal/colour"
	"github.com/NationTech/harmony-agent/internal/hint"
)

type doctorOptions struct {
	Runtime string
	Output  outputFlag
	// Checks are the checks to run (all when empty).
	Checks []string
}

func (o *doctorOptions) validate() error {
	if err := o.Output.validate(); err != nil {
		return err
	}
	return checkIDs("", o.Checks)
}

// checkIDs refuses a name that is no check's (a usage error listing them); flag names the flag
// the names came from ("" for arguments).
func checkIDs(flag string, ids []string) error {
	for _, id := range ids {
		if !preflight.Known(id) && !(flag != "" && id == "all") {
			err := fmt.Errorf("unknown check %q", id)
			if flag != "" {
				err = fmt.Errorf("%s: %w", flag, err)
			}
			return &usageError{hint.With(err, "the checks: "+strings.Join(preflight.IDs(), ", "))}
		}
	}
	return nil
}

func newDoctorCmd(g *globalOptions) *cobra.Command {
	opts := &doctorOptions{}
	cmd := &cobra.Command{
		Use:   "doctor [CHECK...]",
		Short: "Check this machine for what harmony needs, and say how to fix what is wrong",
		Long: `Check this machine for everything harmony needs, from the download to the launch: the
mirror, proxy and clock; for k3s its kernel (cgroups, modules, settings), SELinux, AppArmor,
nm-cloud-setup, the firewall, the init system (and WSL); for k3d the Docker engine, which one it
is, its memory and CPUs; then the ports, another Kubernetes, free disk and the kubeconfig. Each
check says what it saw and, when something is wrong, why it matters and the command that fixes
it. Name checks to run only those.

doctor changes nothing and downloads nothing: it asks HARMONY_MIRROR for the time only when
one is set, within a second. It runs as you; what only root can read, it says. A failing check
makes it exit 1; 'harmony bootstrap' runs the blocking ones before it downloads anything.`,
		Args: cobra.ArbitraryArgs,
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
			return preflight.IDs(), cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Checks = args
			if err := opts.validate(); err != nil {
				return err
			}
			return doctorRun(cmd.Context(), g, opts)
		},
	}
	cmd.Flags().StringVar(&opts.Runtime, "runtime", "auto", "the runtime to check for: auto (k3s on Linux, k3d elsewhere), k3s or k3d")
	opts.Output.bind(cmd, false)
	return cmd
}

func doctorRun(ctx context.Context, g *globalOptions, opts *doctorOptions) error {
	rt, err := bootstrap.Choose(opts.Runtime)
	if errors.Is(err, bootstrap.ErrUnknownRuntime) || errors.Is(err, bootstrap.ErrUnsupported) {
		return &usageError{err}
	} else if err != nil {
		return err
	}
	again := "harmony doctor"
	if opts.Runtime != "auto" {
		again += " --runtime " + rt
	}
	for _, id := range opts.Checks {
		if other := preflight.For(id); other != "" && other != rt {
			return &usageError{hint.With(fmt.Errorf("the check %q is about %s, and this machine's runtime is %s", id, other, rt),
				"check it for "+other+": harmony doctor --runtime "+other+" "+id)}
		}
	}
	rep := preflight.Run(ctx, preflight.NewSystem(), preflight.Options{Runtime: rt, Only: opts.Checks})
	if opts.Output.json() {
		if err := printJSON(g.Stdout, rep); err != nil {
			return err
		}
	} else {
		printReport(g.Stdout, rep)
	}
	failed := rep.Failed()
	if len(failed) == 0 {
		return nil
	}
	var ids []string
	for _, f := range failed {
		ids = append(ids, f.ID)
	}
	return hint.With(fmt.Errorf("%d of %d checks failed: %s", len(failed), len(rep.Checks), strings.Join(ids, ", ")),
		"run each failed check's fix, then: "+again+" "+strings.Join(ids, " "))
}

// printReport prints the findings as a table: a line a check, then why and the fix under each
// one that is not ok.
func printReport(w io.Writer, rep preflight.Report) {
	c := colour.For(w)
	fmt.Fprintf(w, "harmony doctor: %s on %s\n", rep.Runtime, rep.Platform)
	width := len("CHECK")
	for _, f := range rep.Checks {
		width = max(width, len(f.ID))
	}
	indent := strings.Repeat(" ", width+2+len("skipped")+2)
	fmt.Fprintf(w, "%-*s  %-7s  %s\n", width, "CHECK", "RESULT", "SEEN")
	for _, f := range rep.Checks {
		res := fmt.Sprintf("%-7s", f.Result)
		switch f.Result {
		case preflight.OK:
			res = c.OK(res)
		case preflight.Warn:
			res = c.Warn(res)
		case preflight.Fail:
			res = c.Fail(res)
		}
		fmt.Fprintf(w, "%-*s  %s  %s\n", width, f.ID, res, printable(f.Seen))
		if f.Result == preflight.Warn || f.Result == preflight.Fail {
			fmt.Fprintf(w, "%swhy: %s\n", indent, printable(f.Why))
			if f.Fix != "" {
				fmt.Fprintf(w, "%sfix: %s\n", indent, printable(f.Fix))
			}
		}
		if f.NeedsRoot != "" {
			fmt.Fprintf(w, "%sroot: only root can read %s: sudo harmony doctor %s reads it\n", indent, f.NeedsRoot, f.ID)
		}
	}
	plural := func(n int, one, many string) string {
		if n == 1 {
			return one
		}
		return many
	}
	warns := rep.Count(preflight.Warn)
	fmt.Fprintf(w, "%d %s: %d ok, %d %s, %d failed, %d skipped\n", len(rep.Checks), plural(len(rep.Checks), "check", "checks"),
		rep.Count(preflight.OK), warns, plural(warns, "warning", "warnings"), rep.Count(preflight.Fail), rep.Count(preflight.Skipped))
}

// preflightChecks runs the blocking checks before a bootstrap installs a runtime: a failure stops
// it before anything is downloaded, naming the check and its fix; warnings are printed. An
// installed runtime is not checked again (harmony doctor does that).
func preflightChecks(ctx context.Context, g *globalOptions, rt bootstrap.Runtime, opts *bootstrapOptions) error {
	if slices.Contains(opts.SkipChecks, "all") {
		return nil
	}
	if inst, err := rt.Detect(ctx); err == nil && inst.Installed {
		return nil
	}
	var ports []preflight.Port
	if rt.Name() == "k3d" {
		http, https := max(opts.HTTPPort, 0), max(opts.HTTPSPort, 0)
		if http == 0 {
			http = 80
		}
		if https == 0 {
			https = 443
		}
		ports = []preflight.Port{{Number: http, What: "the cluster's HTTP", Needed: true}, {Number: https, What: "the cluster's HTTPS", Needed: true}}
	}
	rep := preflight.Run(ctx, preflight.NewSystem(), preflight.Options{Runtime: rt.Name(), Blocking: true, Skip: opts.SkipChecks, Ports: ports})
	out := g.Stderr // beside the runtime's progress
	if g.Quiet {
		out = io.Discard
	}
	c := colour.For(out)
	for _, f := range rep.Checks {
		if f.Result == preflight.Warn {
			fmt.Fprintf(out, "%s %s: %s: %s", c.Warn("warning:"), f.ID, printable(f.Seen), printable(f.Why))
			if f.Fix != "" {
				fmt.Fprintf(out, "; fix: %s", printable(f.Fix))
			}
			fmt.Fprintln(out)
		}
	}
	failed := rep.Failed()
	if len(failed) == 0 {
		return nil
	}
	first := failed[0]
	hints := []string{first.Why}
	if first.Fix != "" {
		hints = append(hints, "fix: "+first.Fix)
	}
	var ids, others []string
	for _, f := range failed {
		ids = append(ids, f.ID)
		if f.ID != first.ID {
			others = append(others, f.ID)
		}
	}
	if len(others) > 0 {
		hints = append(hints, strings.Join(others, ", ")+" failed too (harmony doctor shows every check)")
	}
	hints = append(hints, "to go on anyway: harmony bootstrap --skip-checks "+strings.Join(ids, ","))
	return hint.With(&preflight.Error{Finding: first}, hints...)
}
