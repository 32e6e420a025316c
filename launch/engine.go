package launch

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/cli-utils/pkg/object"

	"github.com/NationTech/harmony-agent/internal/hint"
)

// FieldManager owns every field harmony applies.
const FieldManager = "harmony"

// Labels and annotations harmony sets.
const (
	// OwningInventoryAnnotation marks an object as applied by one harmony project (cli-utils' key).
	OwningInventoryAnnotation = "config.k8s.io/owning-inventory"
	// InventoryLabel identifies an inventory ConfigMap (cli-utils' key).
	InventoryLabel = "cli-utils.sigs.k8s.io/inventory-id"
	// CreatedNamespaceAnnotation marks a namespace harmony created, with the inventory id of the
	// project that created it: down deletes a namespace only when its own project created it.
	CreatedNamespaceAnnotation = "harmony.dev/created-by-harmony"
	// ChartCRDAnnotation marks a CRD that came from a Helm chart's crds/ folder (the value is
	// the chart's name): like Helm, neither down nor a launch's prune ever deletes it.
	ChartCRDAnnotation = "harmony.dev/chart-crd"
	managedByLabel     = "app.kubernetes.io/managed-by"
)

// ErrRejected means the server refused objects in the dry run: nothing was applied.
var ErrRejected = errors.New("the cluster rejected objects; nothing was applied")

// ErrNotReady means objects did not become ready in time.
var ErrNotReady = errors.New("not ready")

// Action is what launch does (or would do) with one object.
type Action string

// Actions.
const (
	Create    Action = "create"
	Update    Action = "update"
	Unchanged Action = "unchanged"
	Prune     Action = "prune"
	Skip      Action = "left alone"
)

// Step is one line of the plan.
type Step struct {
	ID     object.ObjMetadata `json:"-"`
	Ref    string             `json:"object"`
	Action Action             `json:"action"`
	Origin string             `json:"origin,omitempty"`
	Note   string             `json:"note,omitempty"`

	keep    bool // a prune that could not be decided: the inventory keeps the object
	keptCRD bool // a CRD not deleted on purpose (chart crds/, or others' resources of its kind)
	release bool // a namespace kept: down removes the project's mark from it
	uid     types.UID
	// apiVersion is the object's, when the step was planned from it (-o json).
	apiVersion string
}

// Engine talks to one cluster.
type Engine struct {
	cfg    *rest.Config
	dyn    dynamic.Interface
	client *clients
	mapper meta.ResettableRESTMapper
}

// NewEngine connects to the cluster of cfg, mapping kinds through its discovery API.
func NewEngine(cfg *rest.Config) (*Engine, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = 2000, 4000 // a local cluster; the server's priority and fairness still applies
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	client, err := newClients(cfg)
	if err != nil {
		return nil, err
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(client.Discovery()))
	return &Engine{cfg: cfg, dyn: dyn, client: client, mapper: mapper}, nil
}

// ref renders an object reference as kind/name (namespace shown when set).
func ref(id object.ObjMetadata) string {
	kind := strings.ToLower(id.GroupKind.Kind)
	if id.Namespace != "" {
		return fmt.Sprintf("%s/%s (namespace %s)", kind, id.Name, id.Namespace)
	}
	return kind + "/" + id.Name
}

func (e *Engine) resource(u *unstructured.Unstructured) (dynamic.ResourceInterface, *meta.RESTMapping, error) {
	gvk := u.GroupVersionKind()
	m, err := e.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, nil, err
	}
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		return e.dyn.Resource(m.Resource).Namespace(u.GetNamespace()), m, nil
	}
	return e.dyn.Resource(m.Resource), m, nil
}

func (e *Engine) resourceFor(id object.ObjMetadata) (dynamic.ResourceInterface, error) {
	mappings, err := e.mapper.RESTMappings(id.GroupKind)
	if err != nil || len(mappings) == 0 {
		return nil, fmt.Errorf("map %s: %w", id.GroupKind, err)
	}
	m := mappings[0]
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		return e.dyn.Resource(m.Resource).Namespace(id.Namespace), nil
	}
	return e.dyn.Resource(m.Resource), nil
}

