package launch

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/cli-utils/pkg/object"

	"github.com/NationTech/harmony-agent/internal/hint"
)

// Endpoint is one way to reach what runs.
type Endpoint struct {
	Object string `json:"object"`
	URL    string `json:"url"`
	Note   string `json:"note,omitempty"`
}

// Endpoints lists how to reach the launched Services and Ingresses: NodePort and LoadBalancer
// Services on localhost, Ingress hosts.
func (e *Engine) Endpoints(ctx context.Context, ids object.ObjMetadataSet) []Endpoint {
	var out []Endpoint
	for _, id := range ids {
		ri, err := e.resourceFor(id)
		if err != nil {
			continue
		}
		switch {
		case id.GroupKind.Group == "" && id.GroupKind.Kind == "Service":
			live, err := ri.Get(ctx, id.Name, metav1.GetOptions{})
			if err != nil {
				continue
			}
			typ, _, _ := unstructured.NestedString(live.Object, "spec", "type")
			ports, _, _ := unstructured.NestedSlice(live.Object, "spec", "ports")
			for _, p := range ports {
				pm, _ := p.(map[string]any)
				port, _, _ := unstructured.NestedInt64(pm, "port")
				node, _, _ := unstructured.NestedInt64(pm, "nodePort")
				switch typ {
				case "NodePort":
					out = append(out, Endpoint{Object: ref(id), URL: fmt.Sprintf("http://localhost:%d", node)})
				case "LoadBalancer":
					out = append(out, Endpoint{Object: ref(id), URL: fmt.Sprintf("http://localhost:%d", port)})
				default:
					out = append(out, Endpoint{Object: ref(id), URL: fmt.Sprintf("%s.%s.svc:%d", id.Name, id.Namespace, port),
						Note: fmt.Sprintf("inside the cluster; from here: kubectl port-forward -n %s svc/%s %d", id.Namespace, id.Name, port)})
				}
			}
		case id.GroupKind.Group == "networking.k8s.io" && id.GroupKind.Kind == "Ingress":
			live, err := ri.Get(ctx, id.Name, metav1.GetOptions{})
			if err != nil {
				continue
			}
			rules, _, _ := unstructured.NestedSlice(live.Object, "spec", "rules")
			for _, r := range rules {
				host, _, _ := unstructured.NestedString(r.(map[string]any), "host")
				if host == "" {
					host = "localhost"
				}
				out = append(out, Endpoint{Object: ref(id), URL: "http://" + host})
			}
		}
	}
	return out
}

// OnlyServices keeps the endpoints of the named Services and Ingresses (harmony.yaml's services).
func OnlyServices(eps []Endpoint, names []string) []Endpoint {
	keep := map[string]bool{}
	for _, n := range names {
		keep[n] = true
	}
	var out []Endpoint
	for _, ep := range eps {
		name := strings.SplitN(strings.SplitN(ep.Object, "/", 2)[1], " ", 2)[0]
		if keep[name] {
			out = append(out, ep)
		}
	}
	return out
}

// PrintPlan writes the plan as a table.
func PrintPlan(w io.Writer, plan []Step) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ACTION\tOBJECT\tFROM")
	for _, s := range plan {
		from := s.Origin
		if s.Note != "" {
			from = strings.TrimSpace(from + " (" + s.Note + ")")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Action, s.Ref, from)
	}
	tw.Flush()
}

// PrintSummary writes what runs and how to reach it.
func PrintSummary(w io.Writer, rep *Report) {
	counts := map[Action]int{}
	for _, s := range rep.Plan {
		counts[s.Action]++
	}
	fmt.Fprintf(w, "namespace %s: %d created, %d updated, %d unchanged, %d pruned\n",
		rep.Namespace, counts[Create], counts[Update], counts[Unchanged], counts[Prune])
	if len(rep.Endpoints) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tREACH IT AT")
	for _, ep := range rep.Endpoints {
		url := ep.URL
		if ep.Note != "" {
			url += "  (" + ep.Note + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\n", ep.Object, url)
	}
	tw.Flush()
}

// Down deletes everything the project's inventory lists (and the namespace when harmony created
// it), waiting until it is gone.
func (e *Engine) Down(ctx context.Context, ns, project string, timeout time.Duration, out io.Writer) ([]Step, error) {
	inv, err := e.loadInventory(ctx, ns, project)
	if err != nil {
		return nil, err
	}
	if !inv.exists {
		return nil, hint.With(fmt.Errorf("namespace %s has no harmony inventory for %q: nothing to remove", ns, project),
			"harmony down removes only what harmony launch applied")
	}
	var steps []Step
	for _, id := range inv.Objects {
		steps = append(steps, e.planPrune(ctx, id, project))
	}
	if err := e.prune(ctx, steps); err != nil {
		return steps, err
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for _, s := range steps {
		if s.Action != Prune {
			continue
		}
		ri, _ := e.resourceFor(s.ID)
		for {
			_, err := ri.Get(wctx, s.ID.Name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				fmt.Fprintf(out, "  deleted %s\n", s.Ref)
				break
			}
			select {
			case <-wctx.Done():
				return steps, fmt.Errorf("%s still exists after %s (finalizers may hold it)", s.Ref, timeout)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	if err := e.deleteInventory(ctx, ns); err != nil {
		return steps, err
	}
	nsObj, err := e.client.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err == nil && nsObj.Annotations[CreatedNamespaceAnnotation] == "true" {
		if others := e.foreignObjects(ctx, ns); len(others) > 0 {
			fmt.Fprintf(out, "  kept namespace %s: it also holds objects harmony did not create (%s)\n", ns, strings.Join(others, ", "))
			return steps, nil
		}
		if err := e.client.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return steps, err
		}
		fmt.Fprintf(out, "  deleted namespace %s (harmony created it)\n", ns)
	}
	return steps, nil
}

// Status returns the kstatus of every object in the project's inventory.
func (e *Engine) Status(ctx context.Context, ns, project string) ([]ObjState, error) {
	inv, err := e.loadInventory(ctx, ns, project)
	if err != nil {
		return nil, err
	}
	if !inv.exists {
		return nil, hint.With(fmt.Errorf("namespace %s has no harmony inventory for %q", ns, project), "launch it first: harmony launch")
	}
	var out []ObjState
	for _, id := range inv.Objects {
		out = append(out, e.State(ctx, id))
	}
	return out, nil
}

// foreignObjects lists common objects in ns that harmony did not apply (a namespace holding
// them is not harmony's to delete).
func (e *Engine) foreignObjects(ctx context.Context, ns string) []string {
	var out []string
	kinds := []struct{ group, version, resource string }{
		{"", "v1", "configmaps"}, {"", "v1", "secrets"}, {"", "v1", "services"}, {"", "v1", "pods"},
		{"", "v1", "persistentvolumeclaims"}, {"apps", "v1", "deployments"}, {"apps", "v1", "statefulsets"},
		{"apps", "v1", "daemonsets"}, {"batch", "v1", "jobs"},
	}
	for _, k := range kinds {
		list, err := e.dyn.Resource(schema.GroupVersionResource{Group: k.group, Version: k.version, Resource: k.resource}).Namespace(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			continue
		}
		for _, item := range list.Items {
			if item.GetName() == "kube-root-ca.crt" || len(item.GetOwnerReferences()) > 0 ||
				item.GetAnnotations()[OwningInventoryAnnotation] != "" || item.GetLabels()[InventoryLabel] != "" {
				continue
			}
			if k.resource == "secrets" && strings.HasPrefix(item.GetName(), "default-token-") {
				continue
			}
			out = append(out, k.resource+"/"+item.GetName())
		}
	}
	return out
}
