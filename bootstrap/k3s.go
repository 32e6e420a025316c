package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/NationTech/harmony-agent/installer"
	"github.com/NationTech/harmony-agent/internal/colour"
	"github.com/NationTech/harmony-agent/internal/hint"
	"github.com/NationTech/harmony-agent/manifests"
)

// DefaultTimeout bounds the wait for the API server and the node.
const DefaultTimeout = 5 * time.Minute

// K3s runs k3s on this Linux machine, installed in harmony's versioned layout.
type K3s struct {
	Paths    Paths
	Mirror   string
	Trust    manifests.Trust
	Fetcher  *installer.Fetcher
	Runner   Runner
	Out      io.Writer
	Progress Progress
	// Platform is os/arch, e.g. linux/amd64.
	Platform string
	// NoUpdateCheck skips fetching a newer signed runtime manifest before an install.
	NoUpdateCheck bool
	// Supervisor, when nil, is detected (systemd, OpenRC, or harmony's own).
	Supervisor Supervisor
	// HarmonyBinary is the harmony the agent's schedule runs; empty means this executable.
	HarmonyBinary string
	// PauseAt is the test-only pause of a switch (PauseEnv).
	PauseAt Phase
}

// NewK3s returns the k3s runtime with harmony's defaults.
func NewK3s(home string, trust manifests.Trust, out io.Writer, quiet bool) *K3s {
	f := installer.NewFetcher(home)
	f.Progress = installer.NewProgress(os.Stderr, quiet)
	f.OnRetry = installer.PrintRetries(os.Stderr, quiet)
	if quiet {
		out = io.Discard
	}
	return &K3s{
		Paths:    SystemPaths(),
		Mirror:   installer.Mirror(),
		Trust:    trust,
		Fetcher:  f,
		Runner:   ExecRunner{},
		Out:      out,
		Progress: LineProgress{W: out},
		Platform: runtime.GOOS + "/" + runtime.GOARCH,
		PauseAt:  Phase(os.Getenv(PauseEnv)),
	}
}

// Name is "k3s".
func (k *K3s) Name() string { return "k3s" }

func (k *K3s) supervisor() Supervisor {
	if k.Supervisor == nil {
		k.Supervisor = DetectSupervisor(k.Paths, k.Runner)
	}
	return k.Supervisor
}

// NeedsPrivileges reports whether installing writes system paths this process cannot write.
func (k *K3s) NeedsPrivileges() bool { return !k.Paths.Prefixed() && !isRoot() }

// NeedsRoot says why op needs root: every k3s operation writes system paths or drives its service.
func (k *K3s) NeedsRoot(op string) string {
	if !k.NeedsPrivileges() {
		return ""
	}
	switch op {
	case "bootstrap":
		return "install k3s into /usr/local/bin and /var/lib/harmony, write /etc/rancher/k3s and start the k3s service"
	case "uninstall":
		return "remove k3s and its service"
	case "upgrade", "rollback":
		return op + " k3s in /var/lib/harmony and restart its service"
	}
	return op + " the k3s service"
}

// Detect reads the versioned layout; it never touches the network.
func (k *K3s) Detect(context.Context) (Installation, error) {
	target, err := os.Readlink(k.Paths.Binary())
	switch {
	case err == nil && strings.Contains(target, "harmony/k3s/current/k3s"):
		v, err := os.Readlink(k.Paths.CurrentLink())
		if err != nil || !fileExists(filepath.Join(k.Paths.VersionDir(v), "k3s")) {
			return Installation{}, nil // a broken install: treated as absent and repaired
		}
		return Installation{Installed: true, Version: v}, nil
	case fileExists(k.Paths.Binary()):
		return Installation{Foreign: fmt.Sprintf("k3s at %s was not installed by harmony", k.Paths.Binary())}, nil
	}
	return Installation{}, nil
}

