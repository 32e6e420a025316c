package launch

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/cli-utils/pkg/object"

	"github.com/NationTech/harmony-agent/internal/hint"
)

// ObjState is one object's readiness, as kstatus computes it.
type ObjState struct {
	ID      object.ObjMetadata `json:"-"`
	Ref     string             `json:"object"`
	Status  string             `json:"status"`
	Message string             `json:"message,omitempty"`
	// Reasons explain an object that is not ready: pod states, events, log lines.
	Reasons []string `json:"reasons,omitempty"`
}

// Ready reports whether the object is ready (kstatus Current).
func (s ObjState) Ready() bool { return s.Status == status.CurrentStatus.String() }

// State computes one object's state: kstatus, plus ready endpoints for Services with a selector.
func (e *Engine) State(ctx context.Context, id object.ObjMetadata) ObjState {
	st := ObjState{ID: id, Ref: ref(id)}
	ri, err := e.resourceFor(id)
	if err != nil {
		st.Status, st.Message = status.UnknownStatus.String(), Sanitize(err.Error())
		return st
	}
	live, err := ri.Get(ctx, id.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		st.Status, st.Message = status.NotFoundStatus.String(), "not found"
		return st
	}
	if err != nil {
		st.Status, st.Message = status.UnknownStatus.String(), Sanitize(err.Error())
		return st
	}
	res, err := status.Compute(live)
	if err != nil {
		st.Status, st.Message = status.UnknownStatus.String(), Sanitize(err.Error())
		return st
	}
	st.Status, st.Message = res.Status.String(), Sanitize(res.Message)
	if res.Status == status.CurrentStatus && id.GroupKind.Kind == "Service" && id.GroupKind.Group == "" {
		if ok, msg := e.serviceHasEndpoints(ctx, live); !ok {
			st.Status, st.Message = status.InProgressStatus.String(), msg
		}
	}
	if res.Status == status.CurrentStatus && id.GroupKind.Group == "apps" && podWorkloads[id.GroupKind.Kind] {
		if ok, msg := e.podsKeepRunning(ctx, live); !ok {
			st.Status, st.Message = status.InProgressStatus.String(), msg
		}
	}
	return st
}

// podSettle is how long a container with no readiness or startup probe must have run before
// launch calls it ready. Kubernetes calls such a container ready the moment it starts, so an app
// that exits at once looks ready until the kubelet notices (its relist runs every second): a
// launch that stopped waiting then would report a crash loop as ready.
const podSettle = 3 * time.Second

// podWorkloads are the apps/v1 kinds whose readiness podsKeepRunning checks.
var podWorkloads = map[string]bool{"Deployment": true, "StatefulSet": true, "DaemonSet": true, "ReplicaSet": true}

// podsKeepRunning checks a workload kstatus calls Current: none of its running pods' containers
// is waiting (CrashLoopBackOff…) or terminated, and each one without a probe has run for
// podSettle. Its pods are those its selector matches that it (a Deployment: one of its
// ReplicaSets) controls; finished pods (a hook's Job reusing the labels, an evicted pod) do not
// count. A Deployment that has not progressed or become available in the last minute (a launch
// with no change) is not looked at again.
func (e *Engine) podsKeepRunning(ctx context.Context, live *unstructured.Unstructured) (bool, string) {
	if live.GetKind() == "Deployment" && !recentlyChanged(live, time.Now()) {
		return true, ""
	}
	raw, found, _ := unstructured.NestedMap(live.Object, "spec", "selector")
	if !found {
		return true, ""
	}
	var ls metav1.LabelSelector
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(raw, &ls); err != nil {
		return true, ""
	}
	sel, err := metav1.LabelSelectorAsSelector(&ls)
	if err != nil || sel.Empty() {
		return true, ""
	}
	pods, err := e.client.CoreV1().Pods(live.GetNamespace()).List(ctx, metav1.ListOptions{LabelSelector: sel.String()})
	if err != nil {
		return true, "" // kstatus's answer stands; the next round asks again
	}
	var own []corev1.Pod
	for _, p := range pods.Items {
		if controlledBy(p, live) {
			own = append(own, p)
		}
	}
	return podsSettled(own, time.Now())
}

// controlledBy: pod p's controller is workload w (for a Deployment, one of its ReplicaSets:
// named after it and the pod's template hash).
func controlledBy(p corev1.Pod, w *unstructured.Unstructured) bool {
	ref := metav1.GetControllerOf(&p)
	if ref == nil {
		return false
	}
	if w.GetKind() == "Deployment" {
		return ref.Kind == "ReplicaSet" && ref.Name == w.GetName()+"-"+p.Labels["pod-template-hash"]
	}
	return ref.UID == w.GetUID()
}

