package launch

import (
	"context"
	"fmt"
	"maps"
	"sort"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/cli-utils/pkg/object"
)

// InventoryName is the ConfigMap in the project's namespace that records what harmony applied
// for it, in cli-utils' inventory format (one data key per object, "<ns>_<name>_<group>_<kind>",
// labelled cli-utils.sigs.k8s.io/inventory-id), so cli-utils-based tools can read it too. Each
// project has its own, so projects sharing a namespace never prune each other.
func (p *Project) InventoryName() string { return "harmony-inventory-" + p.InventoryID }

// ProjectRootAnnotation on an inventory says which folder the project was launched from (its
// app's folder), so harmony can name the project that owns an object.
const ProjectRootAnnotation = "harmony.dev/project-root"

// RepositoryAnnotation and AppAnnotation on an inventory say which repository it was launched
// from and the app's path in it, so status and down at the repository's root find its apps.
const (
	RepositoryAnnotation = "harmony.dev/repository"
	AppAnnotation        = "harmony.dev/app-path"
)

// Inventory is the set of objects a project applied.
type Inventory struct {
	ID      string
	Objects object.ObjMetadataSet
	exists  bool // in the cluster now
	existed bool // in the cluster before this launch
	data    map[string]string
}

func (e *Engine) loadInventory(ctx context.Context, p *Project) (*Inventory, error) {
	ns, id, name := p.Namespace, p.InventoryID, p.InventoryName()
	inv := &Inventory{ID: id}
	cm, err := e.client.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return inv, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read inventory %s/%s: %w", ns, name, err)
	}
	if got := cm.Labels[InventoryLabel]; got != id {
		return nil, fmt.Errorf("configmap %s/%s belongs to inventory %q, not %q: harmony leaves it alone", ns, name, got, id)
	}
	inv.exists, inv.existed, inv.data = true, true, cm.Data
	for k := range cm.Data {
		o, err := object.ParseObjMetadata(k)
		if err != nil {
			return nil, fmt.Errorf("inventory %s/%s: %w", ns, name, err)
		}
		inv.Objects = append(inv.Objects, o)
	}
	sort.Slice(inv.Objects, func(i, j int) bool { return inv.Objects[i].String() < inv.Objects[j].String() })
	return inv, nil
}

// saveInventory records objs, each with what st learnt of it (else what the inventory held: see
// fastpath.go); it writes nothing when the inventory already says exactly that.
func (e *Engine) saveInventory(ctx context.Context, p *Project, inv *Inventory, objs object.ObjMetadataSet, st *states) error {
	ns, name := p.Namespace, p.InventoryName()
	data := map[string]string{}
	for _, o := range objs {
		data[o.String()] = st.value(o, inv)
	}
	if inv.exists && maps.Equal(inv.data, data) {
		return nil
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: ns,
			Labels:      map[string]string{InventoryLabel: inv.ID, managedByLabel: "harmony"},
			Annotations: map[string]string{ProjectRootAnnotation: p.App, RepositoryAnnotation: p.Root, AppAnnotation: p.AppPath},
		},
		Data: data,
	}
	var err error
	if inv.exists {
		_, err = e.client.CoreV1().ConfigMaps(ns).Update(ctx, cm, metav1.UpdateOptions{FieldManager: FieldManager})
	} else {
		_, err = e.client.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{FieldManager: FieldManager})
	}
	if err != nil {
		return fmt.Errorf("write inventory %s/%s: %w", ns, name, err)
	}
	inv.exists, inv.data = true, data // the next save in this launch updates what was written
	return nil
}

func (e *Engine) deleteInventory(ctx context.Context, p *Project) error {
	err := e.client.CoreV1().ConfigMaps(p.Namespace).Delete(ctx, p.InventoryName(), metav1.DeleteOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
