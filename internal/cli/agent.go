package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/NationTech/harmony-agent/bootstrap"
	"github.com/NationTech/harmony-agent/installer"
	"github.com/NationTech/harmony-agent/internal/buildinfo"
	"github.com/NationTech/harmony-agent/internal/notice"
)

type agentOptions struct {
	Once    bool
	Timeout time.Duration
	Output  string
}

func (o *agentOptions) validate() error {
	if o.Timeout <= 0 {
		return &usageError{fmt.Errorf("--timeout must be positive, got %s", o.Timeout)}
	}
	if o.Output != "" && o.Output != "json" {
		return &usageError{fmt.Errorf("--output %q: only json is supported", o.Output)}
	}
	return nil
}

func newAgentCmd(g *globalOptions) *cobra.Command {
	opts := &agentOptions{}
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "The unattended agent that keeps the runtime patched (--once runs one cycle)",
		Long: `The agent keeps the local runtime patched without you: 'harmony bootstrap' schedules
'harmony agent --once' daily (a systemd timer, or cron), and each cycle refreshes the signed
runtime manifest, applies an allowed patch when auto-patching is on (the default) and the
maintenance window is open, and logs what it checked, decided and did ('harmony agent log').
Without --once it shows the agent's settings, schedule and last run.`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := opts.validate(); err != nil {
				return err
			}
			if opts.Once {
				return agentOnceRun(cmd.Context(), g, opts)
			}
			return agentShowRun(g, opts)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&opts.Once, "once", false, "run one cycle now")
	f.DurationVar(&opts.Timeout, "timeout", bootstrap.DefaultTimeout, "how long an upgrade waits for each version to become healthy")
	f.StringVarP(&opts.Output, "output", "o", "", "output format: json")
	cmd.AddCommand(newAgentEnableCmd(g), newAgentDisableCmd(g), newAgentLogCmd(g))
	return cmd
}

// agentHost returns the runtime with its agent, or an error when this runtime has none.
func agentHost(g *globalOptions) (bootstrap.Runtime, bootstrap.AgentHost, error) {
	rt, err := newRuntime(g, "auto")
	if err != nil {
		return nil, nil, err
	}
	host, ok := any(rt).(bootstrap.AgentHost)
	if !ok {
		return nil, nil, fmt.Errorf("the %s runtime has no agent", rt.Name())
	}
	return rt, host, nil
}

func agentOnceRun(ctx context.Context, g *globalOptions, opts *agentOptions) error {
	rt, host, err := agentHost(g)
	if err != nil {
		return err
	}
	if needsRoot(rt) {
		args := []string{"agent", "--once", "--timeout", opts.Timeout.String()}
		if opts.Output != "" {
			args = append(args, "-o", opts.Output)
		}
		return rerunWithSudo(ctx, g, "patch k3s in /var/lib/harmony and write the agent's log", args)
	}
	a := &bootstrap.Agent{Runtime: rt, Paths: host.AgentPaths(), Timeout: opts.Timeout, SelfUpdateNotice: agentSelfUpdateNotice()}
	e, err := a.Once(ctx)
	if opts.Output == "json" {
		if perr := printJSON(g.Stdout, e); perr != nil {
			return perr
		}
	} else {
		printAgentEntry(g, e)
	}
	return err
}

func printAgentEntry(g *globalOptions, e bootstrap.AgentEntry) {
	for _, c := range e.Checked {
		fmt.Fprintf(g.out(), "checked: %s\n", printable(c))
	}
	fmt.Fprintf(g.out(), "decided: %s\n", printable(e.Decision))
	if e.Did != "" {
		fmt.Fprintf(g.out(), "did: %s\n", printable(e.Did))
	}
	fmt.Fprintf(g.out(), "result: %s\n", printable(e.Result))
}

func agentShowRun(g *globalOptions, opts *agentOptions) error {
	_, host, err := agentHost(g)
	if err != nil {
		return err
	}
	st := bootstrap.ReadAgentStatus(host.AgentPaths(), host.AgentSchedule())
	if opts.Output == "json" {
		return printJSON(g.Stdout, st)
	}
	w := tabwriter.NewWriter(g.Stdout, 0, 0, 2, ' ', 0)
	printAgentStatus(w, st)
	return w.Flush()
}

func printAgentStatus(w *tabwriter.Writer, st bootstrap.AgentStatus) {
	row := func(k, v string) { fmt.Fprintf(w, "%s\t%s\n", k, v) }
	auto := "on"
	if !st.AutoPatch {
		auto = "off (harmony agent enable)"
	}
	row("auto-patching", auto)
	if st.Window != "" {
		row("maintenance window", st.Window+" (local time)")
	}
	sched := st.Schedule
	if sched == "" {
		sched = "not scheduled (harmony agent enable)"
	}
	row("agent schedule", sched)
	if st.LastRun.IsZero() {
		row("agent last run", "never")
		return
	}
	last := fmt.Sprintf("%s: %s (%s)", st.LastRun.Local().Format(time.DateTime), st.Result, st.Decision)
	if st.Error != "" {
		last += ": " + st.Error
	}
	row("agent last run", last)
}

type agentEnableOptions struct{ Window string }