func (k *K3s) foreignError(inst Installation) error {
	hints := []string{"harmony never replaces a k3s it did not install"}
	if fileExists(k.Paths.UpstreamUninstaller()) {
		hints = append(hints, "to let harmony manage k3s, remove the existing one first: "+k.Paths.UpstreamUninstaller())
	}
	hints = append(hints, "to use the existing k3s as it is: harmony launch --kubeconfig /etc/rancher/k3s/k3s.yaml")
	return hint.With(fmt.Errorf("%s: %w", inst.Foreign, ErrForeignInstall), hints...)
}

// healthy checks, quickly and locally, that the installed runtime serves.
func (k *K3s) healthy(ctx context.Context) bool {
	if ok, _ := k.supervisor().Running(ctx); !ok {
		return false
	}
	cfg, err := restConfig(k.Paths.KubeconfigFile())
	if err != nil {
		return false
	}
	cfg.Timeout = 2 * time.Second
	if APIReady(ctx, cfg) != nil {
		return false
	}
	ready, err := nodeReady(ctx, cfg)
	return err == nil && ready
}

// Install installs, starts and waits for k3s, then merges the "harmony" kubeconfig context.
// When the pinned version is installed and healthy it does nothing else (and no network).
func (k *K3s) Install(ctx context.Context, opts InstallOptions) (Result, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	inst, err := k.Detect(ctx)
	if err != nil {
		return Result{}, err
	}
	if inst.Foreign != "" {
		return Result{}, k.foreignError(inst)
	}
	if inst.Installed && opts.Version != "" && opts.Version != inst.Version {
		// bootstrap never changes an installed version: a newer one is an upgrade to offer, an
		// older one a rollback or a new start.
		have, err1 := manifests.ParseVersion(inst.Version)
		want, err2 := manifests.ParseVersion(opts.Version)
		if err1 != nil || err2 != nil || want.Compare(have) < 0 {
			return Result{}, hint.With(fmt.Errorf("k3s %s is installed; the older %s was asked for", inst.Version, opts.Version),
				"harmony bootstrap never changes an installed version",
				"to go back to the version before the last upgrade: harmony runtime rollback",
				"to start over: harmony runtime uninstall, then harmony bootstrap --version "+opts.Version)
		}
		fmt.Fprintf(k.Out, "k3s %s is installed and stays: %s is newer, upgrade with: harmony runtime upgrade --to %s\n", inst.Version, opts.Version, opts.Version)
		opts.Version = ""
	}
	if inst.Installed && opts.Expose != nil {
		return k.setExposure(ctx, inst.Version, *opts.Expose, opts)
	}
	if inst.Installed && opts.Version == "" && !opts.Airgap {
		available := k.availablePatch(inst.Version)
		if k.healthy(ctx) {
			k.tellNetwork()
			target, err := k.mergeKubeconfig(opts.SwitchContext)
			return Result{Version: inst.Version, AlreadyHealthy: true, Kubeconfig: target, Available: available}, err
		}
		fmt.Fprintf(k.Out, "k3s %s is installed but not serving: starting it\n", inst.Version)
		res, err := k.run(ctx, inst.Version, k.startSteps(opts), opts)
		res.Available = available
		return res, err
	}
	if inst.Installed && opts.Airgap && opts.Version == "" {
		opts.Version = inst.Version
	}

	// A kubeconfig harmony will refuse to write is refused before anything is installed.
	if kc, err := NewUserKubeconfig(); err != nil {
		return Result{}, err
	} else if err := kc.Check(); err != nil {
		return Result{}, err
	}
	m, err := k.manifest(ctx)
	if err != nil {
		return Result{}, err
	}
	rel := m.DefaultRelease()
	if opts.Version != "" {
		if rel, err = m.Release(opts.Version); err != nil {
			return Result{}, hint.With(err, "run 'harmony runtime versions' for the pinned versions")
		}
	}
	bin, err := rel.Binary(k.Mirror, k.Platform)
	if err != nil {
		return Result{}, hint.With(err, "k3s runs on linux/amd64 and linux/arm64; elsewhere use --runtime k3d")
	}
	var images installer.Artifact
	if opts.Airgap {
		if images, err = rel.AirgapImages(k.Mirror, k.Platform); err != nil {
			return Result{}, hint.With(err, "--airgap needs a pinned digest for the image bundle, and harmony never uses unverified bytes: pick a version that has one ('harmony runtime versions')")
		}
	}
	v := rel.Version.String()
	var cached string
	steps := []Step{
		{Name: "download", Run: func(ctx context.Context) error {
			res, err := k.Fetcher.Fetch(ctx, bin) // hashed while it streams
			cached = res.Path
			return err
		}},
		{Name: "verify", Run: func(context.Context) error {
			// Fetch accepts only bytes matching the pinned digest; say which.
			fmt.Fprintf(k.Out, "k3s %s: sha256 %s matches the pinned digest\n", v, bin.SHA256)
			return nil
		}},
		{Name: "install", Run: func(context.Context) error { return k.place(v, cached, bin.SHA256) }, Undo: func(context.Context) error { return k.unplace(v) }},
	}
	if opts.Airgap {
		steps = append(steps, Step{Name: "air-gap images", Run: func(ctx context.Context) error {
			res, err := k.Fetcher.Fetch(ctx, images)
			if err != nil {
				return err
			}
			return installer.InstallVerified(res.Path, images.SHA256, filepath.Join(k.Paths.AirgapDir(), filepath.Base(images.URL)), 0o644)
		}})
	}
	localOnly := opts.Expose == nil || !*opts.Expose
	if localOnly {
		// Written before the service, which runs it before k3s starts; run again once k3s runs
		// (a host without iptables gets k3s's own then), saying when it cannot work.
		steps = append(steps, Step{Name: "network", Run: func(context.Context) error { return k.writeFirewall() },
			Undo: func(ctx context.Context) error { return k.openUp(context.WithoutCancel(ctx), false) }})
	} else {
		steps = append(steps, Step{Name: "network", Run: func(ctx context.Context) error { return k.openUp(ctx, true) }})
	}
	steps = append(steps, Step{Name: "service", Run: k.supervisor().Install, Undo: k.supervisor().Remove})
	steps = append(steps, Step{Name: "agent", Run: func(ctx context.Context) error {
		how, err := k.InstallAgent(ctx)
		var none *NoSchedulerError
		switch {
		case errors.As(err, &none):
			fmt.Fprintf(k.Out, "note: %v\n", err)
		case errors.Is(err, ErrAgentBinaryUnsafe):
			fmt.Fprintf(k.Out, "note: the agent was not scheduled: %v; install harmony where only root can write (e.g. /usr/local/bin), then: harmony agent enable\n", err)
		case err != nil:
			return err
		default:
			fmt.Fprintf(k.Out, "agent: %s runs 'harmony %s' (harmony agent disable turns auto-patching off)\n", how, AgentCommand)
		}
		return nil
	}, Undo: k.RemoveAgent})
	steps = append(steps, k.startSteps(opts)...)
	if localOnly {
		steps = append(steps, Step{Name: "this machine only", Run: func(ctx context.Context) error {
			_, err := k.keepLocal(ctx)
			return err
		}})
	}
	return k.run(ctx, v, steps, opts)
}

