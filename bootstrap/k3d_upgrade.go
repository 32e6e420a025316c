package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"k8s.io/client-go/rest"

	"github.com/NationTech/harmony-agent/internal/hint"
	"github.com/NationTech/harmony-agent/manifests"
)

// An upgrade of the k3d runtime recreates the node with the new version's pinned image on the
// same data volume, through the shared switch engine (journal, lock, health check, automatic
// rollback). The node of the version switched away from is kept, stopped and renamed
// "k3d-harmony-server-0-<version>", until the next successful switch: it is what a rollback
// (automatic or `harmony runtime rollback`) renames back.

// keptName is the name of the stopped node of version v.
func keptName(v string) string { return K3dNode + "-" + strings.ReplaceAll(v, "+", "-") }

// k3dSwitcher lets the shared switch engine move the k3d node between versions.
type k3dSwitcher struct {
	k *K3d
	// images are the pinned images of the versions a switch may create a node for.
	images map[string]string
}

func (s k3dSwitcher) Stop(ctx context.Context) error { return s.k.stopNode(ctx) }

func (s k3dSwitcher) Start(ctx context.Context) error { return s.k.startNode(ctx, 0, false) }

// Activate makes the node container named K3dNode the one of version: the current node is set
// aside (renamed, stopped, kept), and the kept node of version is renamed back, or a new node is
// created from the current one's spec with version's pinned image.
func (s k3dSwitcher) Activate(ctx context.Context, version string) error {
	k := s.k
	cur, err := k.container(ctx, K3dNode)
	if err != nil {
		return err
	}
	if cur != nil && cur.Config.Labels[labelVersion] == version {
		return nil
	}
	var base spec
	if cur != nil {
		base = specOf(cur)
		if err := k.removeContainer(ctx, keptName(base.Version)); err != nil {
			return err
		}
		if err := k.engine.Client.ContainerRename(ctx, K3dNode, keptName(base.Version)); err != nil {
			return fmt.Errorf("set the node of k3s %s aside: %w", base.Version, err)
		}
	}
	kept, err := k.container(ctx, keptName(version))
	if err != nil {
		return err
	}
	if kept != nil {
		return k.engine.Client.ContainerRename(ctx, keptName(version), K3dNode)
	}
	img, ok := s.images[version]
	if !ok || cur == nil {
		return fmt.Errorf("no node of k3s %s to switch to", version)
	}
	next := base
	next.Version, next.Image = version, img
	return k.createNode(ctx, next)
}

func (s k3dSwitcher) Baseline(ctx context.Context) Health {
	c, err := s.k.container(ctx, K3dNode)
	if err != nil || c == nil || c.State == nil || !c.State.Running {
		return Health{}
	}
	qctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cfg, err := s.k.restConfigOnce(qctx)
	if err != nil {
		return Health{}
	}
	cfg.Timeout = 5 * time.Second
	return Baseline(qctx, cfg)
}

func (s k3dSwitcher) WaitHealthy(ctx context.Context, timeout time.Duration, want Health) error {
	err := WaitHealth(ctx, timeout, want, func() (*rest.Config, error) {
		qctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		return s.k.restConfigOnce(qctx)
	}, s.k.exited)
	if err != nil && errors.Is(err, context.DeadlineExceeded) {
		return s.k.notReady("k3s was not healthy ("+want.String()+")", timeout, err)
	}
	if err == nil {
		err = s.k.exited(ctx) // with nothing to wait for, the node must at least still run
	}
	return err
}

func (s k3dSwitcher) Healthy(ctx context.Context, want Health) bool {
	if !want.API {
		c, err := s.k.container(ctx, K3dNode)
		return err == nil && c != nil && c.State != nil && c.State.Running
	}
	if !s.k.healthy(ctx) {
		return false
	}
	qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cfg, err := s.k.restConfigOnce(qctx)
	if err != nil {
		return false
	}
	cfg.Timeout = 2 * time.Second
	return CheckHealth(qctx, cfg, want) == nil
}

