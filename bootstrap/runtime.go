// Package bootstrap installs and runs harmony's local Kubernetes runtime. A Runtime (k3s on
// Linux; k3d later) is installed by an ordered list of named steps (download, verify, install,
// start, API ready, node ready, kubeconfig), so progress, logs and rollback follow the same list.
// bootstrap hands the rest of harmony a kubeconfig and nothing else.
package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"runtime"
	"time"

	"github.com/NationTech/harmony-agent/internal/hint"
	"github.com/NationTech/harmony-agent/manifests"
)

// Runtime is one way to run a local Kubernetes.
type Runtime interface {
	// Name is "k3s" or "k3d".
	Name() string
	// Detect reports what is installed, without touching the network.
	Detect(ctx context.Context) (Installation, error)
	// Install installs (if needed), starts and waits for the runtime, reporting each step.
	Install(ctx context.Context, opts InstallOptions) (Result, error)
	// Start, Stop manage a runtime that is installed.
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	// Status reports installation, process and API health.
	Status(ctx context.Context) (Status, error)
	// Kubeconfig returns the runtime's kubeconfig with its context named "harmony".
	Kubeconfig(ctx context.Context) ([]byte, error)
	// Uninstall removes the runtime; purge also removes its data.
	Uninstall(ctx context.Context, purge bool) error
	// Upgrade moves to the newest version the policy allows (or opts.To), with the switch
	// journal, the health check and the automatic rollback of Switch.
	Upgrade(ctx context.Context, opts UpgradeOptions) (UpgradeResult, error)
	// Rollback moves back to the version before the last upgrade, the same way.
	Rollback(ctx context.Context, opts RollbackOptions) (UpgradeResult, error)
	// Recover finishes or reverts a switch a killed process left unfinished (nil: none).
	Recover(ctx context.Context) (*Recovery, error)
	// NeedsRoot says why op ("bootstrap", "start", "stop", "restart", "uninstall") needs root
	// privileges this process lacks, or "" when it can run as it is.
	NeedsRoot(op string) string
}

// Config is what every runtime needs from its caller.
type Config struct {
	// Home is harmony's per-user directory (the download cache).
	Home  string
	Trust manifests.Trust
	// Out receives progress and notes; Quiet discards them.
	Out   io.Writer
	Quiet bool
	// NoUpdateCheck skips fetching a newer signed runtime manifest before an install.
	NoUpdateCheck bool
}

// New returns the runtime named by name: "auto", "k3s" or "k3d" (see Choose).
func New(name string, cfg Config) (Runtime, error) {
	chosen, err := Choose(name)
	if err != nil {
		return nil, err
	}
	switch chosen {
	case "k3s":
		k := NewK3s(cfg.Home, cfg.Trust, cfg.Out, cfg.Quiet)
		k.NoUpdateCheck = cfg.NoUpdateCheck
		if (name == "" || name == "auto") && preferK3d(k) {
			d := NewK3d(cfg.Home, cfg.Trust, cfg.Out, cfg.Quiet)
			d.NoUpdateCheck = cfg.NoUpdateCheck
			return d, nil
		}
		return k, nil
	case "k3d":
		k := NewK3d(cfg.Home, cfg.Trust, cfg.Out, cfg.Quiet)
		k.NoUpdateCheck = cfg.NoUpdateCheck
		return k, nil
	}
	return nil, hint.With(fmt.Errorf("the %s runtime: %w", chosen, ErrNotImplemented),
		"this runtime arrives in a later harmony release; run 'harmony --help' for what works today")
}

// Installation is what Detect found.
type Installation struct {
	// Installed is true when harmony installed this runtime.
	Installed bool
	// Version is the installed version.
	Version string
	// Foreign describes a runtime installed by something else (e.g. the upstream k3s script),
	// which harmony reports but never replaces.
	Foreign string
}

// InstallOptions tune an install.
type InstallOptions struct {
	// Version to install; empty means the manifest's default.
	Version string
	// Airgap also installs the pinned air-gap image bundle.
	Airgap bool
	// Timeout bounds the wait for the API and the node.
	Timeout time.Duration
	// SwitchContext makes "harmony" the current kubeconfig context even when another is set.
	SwitchContext bool
	// HTTPPort and HTTPSPort are the localhost ports of the cluster's HTTP and HTTPS (k3d
	// only; empty means 80 and 443). k3s serves on the machine's own ports.
	HTTPPort, HTTPSPort string
	// Expose, when set, serves the cluster's apps (NodePorts, LoadBalancer Services, Traefik's
	// 80/443) and its API server on every network interface (true) or on this machine only
	// (false); nil keeps what an installed runtime has, and a new k3s serves this machine only.
	// k3s only: k3d publishes on localhost.
	Expose *bool
}