// availablePatch returns the newest version the default policy allows from installed, according
// to the newest manifest harmony has (no network), or "".
func (k *K3s) availablePatch(installed string) string {
	m, err := k.Trust.Current()
	if err != nil {
		return ""
	}
	rel, _, err := PlanUpgrade(m, installed, UpgradeOptions{}, k.Platform)
	if err != nil || rel.Version.IsZero() {
		return ""
	}
	return rel.Version.String()
}

// manifest returns the newest trusted manifest, first fetching a newer signed one unless told
// not to. A manifest that cannot be fetched (missing on the mirror included) is reported, never
// silently skipped, and so is a manifest in use past its expiry (a freeze).
func (k *K3s) manifest(ctx context.Context) (*manifests.Manifest, error) {
	if !k.NoUpdateCheck && k.Trust.Verifier != nil && len(k.Trust.Verifier.KeyIDs()) > 0 {
		fctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		f := *k.Fetcher
		f.Retries = 0
		if _, err := k.Trust.Fetch(fctx, &f, k.Mirror); err != nil {
			fmt.Fprintf(k.Out, "%s no current runtime manifest from %s (%v); using the newest one harmony has\n", colour.For(k.Out).Warn("warning:"), k.Mirror, err)
		}
	}
	m, err := k.Trust.Current()
	if err != nil {
		return nil, err
	}
	if w := k.Trust.FreezeWarning(m); w != "" {
		fmt.Fprintf(k.Out, "%s %s\n", colour.For(k.Out).Warn("warning:"), w)
	}
	return m, nil
}