// Finish keeps the node of the version switched away from (for a rollback) and removes every
// other kept node.
func (s k3dSwitcher) Finish(ctx context.Context, j Journal) error {
	var errs []error
	for _, c := range s.k.nodes(ctx) {
		if c != K3dNode && c != keptName(j.From) {
			errs = append(errs, s.k.removeContainer(ctx, c))
		}
	}
	return errors.Join(errs...)
}

// nodes lists the names of harmony's node containers (the active one and kept ones).
func (k *K3d) nodes(ctx context.Context) []string {
	list, err := k.engine.Client.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(
		filters.Arg("label", labelRuntime+"=k3d"), filters.Arg("label", "k3d.cluster="+K3dCluster))})
	if err != nil {
		return nil
	}
	var names []string
	for _, c := range list {
		if len(c.Names) > 0 {
			names = append(names, strings.TrimPrefix(c.Names[0], "/"))
		}
	}
	return names
}

// exited reports a node container that stopped while harmony waited for it.
func (k *K3d) exited(ctx context.Context) error {
	c, err := k.container(ctx, K3dNode)
	if err != nil || c == nil || c.State == nil || c.State.Running || c.State.Restarting {
		return nil
	}
	time.Sleep(100 * time.Millisecond)
	tail := k.logTail(ctx, K3dNode, 15)
	return hint.With(fmt.Errorf("%w: the k3s node exited (code %d); last lines of its log:\n  %s", ErrNotReady, c.State.ExitCode, strings.ReplaceAll(tail, "\n", "\n  ")),
		"full log: docker logs "+K3dNode)
}

func (k *K3d) switcher(timeout time.Duration, images map[string]string) *Switch {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &Switch{
		Runtime: "k3d", JournalPath: filepath.Join(k.Home, "k3d-upgrade-journal.json"), LockPath: filepath.Join(k.Home, "k3d-upgrade.lock"),
		Switcher: k3dSwitcher{k: k, images: images}, Progress: k.Progress, Out: k.Out, Timeout: timeout, PauseAt: k.PauseAt,
	}
}

// PendingSwitch returns an unfinished upgrade or rollback, without acting on it.
func (k *K3d) PendingSwitch() (*Journal, error) { return k.switcher(0, nil).Pending() }

// AbandonSwitch ends an unfinished upgrade or rollback without acting on it (rollback --abandon);
// nil when there was none.
func (k *K3d) AbandonSwitch() (*Journal, error) { return k.switcher(0, nil).Abandon() }

// SwitchRunning reports whether a harmony process is upgrading or rolling back the runtime now.
func (k *K3d) SwitchRunning() bool { return k.switcher(0, nil).Running() }

// Recover finishes or reverts an upgrade or rollback a killed process left unfinished.
func (k *K3d) Recover(ctx context.Context) (*Recovery, error) {
	return k.recoverWithin(ctx, DefaultTimeout)
}

// recoverWithin is Recover with each wait for health bounded by timeout (the command's --timeout).
func (k *K3d) recoverWithin(ctx context.Context, timeout time.Duration) (*Recovery, error) {
	j, err := k.PendingSwitch()
	if err != nil || j == nil {
		return nil, err
	}
	if _, err := k.docker(ctx); err != nil {
		return nil, err
	}
	rec, err := k.switcher(timeout, nil).Recover(ctx)
	if err == nil && rec != nil {
		_, _ = k.mergeKubeconfig(ctx, false)
	}
	return rec, err
}