func newAgentEnableCmd(g *globalOptions) *cobra.Command {
	opts := &agentEnableOptions{}
	cmd := &cobra.Command{
		Use:   "enable",
		Short: "Turn auto-patching on (and schedule the agent if it is not)",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.Window != "" {
				if _, _, err := bootstrap.ParseWindow(opts.Window); err != nil {
					return &usageError{fmt.Errorf("--window: %w", err)}
				}
			}
			return agentSettingsRun(cmd.Context(), g, true, opts.Window)
		},
	}
	cmd.Flags().StringVar(&opts.Window, "window", "", "maintenance window in local time, HH:MM-HH:MM (e.g. 02:00-05:00); empty: any time")
	return cmd
}

func newAgentDisableCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "disable",
		Short: "Turn auto-patching off (the agent still checks and logs what is available)",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return agentSettingsRun(cmd.Context(), g, false, "")
		},
	}
}

func agentSettingsRun(ctx context.Context, g *globalOptions, on bool, window string) error {
	rt, host, err := agentHost(g)
	if err != nil {
		return err
	}
	if needsRoot(rt) {
		args := []string{"agent", "disable"}
		if on {
			args = []string{"agent", "enable", "--window", window}
		}
		return rerunWithSudo(ctx, g, "change the agent's settings in /etc/harmony", args)
	}
	p := host.AgentPaths()
	s, err := bootstrap.LoadAgentSettings(p.Config)
	if err != nil {
		return err
	}
	s.AutoPatch = &on
	if on {
		s.Window = window
	}
	if err := bootstrap.SaveAgentSettings(p.Config, s); err != nil {
		return err
	}
	if !on {
		fmt.Fprintf(g.out(), "auto-patching is off (%s); the agent still logs what is available: harmony agent log\n", p.Config)
		return nil
	}
	how := host.AgentSchedule()
	if how == "" {
		how, err = host.InstallAgent(ctx)
		var none *bootstrap.NoSchedulerError
		if errors.As(err, &none) {
			fmt.Fprintf(g.out(), "auto-patching is on (%s), but %v\n", p.Config, err)
			return nil
		}
		if err != nil {
			return err
		}
	} else if err := host.RescheduleAgent(ctx); err != nil {
		return err
	}
	when := "any time"
	if window != "" {
		when = "within " + window + " local time"
	}
	fmt.Fprintf(g.out(), "auto-patching is on, %s; the agent runs from %s\n", when, how)
	return nil
}

type agentLogOptions struct {
	Lines  int
	Output string
}

func newAgentLogCmd(g *globalOptions) *cobra.Command {
	opts := &agentLogOptions{}
	cmd := &cobra.Command{
		Use:   "log",
		Short: "Show what the agent checked, decided and did, newest last",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			if opts.Output != "" && opts.Output != "json" {
				return &usageError{fmt.Errorf("--output %q: only json is supported", opts.Output)}
			}
			_, host, err := agentHost(g)
			if err != nil {
				return err
			}
			entries, err := bootstrap.ReadAgentLog(host.AgentPaths().Log())
			if err != nil {
				return err
			}
			if opts.Lines > 0 && len(entries) > opts.Lines {
				entries = entries[len(entries)-opts.Lines:]
			}
			if opts.Output == "json" {
				if entries == nil {
					entries = []bootstrap.AgentEntry{}
				}
				return printJSON(g.Stdout, entries)
			}
			if len(entries) == 0 {
				fmt.Fprintln(g.Stdout, "the agent has not run yet (harmony agent --once runs it now)")
				return nil
			}
			for _, e := range entries {
				line := fmt.Sprintf("%s  %-11s %s", e.Time.Local().Format(time.DateTime), e.Result, e.Decision)
				if e.Did != "" {
					line += "; " + e.Did
				}
				if e.Error != "" {
					line += ": " + e.Error
				}
				fmt.Fprintln(g.Stdout, printable(line))
			}
			return nil
		},
	}
	cmd.Flags().IntVarP(&opts.Lines, "lines", "n", 20, "show the last N cycles (0: all)")
	// -n is --namespace everywhere else in harmony: it still works here, saying so.
	_ = cmd.Flags().MarkShorthandDeprecated("lines", "use --lines (-n means --namespace elsewhere in harmony)")
	cmd.Flags().SetOutput(g.Stderr) // that note, never in the JSON on stdout
	cmd.Flags().StringVarP(&opts.Output, "output", "o", "", "output format: json")
	return cmd
}

// agentSelfUpdateNotice is the agent's check for a newer harmony, for its log: the agent keeps
// the runtime patched, never harmony itself (a package manager or the user does that). None for
// development builds or with HARMONY_NO_UPDATE_CHECK set.
func agentSelfUpdateNotice() func(context.Context) (string, error) {
	if os.Getenv("HARMONY_NO_UPDATE_CHECK") != "" || notice.Newer("0.0.0", buildinfo.Version) == "" {
		return nil
	}
	return func(ctx context.Context) (string, error) {
		home, err := installer.Home()
		if err != nil {
			return "", err
		}
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		rel, err := latestRelease(ctx, home)
		if err != nil {
			return "", err
		}
		if msg := notice.Newer(buildinfo.Version, rel.Version.String()); msg != "" {
			return msg, nil
		}
		return rel.StaleNewest(time.Now(), installer.Mirror()), nil
	}
}