// Result says what an install did.
type Result struct {
	Version string
	// AlreadyHealthy is true when nothing had to be done.
	AlreadyHealthy bool
	// Kubeconfig is the user's kubeconfig file the "harmony" context was merged into.
	Kubeconfig string
	// Available is a newer version the upgrade policy allows ("harmony runtime upgrade").
	Available string
}

// Status is the runtime's state, as `harmony runtime status` shows it.
type Status struct {
	Runtime        string `json:"runtime"`
	Installed      bool   `json:"installed"`
	Version        string `json:"version,omitempty"`
	Policy         string `json:"policy"`
	Running        bool   `json:"running"`
	PID            int    `json:"pid,omitempty"`
	Supervisor     string `json:"supervisor,omitempty"`
	APIHealthy     bool   `json:"apiHealthy"`
	NodeReady      bool   `json:"nodeReady"`
	NewerPatch     string `json:"newerPatch,omitempty"`
	ForeignInstall string `json:"foreignInstall,omitempty"`
	// Network is where the cluster's apps and API answer: "localhost" (this machine only),
	// "localhost-not-in-force" (meant to, but the rules are not in), "every-interface" (asked
	// with --expose) or "every-interface-old" (a k3s installed before harmony kept it here).
	Network string `json:"network,omitempty"`
	// PendingSwitch is an upgrade or rollback a killed process left unfinished.
	PendingSwitch *Journal `json:"pendingSwitch,omitempty"`
	// Agent is the unattended agent's settings and last run.
	Agent *AgentStatus `json:"agent,omitempty"`
	// ManifestSerial and ManifestExpires describe the runtime manifest in use; ManifestLastSeen
	// is when a signed remote manifest was last fetched and accepted (zero: never).
	ManifestSerial   int64     `json:"manifestSerial"`
	ManifestExpires  time.Time `json:"manifestExpires"`
	ManifestLastSeen time.Time `json:"manifestLastSeen,omitzero"`
	// Warnings are things the user should know, such as an expired manifest (a freeze).
	Warnings []string `json:"warnings,omitempty"`
}

var (
	// ErrNotInstalled means the runtime is not installed by harmony.
	ErrNotInstalled = errors.New("runtime not installed")
	// ErrForeignInstall means another installer's runtime is in the way.
	ErrForeignInstall = errors.New("a runtime not installed by harmony is present")
	// ErrNotReady means the runtime did not become ready in time.
	ErrNotReady = errors.New("runtime not ready")
	// ErrExposeK3d means --expose was asked of the k3d runtime, which publishes on localhost.
	ErrExposeK3d = errors.New("k3d serves this machine only")
	// ErrUnsupported means this runtime cannot run on this machine.
	ErrUnsupported = errors.New("runtime not supported here")
	// ErrUnknownRuntime means a runtime name harmony does not know.
	ErrUnknownRuntime = errors.New("unknown runtime")
	// ErrNotImplemented means a runtime this harmony does not have yet.
	ErrNotImplemented = errors.New("not implemented yet")
)

// preferK3d decides "auto" on Linux: k3s, unless harmony's k3s is not installed and either
// harmony's k3d cluster or its kept data volume exists, or k3s cannot be installed (no root, no sudo) while Docker can
// run k3s.
func preferK3d(k *K3s) bool {
	if inst, err := k.Detect(context.Background()); err != nil || inst.Installed || inst.Foreign != "" {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	d := &K3d{Out: io.Discard}
	if c, err := d.container(ctx, K3dNode); err == nil && c != nil && c.Config.Labels[labelRuntime] == "k3d" {
		return true
	}
	// The data volume an uninstall without --purge kept: "runtime uninstall --purge" and the next
	// bootstrap must find the k3d runtime it belongs to.
	if e, err := d.docker(ctx); err == nil {
		if v, err := e.Client.VolumeInspect(ctx, K3dVolume); err == nil && v.Labels[labelRuntime] == "k3d" {
			return true
		}
	}
	if !k.NeedsPrivileges() {
		return false
	}
	if _, err := exec.LookPath("sudo"); err == nil {
		return false
	}
	_, err := d.docker(ctx)
	return err == nil
}

// Choose returns the runtime name for "auto": k3s on Linux, k3d elsewhere.
func Choose(name string) (string, error) {
	switch name {
	case "", "auto":
		if runtime.GOOS == "linux" {
			return "k3s", nil
		}
		return "k3d", nil
	case "k3s":
		if runtime.GOOS != "linux" {
			return "", hint.With(fmt.Errorf("k3s on %s: %w", runtime.GOOS, ErrUnsupported), "k3s runs on Linux only: use --runtime k3d (k3s in Docker)")
		}
		return "k3s", nil
	case "k3d":
		return "k3d", nil
	}
	return "", fmt.Errorf("%w %q (want auto, k3s or k3d)", ErrUnknownRuntime, name)
}
