package launch

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/cli-utils/pkg/object"
)

// RunHook is the plan action of a Helm hook: created, waited for, then deleted as its
// hook-delete-policy says.
const RunHook Action = "run hook"

// Hook events launch runs: install on the first launch of a project, upgrade afterwards.
const (
	PreInstall  = "pre-install"
	PostInstall = "post-install"
	PreUpgrade  = "pre-upgrade"
	PostUpgrade = "post-upgrade"
)

// Hook delete policies (Helm's).
const (
	hookSucceeded          = "hook-succeeded"
	hookFailed             = "hook-failed"
	hookBeforeHookCreation = "before-hook-creation"
)

// Hook is one hook object: a chart's Helm hook, or an object with Argo CD's hook annotation.
type Hook struct {
	Object
	Events         []string
	Weight         int
	DeletePolicies []string
	argo           bool // Argo CD's: its events are named as Argo CD names them
}

func (h Hook) has(event string) bool { return slices.Contains(h.Events, event) }

func (h Hook) policy(p string) bool { return slices.Contains(h.DeletePolicies, p) }

// newHook reads a hook's annotations. Hooks launch never runs come back as skip, a line for
// the user: test hooks, Helm 2's crd-install, delete and rollback hooks, unknown events.
func newHook(obj Object, events string) (Hook, string) {
	h := Hook{Object: obj}
	ann := obj.GetAnnotations()
	name := strings.ToLower(obj.GetKind()) + "/" + obj.GetName()
	run := false
	for e := range strings.SplitSeq(events, ",") {
		e = strings.ToLower(strings.TrimSpace(e))
		switch e {
		case PreInstall, PostInstall, PreUpgrade, PostUpgrade:
			run = true
		case "test", "test-success":
			return h, fmt.Sprintf("%s (test hook: run it with helm test)", name)
		case "crd-install":
			return h, fmt.Sprintf("%s (crd-install is a Helm 2 hook: put CRDs in the chart's crds/ folder)", name)
		case "pre-delete", "post-delete", "pre-rollback", "post-rollback":
		default:
			return h, fmt.Sprintf("%s (unknown hook %q)", name, e)
		}
		h.Events = append(h.Events, e)
	}
	if !run {
		return h, fmt.Sprintf("%s (%s hook: launch runs install and upgrade hooks only)", name, strings.Join(h.Events, ","))
	}
	h.Weight, _ = strconv.Atoi(strings.TrimSpace(ann[helmWeightAnnotation]))
	for p := range strings.SplitSeq(ann[helmDeleteAnnotation], ",") {
		if p = strings.ToLower(strings.TrimSpace(p)); p != "" {
			h.DeletePolicies = append(h.DeletePolicies, p)
		}
	}
	if len(h.DeletePolicies) == 0 {
		h.DeletePolicies = []string{hookBeforeHookCreation} // Helm's default
	}
	return h, ""
}

// installOrder is Helm's kind order, used between hooks of the same weight.
var installOrder = []string{"PriorityClass", "Namespace", "NetworkPolicy", "ResourceQuota", "LimitRange",
	"PodSecurityPolicy", "PodDisruptionBudget", "ServiceAccount", "Secret", "SecretList", "ConfigMap",
	"StorageClass", "PersistentVolume", "PersistentVolumeClaim", "CustomResourceDefinition", "ClusterRole",
	"ClusterRoleList", "ClusterRoleBinding", "ClusterRoleBindingList", "Role", "RoleList", "RoleBinding",
	"RoleBindingList", "Service", "DaemonSet", "Pod", "ReplicationController", "ReplicaSet", "Deployment",
	"HorizontalPodAutoscaler", "StatefulSet", "Job", "CronJob", "IngressClass", "Ingress", "APIService",
	"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"}

func kindRank(kind string) int {
	if i := slices.Index(installOrder, kind); i >= 0 {
		return i
	}
	return len(installOrder)
}

// sortHooks orders hooks as Helm runs them: by weight, then kind, then name.
func sortHooks(hs []Hook) {
	sort.SliceStable(hs, func(i, j int) bool {
		a, b := hs[i], hs[j]
		if a.Weight != b.Weight {
			return a.Weight < b.Weight
		}
		if ra, rb := kindRank(a.GetKind()), kindRank(b.GetKind()); ra != rb {
			return ra < rb
		}
		return a.GetName() < b.GetName()
	})
}

// hookEvents are the events of this launch: install the first time, upgrade after.
func hookEvents(upgrade bool) (pre, post string) {
	if upgrade {
		return PreUpgrade, PostUpgrade
	}
	return PreInstall, PostInstall
}