// apply sends one object with server-side apply, for real or as a dry run. force takes over
// fields other managers set: only for objects the project owns (or adopts).
func (e *Engine) apply(ctx context.Context, u *unstructured.Unstructured, dryRun, force bool) (*unstructured.Unstructured, error) {
	ri, _, err := e.resource(u)
	if err != nil {
		return nil, err
	}
	data, err := u.MarshalJSON()
	if err != nil {
		return nil, err
	}
	opts := metav1.PatchOptions{FieldManager: FieldManager, Force: &force}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	return ri.Patch(ctx, u.GetName(), types.ApplyPatchType, data, opts)
}

// same reports whether a dry-run result equals the live object, ignoring what the server
// changes on every write.
func same(live, result *unstructured.Unstructured) bool {
	strip := func(u *unstructured.Unstructured) map[string]any {
		c := u.DeepCopy().Object
		md, _ := c["metadata"].(map[string]any)
		for _, k := range []string{"managedFields", "resourceVersion", "generation", "creationTimestamp", "uid", "selfLink"} {
			delete(md, k)
		}
		delete(c, "status")
		return c
	}
	return apiequality.Semantic.DeepEqual(strip(live), strip(result))
}

// prepare maps every object, puts namespaced objects without a namespace into ns, marks them as
// the project's, and orders Namespaces and CRDs first.
func (e *Engine) prepare(objs []Object, p *Project) ([]Object, error) {
	ns, inventoryID := p.Namespace, p.InventoryID
	var crds []*unstructured.Unstructured
	for _, o := range objs {
		if object.IsCRD(o.Unstructured) {
			crds = append(crds, o.Unstructured)
		}
	}
	var rejections []string
	seen := map[object.ObjMetadata]string{}
	for _, o := range objs {
		scope, err := object.LookupResourceScope(o.Unstructured, crds, e.mapper)
		if err != nil {
			rejections = append(rejections, fmt.Sprintf("%s %s/%s (%s): the cluster has no such kind: %v", o.GetAPIVersion(), o.GetKind(), o.GetName(), o.Origin, err))
			continue
		}
		if scope == meta.RESTScopeNamespace && o.GetNamespace() == "" {
			o.SetNamespace(ns)
		}
		if scope == meta.RESTScopeRoot {
			o.SetNamespace("")
		}
		ann := o.GetAnnotations()
		if ann == nil {
			ann = map[string]string{}
		}
		ann[OwningInventoryAnnotation] = inventoryID
		o.SetAnnotations(ann)
		id := object.UnstructuredToObjMetadata(o.Unstructured)
		if prev, dup := seen[id]; dup && id.Name != "" { // a generateName is a new object each run
			rejections = append(rejections, fmt.Sprintf("%s is defined twice (%s and %s)", ref(id), prev, o.Origin))
		}
		seen[id] = o.Origin
	}
	if len(rejections) > 0 {
		return nil, hint.With(fmt.Errorf("%w:\n  %s", ErrRejected, strings.Join(rejections, "\n  ")),
			"install the operator or CRD that defines these kinds, or include its CRD in the project")
	}
	sort.SliceStable(objs, func(i, j int) bool { return phase(objs[i].Unstructured) < phase(objs[j].Unstructured) })
	return objs, nil
}

// phase orders Namespaces and CRDs before everything that may need them.
func phase(u *unstructured.Unstructured) int {
	switch {
	case object.IsNamespace(u):
		return 0
	case object.IsCRD(u):
		return 1
	}
	return 2
}