// recentlyChanged: the Deployment became available or made progress in the last minute.
func recentlyChanged(live *unstructured.Unstructured, now time.Time) bool {
	conds, _, _ := unstructured.NestedSlice(live.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		for _, key := range []string{"lastTransitionTime", "lastUpdateTime"} {
			v, _ := m[key].(string)
			if t, err := time.Parse(time.RFC3339, v); err == nil && now.Sub(t) < time.Minute {
				return true
			}
		}
	}
	return false
}

// podsSettled is podsKeepRunning's rule on pods (those being deleted or finished left out), at
// now. Times are the cluster's (a container's start) against harmony's clock: on harmony's own
// runtime one machine's.
func podsSettled(pods []corev1.Pod, now time.Time) (bool, string) {
	for _, p := range pods {
		if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		probed := map[string]bool{}
		for _, c := range p.Spec.Containers {
			probed[c.Name] = c.ReadinessProbe != nil || c.StartupProbe != nil
		}
		for _, cs := range p.Status.ContainerStatuses {
			switch {
			case cs.State.Waiting != nil:
				return false, Sanitize(fmt.Sprintf("pod %s, container %s: %s", p.Name, cs.Name, cs.State.Waiting.Reason))
			case cs.State.Terminated != nil:
				return false, Sanitize(fmt.Sprintf("pod %s, container %s: terminated (%s, exit code %d)", p.Name, cs.Name, cs.State.Terminated.Reason, cs.State.Terminated.ExitCode))
			case cs.State.Running != nil && !probed[cs.Name] && now.Sub(cs.State.Running.StartedAt.Time) < podSettle:
				if last := cs.LastTerminationState.Terminated; cs.RestartCount > 0 && last != nil && last.ExitCode != 0 {
					// Between two crashes it runs for a moment: say it crash-loops, as the
					// kubelet does while it waits to restart it.
					return false, Sanitize(fmt.Sprintf("pod %s, container %s: CrashLoopBackOff (restarted %d times; last exit: %s, exit code %d)", p.Name, cs.Name, cs.RestartCount, last.Reason, last.ExitCode))
				}
				return false, Sanitize(fmt.Sprintf("pod %s, container %s: started less than %s ago; making sure it keeps running", p.Name, cs.Name, podSettle))
			}
		}
	}
	return true, ""
}

// serviceHasEndpoints reports whether a Service with a selector has a ready endpoint.
func (e *Engine) serviceHasEndpoints(ctx context.Context, svc *unstructured.Unstructured) (bool, string) {
	sel, _, _ := unstructured.NestedStringMap(svc.Object, "spec", "selector")
	typ, _, _ := unstructured.NestedString(svc.Object, "spec", "type")
	if len(sel) == 0 || typ == "ExternalName" {
		return true, ""
	}
	slices, err := e.client.DiscoveryV1().EndpointSlices(svc.GetNamespace()).List(ctx, metav1.ListOptions{
		LabelSelector: labels.Set{"kubernetes.io/service-name": svc.GetName()}.String(),
	})
	if err != nil {
		return false, Sanitize(err.Error())
	}
	for _, s := range slices.Items {
		for _, ep := range s.Endpoints {
			if ep.Conditions.Ready == nil || *ep.Conditions.Ready {
				return true, ""
			}
		}
	}
	return false, "no ready endpoints yet"
}

// pollRoundTimeout bounds one round of status requests (and the diagnosis after a timeout).
const pollRoundTimeout = 15 * time.Second

// waitNews is how often a wait that is not drawn on a terminal says how it goes.
const waitNews = 10 * time.Second

