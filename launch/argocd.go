package launch

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"sigs.k8s.io/cli-utils/pkg/object"
)

// Argo CD's conventions, as repos written for it use them: sync waves order the apply, and
// hook annotations make an object a hook, run like a chart's Helm hooks.
const (
	argoHookAnnotation   = "argocd.argoproj.io/hook"
	argoDeleteAnnotation = "argocd.argoproj.io/hook-delete-policy"
	argoWaveAnnotation   = "argocd.argoproj.io/sync-wave"
)

// Hook events beyond Helm's: Argo CD's Sync hooks run once the objects are applied, its
// SyncFail hooks when a launch fails after it began to change the cluster.
const (
	SyncEvent     = "sync"
	SyncFailEvent = "sync-fail"
)

// isHookObject reports whether o is a hook (Helm's or Argo CD's), the only objects that may
// have a generateName instead of a name: each run creates a new one.
func isHookObject(o Object) bool {
	ann := o.GetAnnotations()
	return ann[helmHookAnnotation] != "" || ann[argoHookAnnotation] != ""
}

// argoHooks takes Argo CD's hooks out of objs. skipped are lines for the user: hooks launch
// never runs (PreDelete, PostDelete, unknown ones) and objects marked Skip, which are not
// applied. A sync wave that is not a whole number is an error naming the object.
func argoHooks(objs []Object) (kept []Object, hooks []Hook, skipped []string, err error) {
	var bad []string
	for _, o := range objs {
		ann := o.GetAnnotations()
		if w, ok := ann[argoWaveAnnotation]; ok {
			if _, werr := strconv.Atoi(strings.TrimSpace(w)); werr != nil {
				bad = append(bad, fmt.Sprintf("%s (%s): %s %q is not a whole number", objectName(o), o.Origin, argoWaveAnnotation, Sanitize(w)))
				continue
			}
		}
		v, ok := ann[argoHookAnnotation]
		if !ok {
			kept = append(kept, o)
			continue
		}
		h, skip := newArgoHook(o, v)
		if skip != "" {
			skipped = append(skipped, skip)
			continue
		}
		hooks = append(hooks, h)
	}
	if len(bad) > 0 {
		return nil, nil, nil, fmt.Errorf("%w:\n  %s", ErrBadManifest, strings.Join(bad, "\n  "))
	}
	return kept, hooks, skipped, nil
}

// newArgoHook reads an Argo CD hook: PreSync runs as Helm's pre-install and pre-upgrade hooks
// do, PostSync as post-install and post-upgrade, Sync once the objects are applied, SyncFail
// when the launch fails. Its weight is its sync wave; its delete policy defaults to
// BeforeHookCreation, as Argo CD's does.
func newArgoHook(obj Object, events string) (Hook, string) {
	h := Hook{Object: obj, argo: true}
	name := objectName(obj)
	for e := range strings.SplitSeq(events, ",") {
		switch e = strings.TrimSpace(e); strings.ToLower(e) {
		case "presync":
			h.Events = append(h.Events, PreInstall, PreUpgrade)
		case "sync":
			h.Events = append(h.Events, SyncEvent)
		case "postsync":
			h.Events = append(h.Events, PostInstall, PostUpgrade)
		case "syncfail":
			h.Events = append(h.Events, SyncFailEvent)
		case "skip":
			return h, fmt.Sprintf("%s (%s: Skip: not applied)", name, argoHookAnnotation)
		case "predelete", "postdelete":
			return h, fmt.Sprintf("%s (%s hook: harmony down does not run it)", name, Sanitize(e))
		default:
			return h, fmt.Sprintf("%s (unknown Argo CD hook %q)", name, Sanitize(e))
		}
	}
	ann := obj.GetAnnotations()
	h.Weight, _ = strconv.Atoi(strings.TrimSpace(ann[argoWaveAnnotation]))
	for p := range strings.SplitSeq(ann[argoDeleteAnnotation], ",") {
		switch strings.ToLower(strings.TrimSpace(p)) {
		case "hooksucceeded":
			h.DeletePolicies = append(h.DeletePolicies, hookSucceeded)
		case "hookfailed":
			h.DeletePolicies = append(h.DeletePolicies, hookFailed)
		case "beforehookcreation":
			h.DeletePolicies = append(h.DeletePolicies, hookBeforeHookCreation)
		}
	}
	if len(h.DeletePolicies) == 0 {
		h.DeletePolicies = []string{hookBeforeHookCreation}
	}
	return h, ""
}

// eventName is how the hook's own tool names event: Argo CD's phases for its hooks.
func (h Hook) eventName(event string) string {
	if !h.argo {
		return event
	}
	switch event {
	case PreInstall, PreUpgrade:
		return "PreSync"
	case PostInstall, PostUpgrade:
		return "PostSync"
	case SyncEvent:
		return "Sync"
	case SyncFailEvent:
		return "SyncFail"
	}
	return event
}

// note says when the hook runs, for a plan.
func (h Hook) note() string {
	if !h.argo {
		return fmt.Sprintf("%s, weight %d", strings.Join(h.Events, ","), h.Weight)
	}
	var names []string
	for _, e := range h.Events {
		if n := h.eventName(e); !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	return fmt.Sprintf("%s, wave %d", strings.Join(names, ","), h.Weight)
}

// hookRef names a hook in progress lines and plans; one with a generateName gets a new name
// each run ("job/migrate-…").
func hookRef(h Hook) string {
	id := object.UnstructuredToObjMetadata(h.Unstructured)
	if id.Name == "" {
		id.Name = h.GetGenerateName() + "…"
	}
	return ref(id)
}

func objectName(o Object) string {
	n := o.GetName()
	if n == "" {
		n = o.GetGenerateName() + "…"
	}
	return Sanitize(strings.ToLower(o.GetKind()) + "/" + n)
}

// syncWave is an object's Argo CD sync wave (0 without one; argoHooks checked it).
func syncWave(o Object) int {
	w, _ := strconv.Atoi(strings.TrimSpace(o.GetAnnotations()[argoWaveAnnotation]))
	return w
}
