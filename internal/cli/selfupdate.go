package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/NationTech/harmony-agent/bootstrap"
	"github.com/NationTech/harmony-agent/installer"
	"github.com/NationTech/harmony-agent/internal/buildinfo"
)

type selfUpdateOptions struct {
	Version string
	Check   bool
	Yes     bool
	Output  outputFlag
}

func newSelfUpdateCmd(g *globalOptions) *cobra.Command {
	opts := &selfUpdateOptions{}
	cmd := &cobra.Command{
		Use:        "self-update",
		Short:      "Update harmony to the newest release, verified like the first install",
		SuggestFor: []string{"update", "upgrade"},
		Long: `Find the newest harmony release on the mirror (from its signed checksums.txt, no API call),
verify its signature with the keys built into this binary and the archive's SHA-256, check that
the new binary runs and reports the expected version, then replace this binary atomically. Any
failure leaves the current harmony as it was.

A harmony installed by a package manager (Homebrew, Scoop, a .deb, .rpm or .apk) is upgraded by
that package manager: self-update prints its command instead. Going back to an older version
needs --version and a confirmation (or --yes).`,
		Example: `  harmony self-update
  harmony self-update --check
  harmony self-update --version v1.3.2 --yes`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := opts.Output.validate(); err != nil {
				return err
			}
			return selfUpdateRun(cmd.Context(), g, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Version, "version", "", "install this release (e.g. v1.4.0) instead of the newest; allows going back")
	f.BoolVar(&opts.Check, "check", false, "only report whether an update is available; change nothing")
	f.BoolVarP(&opts.Yes, "yes", "y", false, "do not ask before going back to an older version")
	opts.Output.bind(cmd, false)
	return cmd
}

// newSelfUpdate returns the updater for the running binary.
func newSelfUpdate(g *globalOptions) (*installer.SelfUpdate, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find the harmony binary: %w", err)
	}
	if resolved, err := filepath.EvalSymlinks(exe); err == nil {
		exe = resolved
	}
	t, err := trust()
	if err != nil {
		return nil, err
	}
	mirror := installer.Mirror()
	if err := installer.CheckURL(mirror); err != nil {
		return nil, &usageError{fmt.Errorf("%s: %w", installer.MirrorEnv, err)}
	}
	f := installer.NewFetcher(t.Home)
	f.Progress = installer.NewProgress(g.Stderr, g.Quiet)
	f.OnRetry = installer.PrintRetries(g.Stderr, g.Quiet)
	return &installer.SelfUpdate{
		Fetcher: f, Verifier: t.Verifier, Mirror: mirror, Exe: exe, Current: buildinfo.Version,
		Root: os.Getenv(bootstrap.RootEnv),
	}, nil
}

func selfUpdateRun(ctx context.Context, g *globalOptions, opts *selfUpdateOptions) error {
	su, err := newSelfUpdate(g)
	if err != nil {
		return err
	}
	c, err := su.Check(ctx, opts.Version)
	if err != nil {
		return err
	}
	if c.Stale != "" && !opts.Output.json() {
		// Before the verdict, which it qualifies ("the newest release: nothing to do").
		fmt.Fprintln(g.Stderr, "warning: "+printable(c.Stale))
	}
	if opts.Check {
		if opts.Output.json() {
			return printJSON(g.Stdout, c)
		}
		fmt.Fprintln(g.Stdout, printable(describeCheck(c)))
		return nil
	}
	if !c.Newer && !c.Downgrade {
		if opts.Output.json() {
			return printJSON(g.Stdout, c)
		}
		fmt.Fprintln(g.Stdout, printable(describeCheck(c)))
		return nil
	}
	if c.Downgrade && !opts.Yes {
		if !confirm(g, fmt.Sprintf("go back from harmony %s to v%s? [y/N] ", displayVersion(c.Current), c.Target)) {
			return &usageError{fmt.Errorf("going back from %s to v%s: %w; add --yes to confirm", displayVersion(c.Current), c.Target, errNotConfirmed)}
		}
	}
	if err := su.Apply(ctx, c); err != nil {
		return err
	}
	if opts.Output.json() {
		return printJSON(g.Stdout, c)
	}
	fmt.Fprintf(g.Stdout, "harmony updated: v%s → v%s (%s)\n", strings.TrimPrefix(c.Current, "v"), c.Target, su.Exe)
	return nil
}

func describeCheck(c installer.UpdateCheck) string {
	var s string
	switch {
	case c.Newer:
		s = fmt.Sprintf("harmony v%s is available (you have %s): harmony self-update", c.Target, displayVersion(c.Current))
		if c.ManagedBy != "" {
			s = fmt.Sprintf("harmony v%s is available (you have %s): %s", c.Target, displayVersion(c.Current), c.UpgradeCommand)
		}
	case c.Downgrade:
		s = fmt.Sprintf("v%s is older than this harmony %s: harmony self-update --version v%s --yes goes back", c.Target, displayVersion(c.Current), c.Target)
	default:
		s = fmt.Sprintf("harmony %s is the newest release: nothing to do", displayVersion(c.Current))
	}
	if c.Note != "" {
		s += "\n" + c.Note
	}
	return s
}

func displayVersion(v string) string {
	if v == "dev" || strings.HasPrefix(v, "v") {
		return v
	}
	return "v" + v
}

// errNotConfirmed is a refused or impossible confirmation (a usage error: exit 2).
var errNotConfirmed = errors.New("not confirmed")
