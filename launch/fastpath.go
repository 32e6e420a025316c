package launch

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/cli-utils/pkg/object"
)

// The fast path of a launch that changes nothing.
//
// The inventory records, for each object, a digest of what harmony applied and a fingerprint
// of the live object right after (or when a launch found it unchanged): its UID, generation and
// the fields harmony's field manager owns, as managedFields lists them. The next launch reads
// the live objects with one LIST per kind and namespace; an object whose rendered digest and
// live fingerprint both match the inventory is unchanged, without a server-side dry run.
//
// The fingerprint ignores what is no business of the launch: status (a Deployment's changes
// all the time), and fields other managers own (a controller's annotations). It catches any
// change to what harmony applied: a field another manager changed moves out of harmony's
// managedFields entry (an Update takes the fields it changes), a deleted and recreated object
// has a new UID, a spec change a new generation. Anything else (a changed manifest, a changed
// or missing live object, a kind this launch defines) takes the full path.

// stateValue is an object's inventory value: "digest/fingerprint", or "" when unknown.
func stateValue(applied *unstructured.Unstructured, live *unstructured.Unstructured) string {
	f := fingerprint(live)
	if f == "" {
		return ""
	}
	return digest(applied) + "/" + f
}

// digest is a hash of an object as harmony sends it (JSON's map keys are sorted).
func digest(u *unstructured.Unstructured) string {
	b, err := json.Marshal(u.Object)
	if err != nil {
		return "unhashable"
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12])
}

