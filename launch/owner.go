package launch

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/object"

	"github.com/NationTech/harmony-agent/internal/hint"
)

// ErrNotOwned means objects of the project already exist and are not the project's: nothing
// was applied.
var ErrNotOwned = errors.New("objects already exist and are not this project's; nothing was applied")

// Helm's ownership marks (Helm 3 refuses to take objects without them; harmony refuses to take
// objects with them).
const (
	helmReleaseNameAnnotation      = "meta.helm.sh/release-name"
	helmReleaseNamespaceAnnotation = "meta.helm.sh/release-namespace"
)

// OwnerKind says who an existing object belongs to.
type OwnerKind string

// Owner kinds, from the strongest claim to none. Only objects of the last two can be adopted.
const (
	OwnerHarmony    OwnerKind = "harmony"    // another harmony project (or another cli-utils inventory)
	OwnerHelm       OwnerKind = "helm"       // a Helm release
	OwnerController OwnerKind = "controller" // a controller (ownerReferences)
	OwnerManager    OwnerKind = "manager"    // written by kubectl or another field manager, no inventory
	OwnerNobody     OwnerKind = "nobody"
)

// Conflict is an existing object the launch would change but does not own.
type Conflict struct {
	Ref    string    `json:"object"`
	Origin string    `json:"origin,omitempty"`
	Owner  OwnerKind `json:"owner"`
	Detail string    `json:"detail"`
}

// Adoptable reports whether --adopt may take the object over.
func (c Conflict) Adoptable() bool { return c.Owner == OwnerManager || c.Owner == OwnerNobody }

// claim is what launch found about one object before touching anything.
type claim struct {
	live    *unstructured.Unstructured // nil when it does not exist
	adopted bool                       // exists, nobody's, taken over with --adopt
}

// ours reports whether live carries this project's mark. A namespace this project created (the
// project namespace) counts as ours too.
func ours(live *unstructured.Unstructured, p *Project) bool {
	ann := live.GetAnnotations()
	return ann[OwningInventoryAnnotation] == p.InventoryID ||
		(object.IsNamespace(live) && ann[CreatedNamespaceAnnotation] == p.InventoryID)
}

// claims decides, from every object of the launch as it exists now (lives: readLive), whether
// the project may change it: it may when the object does not exist or carries the project's
// mark, and, with adopt, when nobody owns it. Everything else is a conflict.
func (e *Engine) claims(ctx context.Context, objs []Object, lives map[object.ObjMetadata]*unstructured.Unstructured, p *Project, adopt bool) (map[object.ObjMetadata]claim, []Conflict) {
	out := make([]claim, len(objs))
	conflicts := make([]*Conflict, len(objs))
	forEach(len(objs), func(i int) {
		obj := objs[i]
		live := lives[object.UnstructuredToObjMetadata(obj.Unstructured)]
		if live == nil {
			return // not there, or its kind comes with this launch (a CRD): it cannot exist yet
		}
		out[i].live = live
		if ours(live, p) {
			return
		}
		kind, detail := e.owner(ctx, live)
		c := &Conflict{Ref: ref(object.UnstructuredToObjMetadata(obj.Unstructured)), Origin: obj.Origin, Owner: kind, Detail: detail}
		if adopt && c.Adoptable() {
			out[i].adopted = true
			return
		}
		conflicts[i] = c
	})
	m := map[object.ObjMetadata]claim{}
	var cs []Conflict
	for i, obj := range objs {
		m[object.UnstructuredToObjMetadata(obj.Unstructured)] = out[i]
		if conflicts[i] != nil {
			cs = append(cs, *conflicts[i])
		}
	}
	return m, cs
}