func (k *K3s) startSteps(opts InstallOptions) []Step {
	var waitCtx context.Context
	var cancel context.CancelFunc
	return []Step{
		{Name: "start", Run: func(ctx context.Context) error {
			waitCtx, cancel = context.WithTimeout(ctx, opts.Timeout)
			return k.supervisor().Start(ctx)
		}, Undo: func(ctx context.Context) error { return k.supervisor().Stop(ctx) }},
		{Name: "API ready", Run: func(context.Context) error { return k.waitAPI(waitCtx, opts.Timeout) }},
		{Name: "node ready", Run: func(context.Context) error {
			defer cancel()
			return k.waitNode(waitCtx, opts.Timeout)
		}},
	}
}

func (k *K3s) run(ctx context.Context, version string, steps []Step, opts InstallOptions) (Result, error) {
	if err := RunSteps(ctx, steps, k.Progress); err != nil {
		return Result{}, err
	}
	target, err := k.mergeKubeconfig(opts.SwitchContext)
	if err != nil {
		return Result{}, fmt.Errorf("kubeconfig: %w", err)
	}
	return Result{Version: version, Kubeconfig: target}, nil
}

// place installs the verified binary in the versioned layout and switches the links to it. The
// bytes are hashed again as they are copied out of the cache.
func (k *K3s) place(version, cached, sha256 string) error {
	dir := k.Paths.VersionDir(version)
	if err := installer.InstallVerified(cached, sha256, filepath.Join(dir, "k3s"), 0o755); err != nil {
		return err
	}
	if err := writeFile(k.Paths.Marker(), "k3s under this directory was installed by harmony\n", 0o644); err != nil {
		return err
	}
	if err := replaceSymlink(version, k.Paths.CurrentLink()); err != nil {
		return err
	}
	rel, err := filepath.Rel(k.Paths.BinDir(), filepath.Join(k.Paths.CurrentLink(), "k3s"))
	if err != nil {
		return err
	}
	if err := replaceSymlink(rel, k.Paths.Binary()); err != nil {
		return err
	}
	for _, tool := range []string{"kubectl", "crictl", "ctr"} {
		link := k.Paths.ToolLink(tool)
		if t, err := os.Readlink(link); err == nil && t != "k3s" {
			continue // someone else's link: never overwritten
		} else if err != nil && fileExists(link) {
			continue // someone else's file: never overwritten
		}
		if err := replaceSymlink("k3s", link); err != nil {
			return err
		}
	}
	if !fileExists(k.Paths.ConfigFile()) {
		if err := writeFile(k.Paths.ConfigFile(), "# k3s configuration (https://docs.k3s.io/installation/configuration); written by harmony\nwrite-kubeconfig-mode: \"0600\"\n", 0o600); err != nil {
			return err
		}
	}
	return nil
}

// unplace reverts place for a fresh install.
func (k *K3s) unplace(version string) error {
	k.removeLinks()
	_ = os.Remove(k.Paths.CurrentLink())
	return os.RemoveAll(k.Paths.VersionDir(version))
}