// notYet names the first objects that are not ready, with why.
func notYet(states []ObjState) string {
	var out []string
	for _, st := range states {
		if st.Ready() {
			continue
		}
		if len(out) == 3 {
			out = append(out, "…")
			break
		}
		s := st.Ref + " " + st.Status
		if st.Message != "" {
			s += ": " + st.Message
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return ""
	}
	return "; not yet: " + strings.Join(out, "; ")
}

// Wait polls every object until all are ready or the timeout passes, printing each change.
// On timeout it explains every object that is not ready.
func (e *Engine) Wait(ctx context.Context, ids object.ObjMetadataSet, o Options) ([]ObjState, error) {
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	start := time.Now()
	deadline := start.Add(timeout)
	last := map[object.ObjMetadata]string{}
	told := start
	var states []ObjState
	for {
		// Each round gets its own bound, not what is left of the timeout: the last round before
		// the deadline must report the objects' real states, not requests cut short by it.
		rctx, rcancel := context.WithTimeout(ctx, pollRoundTimeout)
		prev := states
		states = make([]ObjState, len(ids))
		forEach(len(ids), func(i int) { states[i] = e.State(rctx, ids[i]) })
		rcancel()
		if errors.Is(ctx.Err(), context.Canceled) && prev != nil {
			return prev, ctx.Err() // a round cut short knows nothing: the last one says what was so
		}
		ready := 0
		for _, st := range states {
			id := st.ID
			if st.Ready() {
				ready++
			}
			line := st.Status + ": " + st.Message
			quiet := !o.Verbose && (st.Status == "Current" || st.Status == "InProgress")
			if last[id] != line && !quiet {
				last[id] = line
				if o.Live {
					fmt.Fprint(o.Out, "\r\033[K")
				}
				fmt.Fprintf(o.Out, "  %-50s %s", st.Ref, st.Status)
				if st.Message != "" {
					fmt.Fprintf(o.Out, " (%s)", st.Message)
				}
				fmt.Fprintln(o.Out)
			}
		}
		if ready == len(ids) {
			if o.Live {
				fmt.Fprint(o.Out, "\r\033[K")
			}
			fmt.Fprintf(o.Out, "all %d objects ready in %s\n", len(ids), time.Since(start).Round(100*time.Millisecond))
			return states, nil
		}
		if o.Live {
			fmt.Fprintf(o.Out, "\r\033[Kwaiting: %d/%d ready (%s)", ready, len(ids), time.Since(start).Round(time.Second))
		} else if !o.Verbose && time.Since(told) >= waitNews {
			// A log (CI, a pipe) hears how the wait goes every so often, never minutes of nothing.
			told = time.Now()
			fmt.Fprintf(o.Out, "waiting: %d/%d ready (%s)%s\n", ready, len(ids), time.Since(start).Round(time.Second), notYet(states))
		}
		if err := ctx.Err(); err != nil || !time.Now().Before(deadline) {
			if o.Live {
				fmt.Fprintln(o.Out)
			}
			if errors.Is(err, context.Canceled) {
				return states, err
			}
			dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), pollRoundTimeout)
			defer dcancel()
			return e.explain(dctx, states, timeout)
		}
		select {
		case <-ctx.Done():
		case <-time.After(min(250*time.Millisecond, time.Until(deadline))):
		}
	}
}

func (e *Engine) explain(ctx context.Context, states []ObjState, timeout time.Duration) ([]ObjState, error) {
	var lines []string
	for i, st := range states {
		if st.Ready() {
			continue
		}
		states[i].Reasons = e.diagnose(ctx, st.ID)
		lines = append(lines, fmt.Sprintf("%s: %s (%s)", st.Ref, st.Status, st.Message))
		for _, r := range states[i].Reasons {
			lines = append(lines, "    "+r)
		}
	}
	return states, hint.With(fmt.Errorf("%w after %s:\n  %s", ErrNotReady, timeout, strings.Join(lines, "\n  ")),
		"fix the cause above and launch again (only what changed is applied); --timeout waits longer, --no-wait does not wait")
}

// diagnose explains why a workload is not ready: its pods' container states, recent warning
// events and the last log lines of crashing containers.
func (e *Engine) diagnose(ctx context.Context, id object.ObjMetadata) []string {
	ri, err := e.resourceFor(id)
	if err != nil {
		return nil
	}
	live, err := ri.Get(ctx, id.Name, metav1.GetOptions{})
	if err != nil {
		return nil
	}
	var reasons []string
	reasons = append(reasons, e.events(ctx, id.Namespace, id.Name)...)
	sel, found, _ := unstructured.NestedMap(live.Object, "spec", "selector", "matchLabels")
	if !found || id.Namespace == "" {
		return reasons
	}
	set := labels.Set{}
	for k, v := range sel {
		set[k] = fmt.Sprint(v)
	}
	pods, err := e.client.CoreV1().Pods(id.Namespace).List(ctx, metav1.ListOptions{LabelSelector: set.String()})
	if err != nil {
		return reasons
	}
	sort.Slice(pods.Items, func(i, j int) bool { return pods.Items[i].Name < pods.Items[j].Name })
	for i, p := range pods.Items {
		if i >= 3 {
			reasons = append(reasons, fmt.Sprintf("… and %d more pods", len(pods.Items)-3))
			break
		}
		reasons = append(reasons, podReasons(p)...)
		reasons = append(reasons, e.events(ctx, p.Namespace, p.Name)...)
		for _, cs := range p.Status.ContainerStatuses {
			if cs.RestartCount > 0 || cs.State.Terminated != nil || (cs.State.Waiting != nil && cs.State.Waiting.Reason == "CrashLoopBackOff") {
				// A container that has exited and not yet restarted holds the last log itself.
				reasons = append(reasons, e.logTail(ctx, p, cs.Name, cs.State.Terminated == nil)...)
			}
		}
	}
	return reasons
}

