package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/rest"

	"github.com/NationTech/harmony-agent/installer"
	"github.com/NationTech/harmony-agent/internal/hint"
	"github.com/NationTech/harmony-agent/manifests"
)

// k3sSwitcher lets the shared switch engine move k3s between versions of the versioned layout.
type k3sSwitcher struct{ k *K3s }

func (s k3sSwitcher) Stop(ctx context.Context) error { return s.k.supervisor().Stop(ctx) }

// Start starts the active version. k3s writes its kubeconfig each time it starts, so the one
// left by the previous process is removed first: the health check then talks to what the new
// process wrote, never to a stale file.
func (s k3sSwitcher) Start(ctx context.Context) error {
	if err := removeIfExists(s.k.Paths.KubeconfigFile()); err != nil {
		return err
	}
	return s.k.supervisor().Start(ctx)
}

func (s k3sSwitcher) Activate(_ context.Context, version string) error {
	if !fileExists(filepath.Join(s.k.Paths.VersionDir(version), "k3s")) {
		return fmt.Errorf("k3s %s is not in %s", version, s.k.Paths.VersionsDir())
	}
	return replaceSymlink(version, s.k.Paths.CurrentLink())
}

func (s k3sSwitcher) Baseline(ctx context.Context) Health {
	if ok, _ := s.k.supervisor().Running(ctx); !ok {
		return Health{}
	}
	cfg, err := restConfig(s.k.Paths.KubeconfigFile())
	if err != nil {
		return Health{}
	}
	cfg.Timeout = 5 * time.Second
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return Baseline(ctx, cfg)
}

func (s k3sSwitcher) WaitHealthy(ctx context.Context, timeout time.Duration, want Health) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if want.API {
		if err := s.k.waitAPI(ctx, timeout); err != nil {
			return err
		}
	}
	if want.Node {
		if err := s.k.waitNode(ctx, timeout); err != nil {
			return err
		}
	}
	err := WaitHealth(ctx, timeout, want, func() (*rest.Config, error) { return restConfig(s.k.Paths.KubeconfigFile()) }, s.k.exited)
	if err != nil && errors.Is(err, context.DeadlineExceeded) {
		return s.k.notReady("k3s's own deployments that were available before were not", timeout, err)
	}
	if err == nil {
		// With nothing else to wait for, k3s must at least still run.
		if err = s.k.exited(ctx); err == nil {
			if ok, _ := s.k.supervisor().Running(ctx); !ok {
				err = fmt.Errorf("%w: k3s is not running", ErrNotReady)
			}
		}
	}
	return err
}

func (s k3sSwitcher) Healthy(ctx context.Context, want Health) bool {
	if ok, _ := s.k.supervisor().Running(ctx); !ok {
		return false
	}
	if want.API && !s.k.healthy(ctx) {
		return false
	}
	cfg, err := restConfig(s.k.Paths.KubeconfigFile())
	if err != nil {
		return !want.API
	}
	cfg.Timeout = 2 * time.Second
	return CheckHealth(ctx, cfg, want) == nil
}

// Finish remembers the version the switch left (for rollback) and removes every other older
// version: the previous version's files are kept until the next successful switch.
func (s k3sSwitcher) Finish(_ context.Context, j Journal) error {
	if err := replaceSymlink(j.From, s.k.Paths.PreviousLink()); err != nil {
		return err
	}
	entries, err := os.ReadDir(s.k.Paths.VersionsDir())
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if _, err := manifests.ParseVersion(e.Name()); err != nil || !e.IsDir() || e.Name() == j.From || e.Name() == j.To {
			continue
		}
		errs = append(errs, os.RemoveAll(filepath.Join(s.k.Paths.VersionsDir(), e.Name())))
	}
	return errors.Join(errs...)
}

// switcher returns the switch engine for k3s.
func (k *K3s) switcher(timeout time.Duration) *Switch {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &Switch{
		Runtime: "k3s", JournalPath: k.Paths.Journal(), LockPath: k.Paths.SwitchLock(),
		Switcher: k3sSwitcher{k}, Progress: k.Progress, Out: k.Out, Timeout: timeout, PauseAt: k.PauseAt,
	}
}