func (k *K3s) removeLinks() {
	for _, tool := range []string{"kubectl", "crictl", "ctr"} {
		if t, err := os.Readlink(k.Paths.ToolLink(tool)); err == nil && t == "k3s" {
			_ = os.Remove(k.Paths.ToolLink(tool))
		}
	}
	if t, err := os.Readlink(k.Paths.Binary()); err == nil && strings.Contains(t, "harmony/k3s/current/k3s") {
		_ = os.Remove(k.Paths.Binary())
	}
}

func (k *K3s) notReady(what string, timeout time.Duration, cause error) error {
	tail := k.supervisor().LogTail(context.Background(), 15)
	msg := fmt.Sprintf("%s after %s: %v", what, timeout, cause)
	if tail != "" {
		msg += "\nlast lines of the k3s log:\n  " + strings.ReplaceAll(tail, "\n", "\n  ")
	}
	hints := []string{}
	if c := likelyCause(tail); c != "" {
		hints = append(hints, "likely cause: "+c)
	}
	hints = append(hints, "full log: "+k.Paths.Log()+"; retry with a longer --timeout if the machine is slow")
	return hint.With(fmt.Errorf("%w: %s", ErrNotReady, msg), hints...)
}

// exited reports a k3s process that died while harmony waited for it.
func (k *K3s) exited(ctx context.Context) error {
	if _, own := k.supervisor().(*noInit); !own {
		return nil
	}
	if ok, _ := k.supervisor().Running(ctx); ok {
		return nil
	}
	time.Sleep(100 * time.Millisecond) // let the last log lines land
	tail := k.supervisor().LogTail(ctx, 15)
	hints := []string{"full log: " + k.Paths.Log()}
	if c := likelyCause(tail); c != "" {
		hints = append([]string{"likely cause: " + c}, hints...)
	}
	return hint.With(fmt.Errorf("%w: k3s exited right after it started; last lines of its log:\n  %s", ErrNotReady, strings.ReplaceAll(tail, "\n", "\n  ")), hints...)
}

func (k *K3s) waitAPI(ctx context.Context, timeout time.Duration) error {
	err := poll(ctx, 250*time.Millisecond, func() (bool, error, error) {
		if err := k.exited(ctx); err != nil {
			return false, err, nil
		}
		cfg, err := restConfig(k.Paths.KubeconfigFile())
		if err != nil {
			return false, nil, fmt.Errorf("no kubeconfig yet at %s", k.Paths.KubeconfigFile())
		}
		err = APIReady(ctx, cfg)
		return err == nil, nil, err
	})
	if err != nil && errors.Is(err, context.DeadlineExceeded) {
		return k.notReady("the API server was not ready", timeout, err)
	}
	return err
}

func (k *K3s) waitNode(ctx context.Context, timeout time.Duration) error {
	err := poll(ctx, 250*time.Millisecond, func() (bool, error, error) {
		if err := k.exited(ctx); err != nil {
			return false, err, nil
		}
		// Read each time, as waitAPI does: k3s rewrites its kubeconfig as it starts, and a
		// read between its truncation and its write finds nothing yet.
		cfg, err := restConfig(k.Paths.KubeconfigFile())
		if err != nil {
			return false, nil, fmt.Errorf("no kubeconfig yet at %s", k.Paths.KubeconfigFile())
		}
		ok, err := nodeReady(ctx, cfg)
		if err == nil && !ok {
			err = errors.New("no node is Ready yet")
		}
		return ok, nil, err
	})
	if err != nil && errors.Is(err, context.DeadlineExceeded) {
		return k.notReady("the node was not Ready", timeout, err)
	}
	return err
}

func (k *K3s) mergeKubeconfig(switchContext bool) (string, error) {
	raw, err := os.ReadFile(k.Paths.KubeconfigFile())
	if err != nil {
		return "", err
	}
	kc, err := NewUserKubeconfig()
	if err != nil {
		return "", err
	}
	_, err = kc.Merge(raw, switchContext)
	return kc.Path, err
}