// prepareHooks maps hooks like objects (namespace, the project's mark) and keeps those of
// this launch's events.
func (e *Engine) prepareHooks(hooks []Hook, p *Project, upgrade bool) ([]Hook, error) {
	pre, post := hookEvents(upgrade)
	var out []Hook
	var objs []Object
	for _, h := range hooks {
		if h.has(pre) || h.has(post) || h.has(SyncEvent) || h.has(SyncFailEvent) {
			c := h
			c.Object = Object{Unstructured: h.DeepCopy(), Origin: h.Origin}
			out = append(out, c)
			objs = append(objs, c.Object)
		}
	}
	if _, err := e.prepare(objs, p); err != nil {
		return nil, err
	}
	return out, nil
}

// planHooks checks each hook with a server-side dry run (a hook that exists is replaced when
// it runs: its new version is checked then).
func (e *Engine) planHooks(ctx context.Context, hooks []Hook, p *Project) ([]Step, []string) {
	var steps []Step
	var rejected []string
	for _, h := range hooks {
		step := hookStep(h)
		ri, _, err := e.resource(h.Unstructured)
		if err != nil {
			step.Note += "; its kind is defined by this launch: checked when run"
			steps = append(steps, step)
			continue
		}
		if h.GetName() == "" { // a generateName: a new object each run
			if _, err := ri.Create(ctx, h.Unstructured, metav1.CreateOptions{FieldManager: FieldManager, DryRun: []string{metav1.DryRunAll}}); err != nil {
				rejected = append(rejected, fmt.Sprintf("%s (%s): %s", step.Ref, h.Origin, reason(err)))
			}
			steps = append(steps, step)
			continue
		}
		live, err := ri.Get(ctx, h.GetName(), metav1.GetOptions{})
		switch {
		case err == nil:
			if problem := e.hookCollision(ctx, live, p); problem != "" {
				rejected = append(rejected, fmt.Sprintf("%s (%s): %s", step.Ref, h.Origin, problem))
			}
			step.Note += "; replaces the one from the last launch"
		case apierrors.IsNotFound(err):
			if _, err := e.apply(ctx, h.Unstructured, true, true); err != nil && !apierrors.IsNotFound(err) {
				rejected = append(rejected, fmt.Sprintf("%s (%s): %s", step.Ref, h.Origin, reason(err)))
			}
		default:
			rejected = append(rejected, fmt.Sprintf("%s (%s): %v", step.Ref, h.Origin, err))
		}
		steps = append(steps, step)
	}
	return steps, rejected
}

// hookStep is a hook's line of a plan.
func hookStep(h Hook) Step {
	return Step{ID: object.UnstructuredToObjMetadata(h.Unstructured), Ref: hookRef(h), Action: RunHook, Origin: h.Origin,
		apiVersion: h.GetAPIVersion(), Note: h.note()}
}

// hookCollision says why an existing object may not be replaced by a hook: it must carry
// this project's mark (a hook replaces its object, so there is no adopting).
func (e *Engine) hookCollision(ctx context.Context, live *unstructured.Unstructured, p *Project) string {
	if ours(live, p) {
		return ""
	}
	_, detail := e.owner(ctx, live)
	return "it exists and is not this project's (" + detail + "): harmony never replaces it"
}

// runHooks runs the hooks of one event in order: each is (re)created, waited for, and deleted
// as its policy says. A failed hook stops the launch.
func (e *Engine) runHooks(ctx context.Context, hooks []Hook, event string, p *Project, timeout time.Duration, out io.Writer) error {
	for _, h := range hooks {
		if !h.has(event) {
			continue
		}
		r, name := hookRef(h), h.eventName(event)
		if h.policy(hookBeforeHookCreation) {
			if err := e.deleteHook(ctx, h, p, timeout); err != nil {
				return fmt.Errorf("%s hook %s: %w", name, r, err)
			}
		}
		fmt.Fprintf(out, "  %s hook %s\n", name, r)
		run, err := e.createHook(ctx, h)
		if err != nil {
			return fmt.Errorf("%s hook %s (%s): %s", name, r, h.Origin, reason(err))
		}
		if err := e.waitHook(ctx, run, timeout); err != nil {
			if run.policy(hookFailed) {
				_ = e.deleteHook(context.WithoutCancel(ctx), run, p, timeout)
			}
			return fmt.Errorf("%s hook %s (%s): %w", name, hookRef(run), h.Origin, err)
		}
		if run.policy(hookSucceeded) {
			if err := e.deleteHook(ctx, run, p, timeout); err != nil {
				return fmt.Errorf("%s hook %s: %w", name, hookRef(run), err)
			}
		}
	}
	return nil
}