func podReasons(p corev1.Pod) []string {
	var out []string
	for _, cs := range p.Status.ContainerStatuses {
		switch {
		case cs.State.Waiting != nil && cs.State.Waiting.Reason != "":
			out = append(out, Sanitize(fmt.Sprintf("pod %s, container %s: %s: %s", p.Name, cs.Name, cs.State.Waiting.Reason, cs.State.Waiting.Message)))
			if lostBuiltImage(cs) {
				out = append(out, Sanitize(fmt.Sprintf("pod %s, container %s: the runtime no longer has %s, an image harmony built and loaded (its host never resolves, so it is never pulled): launch again and harmony loads it again", p.Name, cs.Name, cs.Image)))
			}
		case cs.State.Terminated != nil:
			out = append(out, Sanitize(fmt.Sprintf("pod %s, container %s: terminated (%s, exit code %d)%s", p.Name, cs.Name, cs.State.Terminated.Reason, cs.State.Terminated.ExitCode, restarts(cs))))
		}
	}
	if len(out) == 0 && p.Status.Phase == corev1.PodPending {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
				out = append(out, Sanitize(fmt.Sprintf("pod %s: not scheduled: %s", p.Name, c.Message)))
			}
		}
	}
	return out
}

// restarts says how often a container was restarted, if it was: a crash loop between two of its
// restarts shows as terminated.
func restarts(cs corev1.ContainerStatus) string {
	switch {
	case cs.RestartCount == 1:
		return ", restarted once: it keeps crashing (CrashLoopBackOff)"
	case cs.RestartCount > 1:
		return fmt.Sprintf(", restarted %d times: it keeps crashing (CrashLoopBackOff)", cs.RestartCount)
	}
	return ""
}

// lostBuiltImage: the container waits for an image harmony built (under ImageHost) that the
// runtime could not find, so it tried to pull it: the kubelet collected it, or the import was
// lost.
func lostBuiltImage(cs corev1.ContainerStatus) bool {
	if cs.State.Waiting == nil || !strings.HasPrefix(cs.Image, ImageHost+"/") {
		return false
	}
	return cs.State.Waiting.Reason == "ErrImagePull" || cs.State.Waiting.Reason == "ImagePullBackOff"
}

func (e *Engine) events(ctx context.Context, ns, name string) []string {
	if ns == "" {
		return nil
	}
	evs, err := e.client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
	if err != nil {
		return nil
	}
	var out []string
	for _, ev := range evs.Items {
		if ev.Type == corev1.EventTypeWarning {
			out = append(out, Sanitize(fmt.Sprintf("event on %s/%s: %s: %s", strings.ToLower(ev.InvolvedObject.Kind), name, ev.Reason, ev.Message)))
		}
	}
	if len(out) > 3 {
		out = out[len(out)-3:]
	}
	return out
}

// logTail returns the last lines a container wrote: its previous run's, or (previous false) the
// current one's. The kubelet answers a log it no longer has with a sentence instead of an error:
// that is no log line.
func (e *Engine) logTail(ctx context.Context, p corev1.Pod, container string, previous bool) []string {
	tail := int64(5)
	raw, err := e.client.CoreV1().Pods(p.Namespace).GetLogs(p.Name, &corev1.PodLogOptions{Container: container, TailLines: &tail, Previous: previous}).DoRaw(ctx)
	if err != nil || len(raw) == 0 || strings.HasPrefix(string(raw), "unable to retrieve container logs for ") {
		return nil
	}
	return logLines(p.Name, container, raw)
}

// logLines turns a container's log tail into reason lines: each line sanitized (the log is
// written by the repository's image) and cut.
func logLines(pod, container string, raw []byte) []string {
	var out []string
	for _, l := range sanitizeLines(string(raw)) {
		out = append(out, Sanitize(fmt.Sprintf("log %s/%s: %s", pod, container, l)))
	}
	return out
}