// fingerprint is a hash of what identifies a live object's state as harmony applied it; "" when
// harmony's field manager owns nothing of it.
func fingerprint(live *unstructured.Unstructured) string {
	if live == nil {
		return ""
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%d\x00", live.GetUID(), live.GetGeneration())
	found := false
	for _, m := range live.GetManagedFields() {
		if m.Manager != FieldManager || m.Operation != metav1.ManagedFieldsOperationApply || m.Subresource != "" || m.FieldsV1 == nil {
			continue
		}
		found = true
		fmt.Fprintf(h, "%s\x00%s\x00", m.APIVersion, m.FieldsV1.Raw)
	}
	if !found {
		return ""
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// liveGroup is the objects of one kind in one namespace.
type liveGroup struct {
	gvr       schema.GroupVersionResource
	namespace string
	names     []string
	ids       []object.ObjMetadata
}

// listThreshold is the size of a group read with one LIST instead of a GET per object.
const listThreshold = 3

// readLive reads the live version of each object: one LIST per kind and namespace (a GET each
// for a kind with fewer than listThreshold objects in it). An object that is not there, or whose
// kind this launch defines (a CRD of the launch), has no entry.
func (e *Engine) readLive(ctx context.Context, objs []Object) (map[object.ObjMetadata]*unstructured.Unstructured, error) {
	groups := map[string]*liveGroup{}
	var order []string
	for _, obj := range objs {
		gvk := obj.GroupVersionKind()
		m, err := e.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err != nil {
			continue // its kind comes with this launch (a CRD): it cannot exist yet
		}
		ns := obj.GetNamespace()
		if m.Scope.Name() != meta.RESTScopeNameNamespace {
			ns = ""
		}
		key := m.Resource.String() + "\x00" + ns
		g := groups[key]
		if g == nil {
			g = &liveGroup{gvr: m.Resource, namespace: ns}
			groups[key] = g
			order = append(order, key)
		}
		g.names = append(g.names, obj.GetName())
		g.ids = append(g.ids, object.UnstructuredToObjMetadata(obj.Unstructured))
	}
	var mu sync.Mutex
	live := map[object.ObjMetadata]*unstructured.Unstructured{}
	found := func(id object.ObjMetadata, u *unstructured.Unstructured) {
		mu.Lock()
		live[id] = u
		mu.Unlock()
	}
	// One task per LIST, or per GET of a small group.
	type task struct {
		g *liveGroup
		i int // the object to GET; -1 lists the group
	}
	var tasks []task
	for _, key := range order {
		g := groups[key]
		if len(g.names) >= listThreshold {
			tasks = append(tasks, task{g, -1})
			continue
		}
		for i := range g.names {
			tasks = append(tasks, task{g, i})
		}
	}
	errs := make([]error, len(tasks))
	forEach(len(tasks), func(n int) {
		t := tasks[n]
		ri := e.dyn.Resource(t.g.gvr).Namespace(t.g.namespace)
		if t.i >= 0 {
			u, err := ri.Get(ctx, t.g.names[t.i], metav1.GetOptions{})
			switch {
			case apierrors.IsNotFound(err):
			case err != nil:
				errs[n] = fmt.Errorf("read %s: %w", ref(t.g.ids[t.i]), err)
			default:
				found(t.g.ids[t.i], u)
			}
			return
		}
		list, err := ri.List(ctx, metav1.ListOptions{})
		if err != nil {
			errs[n] = fmt.Errorf("list %s: %w", t.g.gvr.GroupResource(), err)
			return
		}
		byName := map[string]*unstructured.Unstructured{}
		for i := range list.Items {
			byName[list.Items[i].GetName()] = &list.Items[i]
		}
		for i, name := range t.g.names {
			if u := byName[name]; u != nil {
				found(t.g.ids[i], u)
			}
		}
	})
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return live, nil
}

// states are what a launch learns for the inventory: per object, its stateValue once applied or
// found unchanged; fast are the objects the fast path found unchanged.
type states struct {
	mu   sync.Mutex
	v    map[object.ObjMetadata]string
	fast map[object.ObjMetadata]bool
}

func newStates() *states {
	return &states{v: map[object.ObjMetadata]string{}, fast: map[object.ObjMetadata]bool{}}
}

func (s *states) set(id object.ObjMetadata, applied, live *unstructured.Unstructured) {
	if s == nil {
		return
	}
	v := stateValue(applied, live)
	s.mu.Lock()
	s.v[id] = v
	s.mu.Unlock()
}

// value is what the inventory records for id: what this launch learnt, else what it held.
func (s *states) value(id object.ObjMetadata, inv *Inventory) string {
	if s != nil {
		s.mu.Lock()
		v, ok := s.v[id]
		s.mu.Unlock()
		if ok {
			return v
		}
	}
	return inv.data[id.String()]
}

// findUnchanged marks the objects whose rendered digest and live fingerprint are what the
// inventory recorded: unchanged since harmony applied them, so no dry run is needed. Only
// objects of kinds the cluster knows, carrying the project's mark; never Namespaces or CRDs.
func (s *states) findUnchanged(objs []Object, lives map[object.ObjMetadata]*unstructured.Unstructured, inv *Inventory, p *Project) {
	for _, obj := range objs {
		if phase(obj.Unstructured) < 2 {
			continue
		}
		id := object.UnstructuredToObjMetadata(obj.Unstructured)
		live := lives[id]
		want := inv.data[id.String()]
		if live == nil || want == "" || !ours(live, p) {
			continue
		}
		if stateValue(obj.Unstructured, live) == want && holds(live, obj.Unstructured) {
			s.fast[id] = true
		}
	}
}

// holds reports whether live has every value harmony applies (applied is a part of it). The
// fingerprint alone can be forged: a client that edits a field and then writes the object again,
// unchanged, with harmony's managedFields entry as it was, leaves an object whose fingerprint
// matches (the API server keeps the managedFields a client sends; objects without a generation,
// ConfigMaps, Secrets, Services, RBAC, show no other trace). A value the server normalises
// (a quantity, stringData) takes the full path, which is always right.
func holds(live, applied *unstructured.Unstructured) bool {
	want := applied.Object
	if sd, ok := want["stringData"].(map[string]any); ok && applied.GetKind() == "Secret" && applied.GroupVersionKind().Group == "" {
		// The server keeps stringData as data, base64-encoded, over data's own keys.
		want = maps.Clone(want)
		data := map[string]any{}
		if d, ok := want["data"].(map[string]any); ok {
			maps.Copy(data, d)
		}
		for k, v := range sd {
			s, ok := v.(string)
			if !ok {
				return false
			}
			data[k] = base64.StdEncoding.EncodeToString([]byte(s))
		}
		delete(want, "stringData")
		want["data"] = data
	}
	return containsValues(live.Object, want)
}

// containsValues reports whether have holds every value of want: maps key by key, lists element by
// element (of the same length), numbers by value; a null in want is anything.
func containsValues(have, want any) bool {
	switch w := want.(type) {
	case nil:
		return true
	case map[string]any:
		h, ok := have.(map[string]any)
		if !ok {
			return false
		}
		for k, wv := range w {
			hv, ok := h[k]
			if !ok && wv != nil {
				return false
			}
			if !containsValues(hv, wv) {
				return false
			}
		}
		return true
	case []any:
		h, ok := have.([]any)
		if !ok || len(h) != len(w) {
			return false
		}
		for i := range w {
			if !containsValues(h[i], w[i]) {
				return false
			}
		}
		return true
	case int64, float64, int, int32:
		a, aok := number(w)
		b, bok := number(have)
		return aok && bok && a == b
	}
	return have == want
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case int64:
		return float64(n), true
	case float64:
		return n, true
	case int:
		return float64(n), true
	case int32:
		return float64(n), true
	}
	return 0, false
}