// PendingSwitch returns an unfinished upgrade or rollback, without acting on it.
func (k *K3s) PendingSwitch() (*Journal, error) { return k.switcher(0).Pending() }

// AbandonSwitch ends an unfinished upgrade or rollback without acting on it (rollback --abandon);
// nil when there was none.
func (k *K3s) AbandonSwitch() (*Journal, error) { return k.switcher(0).Abandon() }

// SwitchRunning reports whether a harmony process is upgrading or rolling back the runtime now.
func (k *K3s) SwitchRunning() bool { return k.switcher(0).Running() }

// Recover finishes or reverts an upgrade or rollback that a killed process left unfinished; nil
// when there was none.
func (k *K3s) Recover(ctx context.Context) (*Recovery, error) {
	return k.recoverWithin(ctx, DefaultTimeout)
}

// recoverWithin is Recover with each wait for health bounded by timeout (the command's --timeout).
func (k *K3s) recoverWithin(ctx context.Context, timeout time.Duration) (*Recovery, error) {
	rec, err := k.switcher(timeout).Recover(ctx)
	if err == nil && rec != nil {
		_, _ = k.mergeKubeconfig(false)
	}
	return rec, err
}

// refreshManifest fetches the newest signed runtime manifest (unless NoUpdateCheck) and returns
// the newest this user trusts. A replayed older manifest is an error: an upgrade decided on it
// would be the attacker's choice. Other fetch failures are warnings: the manifest harmony has
// still decides.
func (k *K3s) refreshManifest(ctx context.Context) (*manifests.Manifest, []string, error) {
	var warnings []string
	switch {
	case k.NoUpdateCheck:
		warnings = append(warnings, "HARMONY_NO_UPDATE_CHECK is set: the runtime manifest was not refreshed")
	case k.Trust.Verifier == nil || len(k.Trust.Verifier.KeyIDs()) == 0:
		warnings = append(warnings, "this harmony trusts no release key: only the built-in runtime manifest is used")
	default:
		fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		f := *k.Fetcher
		f.Retries = 1
		if _, err := k.Trust.Fetch(fctx, &f, k.Mirror); err != nil {
			if errors.Is(err, manifests.ErrRollback) {
				return nil, nil, fmt.Errorf("refresh the runtime manifest: %w", err)
			}
			warnings = append(warnings, fmt.Sprintf("could not refresh the runtime manifest (%v): using the one harmony has", err))
		}
	}
	m, err := k.Trust.Current()
	if err != nil {
		return nil, nil, err
	}
	if w := k.Trust.FreezeWarning(m); w != "" {
		warnings = append(warnings, w)
	}
	return m, warnings, nil
}

