package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	appsv1client "k8s.io/client-go/kubernetes/typed/apps/v1"
	coordinationv1client "k8s.io/client-go/kubernetes/typed/coordination/v1"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
)

// Components are the Deployments k3s itself deploys in kube-system from its own manifests (its
// Addons): the runtime's own system pods. A switch's health is judged by these alone, and only
// when k3s's deploy controller owns them (addonOwned) and harmony never applied to them: a
// launched repo's Deployment there (whatever its name, whatever it can probe) must not hold
// patching hostage. Traefik is not among them: it comes from a Helm chart whose values any
// HelmChartConfig in kube-system changes.
var Components = []string{"coredns", "local-path-provisioner", "metrics-server"}

// addonOwned reports whether d is one of k3s's Addon-deployed objects (k3s's deploy controller
// marks each with its owning Addon), and not one a launch ever applied to (harmony's inventory
// mark or field manager).
func addonOwned(d *appsv1.Deployment) bool {
	a := d.GetAnnotations()
	if a["objectset.rio.cattle.io/owner-gvk"] != "k3s.cattle.io/v1, Kind=Addon" || a["objectset.rio.cattle.io/owner-namespace"] != metav1.NamespaceSystem {
		return false
	}
	if _, ok := a["config.k8s.io/owning-inventory"]; ok {
		return false
	}
	for _, m := range d.GetManagedFields() {
		if m.Manager == "harmony" {
			return false
		}
	}
	return true
}

// Health is what a runtime's health check requires, or what was found before a switch: the API
// server's /readyz, a Ready node, and which of the runtime's Components are available.
type Health struct {
	API        bool     `json:"api"`
	Node       bool     `json:"node"`
	Components []string `json:"components,omitempty"`
	// Since, when set with Node, requires the Ready node's kubelet to have renewed its lease
	// after it: right after a restart, a node's Ready status is the one from before.
	Since time.Time `json:"-"`
}

// Want returns what a new version must show to be kept: the API and a Ready node always, and
// every component that was available before the switch (one that was not cannot fail it).
func (h Health) Want() Health {
	return Health{API: true, Node: true, Components: h.Components}
}

// String names what h holds, for messages.
func (h Health) String() string {
	var parts []string
	if h.API {
		parts = append(parts, "/readyz")
	}
	if h.Node {
		parts = append(parts, "node Ready")
	}
	if len(h.Components) > 0 {
		parts = append(parts, strings.Join(h.Components, ", ")+" available")
	}
	if len(parts) == 0 {
		return "nothing (nothing was healthy before)"
	}
	return strings.Join(parts, ", ")
}

// Baseline checks once what of the runtime is healthy now (each part bounded by ctx and cfg's
// timeout): taken before a switch, it is what the way back must restore.
func Baseline(ctx context.Context, cfg *rest.Config) Health {
	var h Health
	if cfg == nil {
		return h
	}
	// A busy API server gets a few tries (within ctx) before it counts as down.
	for APIReady(ctx, cfg) != nil {
		select {
		case <-ctx.Done():
			return h
		case <-time.After(2 * time.Second):
		}
	}
	h.API = true
	h.Node, _ = nodeReady(ctx, cfg)
	h.Components, _ = availableComponents(ctx, cfg)
	return h
}

// CheckHealth is the health check of a switch, shared by every runtime: what want requires
// holds (the API server's /readyz answers ok, a node is Ready, each named component is
// available). It returns nil when all hold, else an error naming the first that does not.
func CheckHealth(ctx context.Context, cfg *rest.Config, want Health) error {
	if !want.API {
		return nil // nothing else can be checked without it, and it was not there before
	}
	if err := APIReady(ctx, cfg); err != nil {
		return err
	}
	if want.Node {
		ready, err := nodeReady(ctx, cfg)
		if err != nil {
			return fmt.Errorf("list nodes: %w", err)
		}
		if !ready {
			return errors.New("no node is Ready")
		}
		if !want.Since.IsZero() {
			fresh, err := nodeReportedSince(ctx, cfg, want.Since)
			if err != nil {
				return err
			}
			if !fresh {
				return errors.New("no Ready node's kubelet has reported since the start (its lease in kube-node-lease)")
			}
		}
	}
	if len(want.Components) == 0 {
		return nil
	}
	available, err := availableComponents(ctx, cfg)
	if err != nil {
		return err
	}
	var waiting []string
	for _, name := range want.Components {
		if !slices.Contains(available, name) {
			waiting = append(waiting, name)
		}
	}
	if len(waiting) > 0 {
		return fmt.Errorf("the runtime's own deployments in kube-system not available yet: %s", strings.Join(waiting, ", "))
	}
	return nil
}

// availableComponents lists the runtime's Components that are available now, sorted.
func availableComponents(ctx context.Context, cfg *rest.Config) ([]string, error) {
	c, err := appsv1client.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	list, err := c.Deployments(metav1.NamespaceSystem).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list kube-system deployments: %w", err)
	}
	var available []string
	for _, d := range list.Items {
		if slices.Contains(Components, d.Name) && addonOwned(&d) && deploymentAvailable(&d) {
			available = append(available, d.Name)
		}
	}
	sort.Strings(available)
	return available, nil
}

// deploymentAvailable: every replica is updated and available (not the Available condition,
// which a one-replica Deployment with maxUnavailable 1, as k3s's coredns, holds with none).
func deploymentAvailable(d *appsv1.Deployment) bool {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	if want == 0 {
		return true
	}
	st := d.Status
	return st.ObservedGeneration >= d.Generation && st.UpdatedReplicas >= want && st.AvailableReplicas >= want && st.Replicas == st.UpdatedReplicas
}

// WaitHealth polls CheckHealth (what want requires) with the config from load until it passes or
// timeout ends; fatal, when it returns an error, ends the wait early (the runtime's process died).
func WaitHealth(ctx context.Context, timeout time.Duration, want Health, load func() (*rest.Config, error), fatal func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return poll(ctx, 250*time.Millisecond, func() (bool, error, error) {
		if fatal != nil {
			if err := fatal(ctx); err != nil {
				return false, err, nil
			}
		}
		if !want.API {
			return true, nil, nil
		}
		cfg, err := load()
		if err != nil {
			return false, nil, err
		}
		err = CheckHealth(ctx, cfg, want)
		return err == nil, nil, err
	})
}

// nodeReportedSince reports whether a Ready node's kubelet renewed its lease after since.
func nodeReportedSince(ctx context.Context, cfg *rest.Config, since time.Time) (bool, error) {
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return false, err
	}
	core, err := corev1client.NewForConfigAndClient(cfg, hc)
	if err != nil {
		return false, err
	}
	coord, err := coordinationv1client.NewForConfigAndClient(cfg, hc)
	if err != nil {
		return false, err
	}
	nodes, err := core.Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return false, fmt.Errorf("list nodes: %w", err)
	}
	leases, err := coord.Leases(corev1.NamespaceNodeLease).List(ctx, metav1.ListOptions{})
	if err != nil {
		return false, fmt.Errorf("list node leases: %w", err)
	}
	for _, n := range nodes.Items {
		if !isReady(&n) {
			continue
		}
		for _, l := range leases.Items {
			if l.Name == n.Name && l.Spec.RenewTime != nil && l.Spec.RenewTime.After(since) {
				return true, nil
			}
		}
	}
	return false, nil
}

func isReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