// waitEstablished waits until CRDs are established, then refreshes the kind mapping.
func (e *Engine) waitEstablished(ctx context.Context, crds []*unstructured.Unstructured) error {
	gvr := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	deadline, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for _, crd := range crds {
		for {
			live, err := e.dyn.Resource(gvr).Get(deadline, crd.GetName(), metav1.GetOptions{})
			if err == nil && conditionTrue(live, "Established") {
				break
			}
			select {
			case <-deadline.Done():
				return fmt.Errorf("CRD %s was not established within a minute", crd.GetName())
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	e.mapper.Reset()
	return nil
}

func conditionTrue(u *unstructured.Unstructured, typ string) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if m["type"] == typ && m["status"] == "True" {
			return true
		}
	}
	return false
}

// ensureNamespace creates the project namespace when missing (from the project's own Namespace
// object when it lists one, already marked) and reports whether it did.
func (e *Engine) ensureNamespace(ctx context.Context, p *Project, live *corev1.Namespace, listed *unstructured.Unstructured, level string) (bool, error) {
	ns := p.Namespace
	exists := live != nil // as projectNamespace read it at the start of the launch
	u := listed
	if u == nil {
		if exists && (live.Annotations[CreatedNamespaceAnnotation] != p.InventoryID || live.Labels[podSecurityEnforce] == level) {
			return false, nil // not harmony's to label, or labelled already
		}
		// harmony's own: its Pod Security level follows what the user allowed.
		u = &unstructured.Unstructured{Object: map[string]any{
			"apiVersion": "v1", "kind": "Namespace",
			"metadata": map[string]any{
				"name":        ns,
				"labels":      map[string]any{managedByLabel: "harmony"},
				"annotations": map[string]any{CreatedNamespaceAnnotation: p.InventoryID},
			},
		}}
		setPodSecurity(u, level)
	}
	if exists {
		if listed == nil {
			if _, err := e.apply(ctx, u, false, false); err != nil {
				return false, fmt.Errorf("label namespace %s: %w", ns, err)
			}
		}
		return false, nil // a listed one is applied with the other objects
	}
	if _, err := e.apply(ctx, u, false, false); err != nil {
		return false, fmt.Errorf("create namespace %s: %w", ns, err)
	}
	return true, nil
}

// createdBy reports whether project p created the namespace ns.
func createdBy(ns *unstructured.Unstructured, p *Project) bool {
	return ns.GetAnnotations()[CreatedNamespaceAnnotation] == p.InventoryID
}

// namespacesOf lists the namespaces a launch writes to: the project's, those its objects name,
// and the Namespaces it lists.
func namespacesOf(objs []Object, project string) []string {
	seen := map[string]bool{project: true}
	out := []string{project}
	add := func(ns string) {
		if ns != "" && !seen[ns] {
			seen[ns] = true
			out = append(out, ns)
		}
	}
	for _, o := range objs {
		add(o.GetNamespace())
		if object.IsNamespace(o.Unstructured) {
			add(o.GetName())
		}
	}
	return out
}

// waitNamespacesGone waits until none of the namespaces is terminating (a failed launch's undo,
// or a down, may have just deleted one), printing a line while it waits, at most o.Timeout.
func (e *Engine) waitNamespacesGone(ctx context.Context, p *Project, namespaces []string, o Options) error {
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	for _, ns := range namespaces {
		said := false
		for {
			live, err := e.client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
			if apierrors.IsNotFound(err) || (err == nil && live.DeletionTimestamp == nil) {
				break
			}
			if err != nil {
				return fmt.Errorf("namespace %s: %w", ns, err)
			}
			if !said {
				fmt.Fprintf(o.Out, "waiting for namespace %s to finish terminating (deleted %s ago)\n", ns, time.Since(live.DeletionTimestamp.Time).Round(time.Second))
				said = true
			}
			select {
			case <-ctx.Done():
				return hint.With(fmt.Errorf("namespace %s is still terminating after %s: %w", ns, o.Timeout, ctx.Err()),
					"something holds it (finalizers): "+p.kubectl("get", "namespace", ns, "-o", "yaml"))
			case <-time.After(250 * time.Millisecond):
			}
		}
	}
	return nil
}

func (e *Engine) namespaceExists(ctx context.Context, ns string) bool {
	_, err := e.client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	return err == nil
}