// Start starts an installed k3s and waits until it serves.
func (k *K3s) Start(ctx context.Context) error {
	inst, err := k.Detect(ctx)
	if err != nil {
		return err
	}
	if !inst.Installed {
		return hint.With(fmt.Errorf("k3s: %w", ErrNotInstalled), "install it with: harmony bootstrap")
	}
	return RunSteps(ctx, k.startSteps(InstallOptions{Timeout: DefaultTimeout}), k.Progress)
}

// Stop stops k3s.
func (k *K3s) Stop(ctx context.Context) error {
	return k.supervisor().Stop(ctx)
}

// Status reports the runtime's state; it never touches the network beyond the local API.
func (k *K3s) Status(ctx context.Context) (Status, error) {
	inst, err := k.Detect(ctx)
	if err != nil {
		return Status{}, err
	}
	m, err := k.Trust.Current()
	if err != nil {
		return Status{}, err
	}
	st := Status{Runtime: "k3s", Installed: inst.Installed, Version: inst.Version, ForeignInstall: inst.Foreign,
		Policy: "patch upgrades within " + m.K3s.Line, Supervisor: k.supervisor().Name(),
		ManifestSerial: m.Serial, ManifestExpires: m.Expires, ManifestLastSeen: k.Trust.LastSeen()}
	if w := k.Trust.FreezeWarning(m); w != "" {
		st.Warnings = append(st.Warnings, w)
	}
	if !inst.Installed {
		return st, nil
	}
	st.Running, st.PID = k.supervisor().Running(ctx)
	st.Network = k.Network()
	if cfg, err := restConfig(k.Paths.KubeconfigFile()); err == nil && st.Running {
		cfg.Timeout = 2 * time.Second
		st.APIHealthy = APIReady(ctx, cfg) == nil
		st.NodeReady, _ = nodeReady(ctx, cfg)
	}
	st.NewerPatch = k.availablePatch(inst.Version)
	st.PendingSwitch, _ = k.PendingSwitch()
	agent := ReadAgentStatus(k.AgentPaths(), k.AgentSchedule())
	st.Agent = &agent
	return st, nil
}

// Kubeconfig returns the runtime's kubeconfig with the context named "harmony".
func (k *K3s) Kubeconfig(context.Context) ([]byte, error) {
	raw, err := os.ReadFile(k.Paths.KubeconfigFile())
	if err != nil {
		return nil, hint.With(fmt.Errorf("read the k3s kubeconfig: %w", err), "is k3s installed and started? run: harmony bootstrap")
	}
	return harmonyKubeconfig(raw)
}

// Uninstall stops k3s and removes what harmony installed; purge also removes k3s's data and config.
func (k *K3s) Uninstall(ctx context.Context, purge bool) error {
	inst, err := k.Detect(ctx)
	if err != nil {
		return err
	}
	if inst.Foreign != "" {
		return k.foreignError(inst)
	}
	if !inst.Installed && !fileExists(k.Paths.VersionsDir()) {
		return hint.With(fmt.Errorf("k3s: %w", ErrNotInstalled), "nothing to uninstall")
	}
	sup := k.supervisor()
	errs := []error{sup.Stop(ctx), sup.Remove(ctx), k.RemoveAgent(ctx), k.openUp(ctx, false), removeIfExists(k.Paths.ExposedMarker())}
	k.removeLinks()
	errs = append(errs, os.RemoveAll(k.Paths.VersionsDir()))
	kc, err := NewUserKubeconfig()
	if err == nil {
		err = kc.Remove()
	}
	errs = append(errs, err)
	if purge {
		errs = append(errs, os.RemoveAll(k.Paths.DataDir()), os.RemoveAll(k.Paths.ConfigDir()), removeIfExists(k.Paths.Log()), os.RemoveAll(k.Paths.AgentDir()))
	}
	return errors.Join(errs...)
}