// createHook creates a hook's object: applied when it has a name, created when it has a
// generateName (the hook returned then has the name the server gave it).
func (e *Engine) createHook(ctx context.Context, h Hook) (Hook, error) {
	if h.GetName() != "" {
		_, err := e.apply(ctx, h.Unstructured, false, true)
		return h, err
	}
	ri, _, err := e.resource(h.Unstructured)
	if err != nil {
		return h, err
	}
	created, err := ri.Create(ctx, h.Unstructured, metav1.CreateOptions{FieldManager: FieldManager})
	if err != nil {
		return h, err
	}
	run := h
	run.Object = Object{Unstructured: h.DeepCopy(), Origin: h.Origin}
	run.SetName(created.GetName())
	return run, nil
}

// deleteHook deletes a hook object of this project and waits until it is gone.
func (e *Engine) deleteHook(ctx context.Context, h Hook, p *Project, timeout time.Duration) error {
	ri, _, err := e.resource(h.Unstructured)
	if err != nil {
		return err
	}
	if h.GetName() == "" {
		return e.deleteEarlierRuns(ctx, ri, h, p, timeout)
	}
	live, err := ri.Get(ctx, h.GetName(), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if problem := e.hookCollision(ctx, live, p); problem != "" {
		return fmt.Errorf("%s", problem)
	}
	policy := metav1.DeletePropagationBackground
	if err := ri.Delete(ctx, h.GetName(), metav1.DeleteOptions{PropagationPolicy: &policy}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	return poll(ctx, timeout, func() (bool, error) {
		_, err := ri.Get(ctx, h.GetName(), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, nil
	}, "still being deleted")
}

// deleteEarlierRuns deletes, for a hook with a generateName, the objects earlier launches of
// this project created from it (its generateName, its hook annotation, the project's mark),
// and waits until they are gone.
func (e *Engine) deleteEarlierRuns(ctx context.Context, ri dynamic.ResourceInterface, h Hook, p *Project, timeout time.Duration) error {
	list, err := ri.List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	var names []string
	for _, live := range list.Items {
		if live.GetGenerateName() == h.GetGenerateName() && isHookObject(Object{Unstructured: &live}) && ours(&live, p) {
			names = append(names, live.GetName())
		}
	}
	policy := metav1.DeletePropagationBackground
	for _, n := range names {
		if err := ri.Delete(ctx, n, metav1.DeleteOptions{PropagationPolicy: &policy}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return poll(ctx, timeout, func() (bool, error) {
		for _, n := range names {
			if _, err := ri.Get(ctx, n, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				return false, nil
			}
		}
		return true, nil
	}, "still being deleted")
}

// waitHook waits like Helm: a Job until it completes, a Pod until it succeeds; anything else
// is done once created.
func (e *Engine) waitHook(ctx context.Context, h Hook, timeout time.Duration) error {
	kind, group := h.GetKind(), h.GroupVersionKind().Group
	if !(group == "batch" && kind == "Job") && !(group == "" && kind == "Pod") {
		return nil
	}
	ri, _, err := e.resource(h.Unstructured)
	if err != nil {
		return err
	}
	return poll(ctx, timeout, func() (bool, error) {
		live, err := ri.Get(ctx, h.GetName(), metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		if kind == "Pod" {
			phase, _, _ := unstructured.NestedString(live.Object, "status", "phase")
			switch phase {
			case "Succeeded":
				return true, nil
			case "Failed":
				return false, fmt.Errorf("the pod failed")
			}
			return false, nil
		}
		if conditionTrue(live, "Complete") {
			return true, nil
		}
		if conditionTrue(live, "Failed") {
			return false, fmt.Errorf("the job failed: %s", conditionMessage(live, "Failed"))
		}
		return false, nil
	}, "did not complete")
}

func conditionMessage(u *unstructured.Unstructured, typ string) string {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == typ {
			msg, _ := m["message"].(string)
			reason, _ := m["reason"].(string)
			return strings.TrimSpace(reason + " " + msg)
		}
	}
	return ""
}

// poll calls done until it reports true or fails, or timeout passes.
func poll(ctx context.Context, timeout time.Duration, done func() (bool, error), what string) error {
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	deadline := time.Now().Add(timeout)
	for {
		ok, err := done()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s within %s", what, timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