// Upgrade recreates the node with the pinned image of the newest version the policy allows (or
// opts.To) on the same data volume, with the switch engine's journal and automatic rollback.
func (k *K3d) Upgrade(ctx context.Context, opts UpgradeOptions) (UpgradeResult, error) {
	res := UpgradeResult{Runtime: "k3d", Op: "upgrade", DryRun: opts.DryRun}
	if _, err := k.docker(ctx); err != nil {
		return res, err
	}
	inst, err := k.Detect(ctx)
	if err != nil {
		return res, err
	}
	if inst.Foreign != "" {
		return res, k.foreignError(inst)
	}
	if !inst.Installed {
		return res, hint.With(fmt.Errorf("k3d: %w", ErrNotInstalled), "create it with: harmony bootstrap --runtime k3d")
	}
	res.From = inst.Version
	if !opts.DryRun {
		if rec, err := k.recoverWithin(ctx, opts.Timeout); err != nil {
			return res, err
		} else if rec != nil {
			res.Recovered = rec.Message()
			if inst, err = k.Detect(ctx); err != nil {
				return res, err
			}
			res.From = inst.Version
		}
	}
	m, err := k.manifest(ctx)
	if err != nil {
		return res, err
	}
	res.ManifestSerial = m.Serial
	from, err := manifests.ParseVersion(inst.Version)
	if err != nil {
		return res, err
	}
	var rel manifests.Release
	if opts.To != "" {
		if rel, _, err = PlanUpgrade(m, inst.Version, opts, ""); err != nil || rel.Version.IsZero() {
			return res, err
		}
	} else {
		for _, r := range m.Upgrades(from, manifests.Policy{AllowMinor: opts.AllowMinor}) {
			if r.Image.Digest != "" {
				rel = r
				break
			}
		}
		if rel.Version.IsZero() {
			return res, nil
		}
	}
	img, err := k.nodeImage(rel)
	if err != nil {
		return res, err
	}
	to := rel.Version.String()
	res.To = to
	res.Steps = []string{"pull " + img, "stop " + res.From, "set the node aside, create it again with " + to + "'s image on volume " + K3dVolume,
		"start " + to, "health: /readyz, node Ready, and k3s's own kube-system deployments that were available before",
		"on any failure: back to the node of " + res.From + ", started and checked the same way"}
	if opts.DryRun {
		return res, nil
	}
	prepare := []Step{{Name: "pull", Run: func(ctx context.Context) error { return k.pull(ctx, img) }}}
	if _, err := k.switcher(opts.Timeout, map[string]string{to: img}).Run(ctx, "upgrade", res.From, to, prepare...); err != nil {
		return res, err
	}
	res.Changed = true
	if _, err := k.mergeKubeconfig(ctx, false); err != nil {
		return res, fmt.Errorf("kubeconfig: %w", err)
	}
	return res, nil
}

// Rollback moves back to the node of the version the last upgrade left, the same way.
func (k *K3d) Rollback(ctx context.Context, opts RollbackOptions) (UpgradeResult, error) {
	res := UpgradeResult{Runtime: "k3d", Op: "rollback", DryRun: opts.DryRun}
	if _, err := k.docker(ctx); err != nil {
		return res, err
	}
	if !opts.DryRun {
		if rec, err := k.recoverWithin(ctx, opts.Timeout); err != nil {
			return res, err
		} else if rec != nil {
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
		return res, hint.With(fmt.Errorf("k3d: %w", ErrNotInstalled), "create it with: harmony bootstrap --runtime k3d")
	}
	res.From = inst.Version
	for _, name := range k.nodes(ctx) {
		if c, err := k.container(ctx, name); err == nil && c != nil && name != K3dNode {
			res.To = c.Config.Labels[labelVersion]
		}
	}
	if res.To == "" {
		return res, hint.With(fmt.Errorf("k3s %s: %w", inst.Version, ErrNoPrevious),
			"harmony keeps the node of the version before the last upgrade; there has been no upgrade since the cluster was created")
	}
	res.Steps = []string{"stop " + res.From, "switch to the kept node of " + res.To, "start " + res.To,
		"health: /readyz, node Ready, and k3s's own kube-system deployments that were available before", "on any failure: back to " + res.From}
	if opts.DryRun {
		return res, nil
	}
	if _, err := k.switcher(opts.Timeout, nil).Run(ctx, "rollback", res.From, res.To); err != nil {
		return res, err
	}
	res.Changed = true
	_, err = k.mergeKubeconfig(ctx, false)
	return res, err
}