// Upgrade moves k3s to the newest version the policy allows (or opts.To): it refreshes the signed
// manifest, downloads and verifies the new binary into the versioned layout, and switches to it
// with the journal and the automatic rollback of Switch. The data directory is never touched.
func (k *K3s) Upgrade(ctx context.Context, opts UpgradeOptions) (UpgradeResult, error) {
	res := UpgradeResult{Runtime: "k3s", Op: "upgrade", DryRun: opts.DryRun}
	inst, err := k.Detect(ctx)
	if err != nil {
		return res, err
	}
	if inst.Foreign != "" {
		return res, k.foreignError(inst)
	}
	if !inst.Installed {
		return res, hint.With(fmt.Errorf("k3s: %w", ErrNotInstalled), "install it with: harmony bootstrap")
	}
	res.From = inst.Version
	if !opts.DryRun {
		rec, err := k.recoverWithin(ctx, opts.Timeout)
		if err != nil {
			return res, err
		}
		if rec != nil {
			res.Recovered = rec.Message()
			if inst, err = k.Detect(ctx); err != nil {
				return res, err
			}
			res.From = inst.Version
		}
	}
	m, warnings, err := k.refreshManifest(ctx)
	if err != nil {
		return res, err
	}
	res.ManifestSerial, res.Warnings = m.Serial, warnings
	rel, held, err := PlanUpgrade(m, inst.Version, opts, k.Platform)
	res.Held = held
	if err != nil || rel.Version.IsZero() {
		return res, err
	}
	to := rel.Version.String()
	res.To = to
	bin, err := rel.Binary(k.Mirror, k.Platform)
	if err != nil {
		return res, hint.With(err, "this version cannot be installed here; run 'harmony runtime versions'")
	}
	res.Steps = []string{"download " + bin.Name, "verify sha256 " + bin.SHA256, "install into " + k.Paths.VersionDir(to),
		"stop " + res.From, "switch to " + to, "start " + to, "health: /readyz, node Ready, and k3s's own kube-system deployments that were available before",
		"on any failure: back to " + res.From + ", started and checked the same way"}
	if opts.DryRun {
		return res, nil
	}
	var cached string
	existed := isDir(k.Paths.VersionDir(to))
	prepare := []Step{
		{Name: "download", Run: func(ctx context.Context) error {
			r, err := k.Fetcher.Fetch(ctx, bin)
			cached = r.Path
			return err
		}},
		{Name: "verify", Run: func(context.Context) error {
			fmt.Fprintf(k.Out, "k3s %s: sha256 %s matches the pinned digest\n", to, bin.SHA256)
			return nil
		}},
		{Name: "install", Run: func(context.Context) error {
			return installer.InstallVerified(cached, bin.SHA256, filepath.Join(k.Paths.VersionDir(to), "k3s"), 0o755)
		}, Undo: func(context.Context) error {
			if existed {
				return nil
			}
			return os.RemoveAll(k.Paths.VersionDir(to))
		}},
	}
	if _, err := k.switcher(opts.Timeout).Run(ctx, "upgrade", res.From, to, prepare...); err != nil {
		return res, err
	}
	res.Changed = true
	if _, err := k.mergeKubeconfig(false); err != nil {
		return res, fmt.Errorf("kubeconfig: %w", err)
	}
	return res, nil
}

// Rollback moves k3s back to the version the last upgrade (or rollback) left, with the same
// journal, health check and automatic revert as an upgrade.
func (k *K3s) Rollback(ctx context.Context, opts RollbackOptions) (UpgradeResult, error) {
	res := UpgradeResult{Runtime: "k3s", Op: "rollback", DryRun: opts.DryRun}
	if !opts.DryRun {
		rec, err := k.recoverWithin(ctx, opts.Timeout)
		if err != nil {
			return res, err
		}
		if rec != nil {
			// The interrupted switch was the thing to roll back.
			res.Recovered, res.From, res.To = rec.Message(), rec.Journal.From, rec.Version
			res.Changed = !rec.Completed
			return res, nil
		}
	}
	inst, err := k.Detect(ctx)
	if err != nil {
		return res, err
	}
	if !inst.Installed {
		return res, hint.With(fmt.Errorf("k3s: %w", ErrNotInstalled), "install it with: harmony bootstrap")
	}
	res.From = inst.Version
	prev, err := os.Readlink(k.Paths.PreviousLink())
	if err != nil || prev == inst.Version || !fileExists(filepath.Join(k.Paths.VersionDir(prev), "k3s")) {
		return res, hint.With(fmt.Errorf("k3s %s: %w", inst.Version, ErrNoPrevious),
			"harmony keeps the version before the last upgrade; there has been no upgrade since the install")
	}
	res.To = prev
	res.Steps = []string{"stop " + res.From, "switch to " + prev, "start " + prev, "health: /readyz, node Ready, and k3s's own kube-system deployments that were available before",
		"on any failure: back to " + res.From}
	if opts.DryRun {
		return res, nil
	}
	if _, err := k.switcher(opts.Timeout).Run(ctx, "rollback", res.From, prev); err != nil {
		return res, err
	}
	res.Changed = true
	if _, err := k.mergeKubeconfig(false); err != nil {
		return res, fmt.Errorf("kubeconfig: %w", err)
	}
	return res, nil
}