// owner says who an object without this project's mark belongs to.
func (e *Engine) owner(ctx context.Context, live *unstructured.Unstructured) (OwnerKind, string) {
	ann, labels := live.GetAnnotations(), live.GetLabels()
	if inv := ann[OwningInventoryAnnotation]; inv != "" {
		return OwnerHarmony, e.describeInventory(ctx, inv)
	}
	// A project's inventory and the namespaces it created are that project's, though they
	// carry no inventory mark of their own.
	if inv := labels[InventoryLabel]; inv != "" {
		return OwnerHarmony, "the inventory of " + e.describeInventory(ctx, inv)
	}
	if inv := ann[CreatedNamespaceAnnotation]; inv != "" {
		return OwnerHarmony, "created by " + e.describeInventory(ctx, inv)
	}
	if rel := ann[helmReleaseNameAnnotation]; rel != "" {
		if ns := ann[helmReleaseNamespaceAnnotation]; ns != "" {
			rel = ns + "/" + rel
		}
		return OwnerHelm, "Helm release " + rel
	}
	if labels[managedByLabel] == "Helm" {
		return OwnerHelm, "a Helm release (labelled " + managedByLabel + "=Helm)"
	}
	// k3s's own: what its deploy controller applied from its manifests (coredns, traefik, …) and
	// what its Helm controller installed carry wrangler's objectset marks.
	if gvk := ann["objectset.rio.cattle.io/owner-gvk"]; gvk != "" {
		return OwnerController, "k3s's (" + gvk + " " + ann["objectset.rio.cattle.io/owner-namespace"] + "/" + ann["objectset.rio.cattle.io/owner-name"] + ")"
	}
	if labels["objectset.rio.cattle.io/hash"] != "" || ann["objectset.rio.cattle.io/id"] != "" {
		return OwnerController, "k3s's (objectset.rio.cattle.io marks)"
	}
	for _, o := range live.GetOwnerReferences() {
		if o.Controller != nil && *o.Controller {
			return OwnerController, fmt.Sprintf("controlled by %s/%s", strings.ToLower(o.Kind), o.Name)
		}
	}
	if ms := managers(live); len(ms) > 0 {
		return OwnerManager, "written by " + strings.Join(ms, ", ") + " (field managers), no inventory"
	}
	return OwnerNobody, "no inventory, no field manager"
}

// describeInventory names the project behind another inventory id.
func (e *Engine) describeInventory(ctx context.Context, id string) string {
	list, err := e.client.CoreV1().ConfigMaps("").List(ctx, metav1.ListOptions{LabelSelector: InventoryLabel + "=" + id, Limit: 1})
	if err == nil && len(list.Items) == 1 {
		cm := list.Items[0]
		if root := cm.Annotations[ProjectRootAnnotation]; root != "" {
			return fmt.Sprintf("another harmony project (%s, namespace %s)", root, cm.Namespace)
		}
		return fmt.Sprintf("the inventory %s/%s (another cli-utils tool)", cm.Namespace, cm.Name)
	}
	return fmt.Sprintf("another harmony project (inventory %s)", id)
}

// managers lists the field managers that wrote an object's spec or data (not only its status),
// other than harmony.
func managers(live *unstructured.Unstructured) []string {
	seen := map[string]bool{}
	var out []string
	for _, mf := range live.GetManagedFields() {
		if mf.Subresource != "" || mf.Manager == "" || mf.Manager == FieldManager || seen[mf.Manager] {
			continue
		}
		seen[mf.Manager] = true
		out = append(out, mf.Manager)
	}
	sort.Strings(out)
	return out
}

func conflictError(cs []Conflict, adopt bool, adoptCommand string) error {
	lines := make([]string, len(cs))
	var adoptable []string
	for i, c := range cs {
		lines[i] = fmt.Sprintf("%s (%s): %s", c.Ref, c.Origin, Sanitize(c.Detail)) // annotations and manager names come from the cluster
		if c.Adoptable() {
			adoptable = append(adoptable, c.Ref)
		}
	}
	err := fmt.Errorf("%w:\n  %s", ErrNotOwned, strings.Join(lines, "\n  "))
	var hints []string
	if len(adoptable) > 0 && !adopt {
		hints = append(hints, "nobody owns "+strings.Join(adoptable, ", ")+": to make the project their owner (launch updates them, down deletes them, but never a namespace harmony did not create): "+adoptCommand)
	}
	if len(adoptable) < len(cs) {
		hints = append(hints, "harmony never takes objects of another harmony project, a Helm release or a controller: remove them from this project's manifests, or remove them from the cluster (harmony down, helm uninstall) first")
	}
	return hint.With(err, hints...)
}
