package launch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/cli-utils/pkg/object"
	"sigs.k8s.io/yaml"

	"github.com/NationTech/harmony-agent/internal/hint"
)

// Endpoint is one way to reach what runs.
type Endpoint struct {
	Object string `json:"object"`
	URL    string `json:"url"`
	Note   string `json:"note,omitempty"`
}

// Endpoints lists how to reach p's launched Services and Ingresses, only where the address leads
// to them: NodePort Services and LoadBalancer Services a load balancer took on localhost (the
// load balancer's address on a cluster the user named), Ingress rules as ingressEndpoint says;
// other Services, and a LoadBalancer nothing took, with the kubectl port-forward command on p's
// cluster.
func (e *Engine) Endpoints(ctx context.Context, p *Project, ids object.ObjMetadataSet) []Endpoint {
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
			lbs, _, _ := unstructured.NestedSlice(live.Object, "status", "loadBalancer", "ingress")
			for _, sp := range ports {
				pm, _ := sp.(map[string]any)
				port, _, _ := unstructured.NestedInt64(pm, "port")
				node, _, _ := unstructured.NestedInt64(pm, "nodePort")
				inside := Endpoint{Object: ref(id), URL: fmt.Sprintf("%s.%s.svc:%d", id.Name, id.Namespace, port),
					Note: "inside the cluster; from here: " + p.Command("forward")}
				switch {
				case typ == "NodePort":
					out = append(out, Endpoint{Object: ref(id), URL: fmt.Sprintf("http://localhost:%d", node)})
				case typ == "LoadBalancer" && len(lbs) > 0:
					host := "localhost" // harmony's runtime: its load balancer answers on this machine
					if len(p.cluster) > 0 {
						lb, _ := lbs[0].(map[string]any)
						if host, _ = lb["ip"].(string); host == "" {
							host, _ = lb["hostname"].(string)
						}
					}
					out = append(out, Endpoint{Object: ref(id), URL: fmt.Sprintf("http://%s", net.JoinHostPort(Sanitize(host), strconv.FormatInt(port, 10)))})
				case typ == "LoadBalancer" && node != 0:
					// No load balancer took the Service (a cluster without a load-balancer
					// controller): only its node port answers.
					out = append(out, Endpoint{Object: ref(id), URL: fmt.Sprintf("http://localhost:%d", node),
						Note: fmt.Sprintf("its node port: no load balancer took port %d", port)})
				case typ == "LoadBalancer":
					inside.Note = fmt.Sprintf("no load balancer took port %d (and it has no node port); from here: %s", port, p.Command("forward"))
					out = append(out, inside)
				default:
					out = append(out, inside)
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
				out = append(out, ingressEndpoint(ref(id), Sanitize(host), len(p.cluster) > 0))
			}
		}
	}
	return out
}

// ingressEndpoint is where an Ingress rule for host answers. On harmony's runtime that is this
// machine: a rule without a host, or for localhost or a name under .localhost (which resolve
// here), is its URL; any other host's name leads wherever DNS says (a public site, often the
// app's production), so the URL is this machine's and the note says how to ask for that host.
// On a cluster the user named, the host is taken as the way to it.
func ingressEndpoint(object, host string, named bool) Endpoint {
	switch {
	case host == "":
		return Endpoint{Object: object, URL: "http://localhost"}
	case named || host == "localhost" || strings.HasSuffix(host, ".localhost"):
		return Endpoint{Object: object, URL: "http://" + host}
	}
	return Endpoint{Object: object, URL: "http://localhost",
		Note: fmt.Sprintf("for host %s, which leads elsewhere by name: curl -H 'Host: %s' http://localhost/", host, host)}
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

// PrintYAML writes objs as one YAML stream, each with the source it came from, as helm template
// and kustomize build print theirs: what a launch would apply, images rewritten, an object that
// names no namespace in ns (as the dry run's plan shows it).
func PrintYAML(w io.Writer, ns string, objs []Object) error {
	for _, o := range objs {
		_, u := placeUnchecked(o, ns)
		b, err := yaml.Marshal(u.Object)
		if err != nil {
			return fmt.Errorf("%s: %w", Sanitize(o.Origin), err)
		}
		if _, err := fmt.Fprintf(w, "---\n# Source: %s\n%s", Sanitize(o.Origin), b); err != nil {
			return err
		}
	}
	return nil
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
		fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Action, Sanitize(s.Ref), Sanitize(from)) // a repository's names
	}
	tw.Flush()
}

// PrintPrivileges writes what a repository asks for beyond its own namespaces (a dry run's
// list), and what a launch needs to apply it.
func PrintPrivileges(w io.Writer, privs []Privilege, allowed []Risk, launchCommand func(flags ...string) string) {
	if len(privs) == 0 {
		return
	}
	fmt.Fprintln(w, "this repository asks for more than its own namespaces:")
	for _, pr := range privs {
		fmt.Fprintf(w, "  %s\n", Sanitize(pr.String())) // a repository's names
	}
	if need := riskList(privs, allowed); need != "" {
		fmt.Fprintf(w, "a launch applies these only with your yes on a terminal, or: %s\n", launchCommand("--allow", need))
	}
}

// PrintSummary writes what runs and how to reach it.
func PrintSummary(w io.Writer, rep *Report, forward string) {
	counts := map[Action]int{}
	for _, s := range rep.Plan {
		counts[s.Action]++
	}
	fmt.Fprintf(w, "namespace %s: %d created, %d updated, %d unchanged, %d pruned\n",
		rep.Namespace, counts[Create], counts[Update], counts[Unchanged], counts[Prune])
	// What a person can open first: the URLs this machine serves; then the Services only the
	// cluster reaches, on one line, with the command that forwards them all.
	var inside []string
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	header := false
	for _, ep := range rep.Endpoints {
		if !strings.Contains(ep.URL, "://") {
			if name := strings.SplitN(ep.Object, " ", 2)[0]; !slices.Contains(inside, name) {
				inside = append(inside, name)
			}
			continue
		}
		if !header {
			fmt.Fprintln(tw, "SERVICE\tREACH IT AT")
			header = true
		}
		url := ep.URL
		if ep.Note != "" {
			url += "  (" + ep.Note + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\n", Sanitize(ep.Object), Sanitize(url))
	}
	tw.Flush()
	if len(inside) > 0 {
		fmt.Fprintf(w, "in the cluster only: %s; from this machine: %s\n", Sanitize(strings.Join(inside, ", ")), forward)
	}
}

// Down deletes every object in the project's inventory that still carries the project's mark,
// waiting until it is gone, then the inventory, then the project namespace when this project
// created it and it holds nothing else. It never deletes a namespace harmony did not create.
func (e *Engine) Down(ctx context.Context, p *Project, timeout time.Duration, out io.Writer) ([]Step, error) {
	inv, err := e.loadInventory(ctx, p)
	if err != nil {
		return nil, err
	}
	if !inv.exists {
		return nil, e.notLaunched(ctx, p, "take it down there", "down")
	}
	steps := make([]Step, len(inv.Objects))
	forEach(len(inv.Objects), func(i int) { steps[i] = e.planPrune(ctx, inv.Objects[i], p) })
	if err := e.prune(ctx, steps); err != nil {
		return steps, err
	}
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for _, s := range steps {
		switch {
		case s.Action == Prune:
			if err := e.waitGone(wctx, s, timeout); err != nil {
				return steps, err
			}
			fmt.Fprintf(out, "  deleted %s\n", s.Ref)
		case s.Note != "already gone":
			fmt.Fprintf(out, "  kept %s: %s\n", s.Ref, s.Note)
		}
	}
	var kept, crds []string
	for _, s := range steps {
		if s.keep {
			kept = append(kept, s.Ref)
		}
		if s.keptCRD {
			crds = append(crds, s.ID.Name)
		}
	}
	if len(crds) > 0 {
		defer printKeptCRDs(out, p, crds) // last, after the namespace
	}
	if len(kept) > 0 {
		return steps, hint.With(fmt.Errorf("could not check %s: the inventory keeps them", strings.Join(kept, ", ")), "run it again: "+p.Command("down"))
	}
	if err := e.deleteInventory(ctx, p); err != nil {
		return steps, err
	}
	nsObj, err := e.dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}).Get(ctx, p.Namespace, metav1.GetOptions{})
	if err != nil || !createdBy(nsObj, p) || nsObj.GetDeletionTimestamp() != nil {
		return steps, nil
	}
	if others := e.foreignObjects(ctx, p.Namespace, p); len(others) > 0 {
		fmt.Fprintf(out, "  kept namespace %s: it also holds objects that are not this project's (%s)\n", p.Namespace, strings.Join(others, ", "))
		return steps, nil
	}
	uid := nsObj.GetUID()
	if err := e.client.CoreV1().Namespaces().Delete(ctx, p.Namespace, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}}); err != nil && !apierrors.IsNotFound(err) {
		return steps, err
	}
	fmt.Fprintf(out, "  deleted namespace %s (harmony created it)\n", p.Namespace)
	return steps, nil
}

// ErrNotLaunched means the project has no inventory in its namespace: launch never applied
// anything for it there (or down removed it all).
var ErrNotLaunched = errors.New("not launched")

// NotLaunchedError is ErrNotLaunched for one project; Elsewhere lists the namespaces where the
// same folder is launched (with another -n).
type NotLaunchedError struct {
	Root, Namespace string
	Elsewhere       []string
	// Apps are the other apps launched from the repository, when the project is the
	// repository's own app (status or down at its root).
	Apps []LaunchedApp
	// RepositoryNamespace is set when the project is an app in a subfolder and the repository
	// was launched as one app from its root, there.
	RepositoryNamespace string
}

// LaunchedApp is an app of a repository with an inventory in the cluster.
type LaunchedApp struct {
	// Path is the app's folder in the repository, slash separated.
	Path      string `json:"path"`
	Namespace string `json:"namespace"`
}

func (n *NotLaunchedError) Error() string {
	msg := fmt.Sprintf("%s is not launched in namespace %s", n.Root, n.Namespace)
	if len(n.Elsewhere) > 0 {
		msg += ", but in namespace " + strings.Join(n.Elsewhere, " and ")
	}
	return msg
}

func (n *NotLaunchedError) Unwrap() error { return ErrNotLaunched }

// notLaunched is the error of status and down for a project without an inventory, hinting
// at the command that works: the same command with -n for a namespace the folder is launched
// in, else launch.
func (e *Engine) notLaunched(ctx context.Context, p *Project, there, command string) error {
	nl := &NotLaunchedError{Root: p.App, Namespace: p.Namespace, Elsewhere: e.launchedIn(ctx, p), Apps: e.AppsOf(ctx, p)}
	var hints []string
	if p.AppPath != "." {
		// Launched as one app from the repository's root (as harmony did before apps had
		// paths): that is where its objects are.
		if root, err := Resolve(Selection{Dir: p.Root, Command: command, Cluster: p.cluster}); err == nil {
			if inv, err := e.loadInventory(ctx, root); err == nil && inv.exists {
				nl.RepositoryNamespace = root.Namespace
				hints = append(hints, fmt.Sprintf("the repository was launched as one app from its root (namespace %s): %s", root.Namespace, root.Command(command)))
			}
		}
	}
	for _, ns := range nl.Elsewhere {
		hints = append(hints, there+": "+p.Command(command, "-n", ns))
	}
	if len(nl.Apps) > 0 {
		hints = append(hints, "apps launched from this repository:")
		for _, a := range nl.Apps {
			hints = append(hints, fmt.Sprintf("  %s (namespace %s): %s", a.Path, a.Namespace, p.appCommand(command, a)))
		}
	}
	if len(hints) == 0 {
		hints = append(hints, "launch it: "+p.Command("launch"), "what is launched on this cluster: "+hint.Command(append([]string{"harmony", "list"}, p.cluster...)...))
	}
	return hint.With(nl, hints...)
}

// launchedIn lists the other namespaces holding an inventory of p's folder (best effort: none
// when the cluster does not let the user list ConfigMaps everywhere).
func (e *Engine) launchedIn(ctx context.Context, p *Project) []string {
	list, err := e.client.CoreV1().ConfigMaps("").List(ctx, metav1.ListOptions{LabelSelector: managedByLabel + "=harmony"})
	if err != nil {
		return nil
	}
	var out []string
	for _, cm := range list.Items {
		if cm.Namespace != p.Namespace && cm.Annotations[ProjectRootAnnotation] == p.App && cm.Labels[InventoryLabel] != "" &&
			cm.Labels[InventoryLabel] == inventoryID(p.Name, p.App, cm.Namespace) && !slices.Contains(out, cm.Namespace) {
			out = append(out, cm.Namespace)
		}
	}
	sort.Strings(out)
	return out
}

// AppsOf lists the apps launched from p's repository other than p, when p is the repository's
// own app (at its root), by their inventories' annotations (best effort: none when the cluster
// does not let the user list ConfigMaps everywhere). Only inventories whose id is the one the
// app's folder and namespace give are counted.
func (e *Engine) AppsOf(ctx context.Context, p *Project) []LaunchedApp {
	if p.AppPath != "." {
		return nil
	}
	list, err := e.client.CoreV1().ConfigMaps("").List(ctx, metav1.ListOptions{LabelSelector: managedByLabel + "=harmony"})
	if err != nil {
		return nil
	}
	var out []LaunchedApp
	for _, cm := range list.Items {
		app := cm.Annotations[AppAnnotation]
		if cm.Annotations[RepositoryAnnotation] != p.Root || app == "" || app == "." || !validAppPath(app) {
			continue
		}
		dir := filepath.Join(p.Root, filepath.FromSlash(app))
		name := appName(p.Root, app)
		if cm.Annotations[ProjectRootAnnotation] != dir || cm.Labels[InventoryLabel] != inventoryID(name, dir, cm.Namespace) {
			continue
		}
		a := LaunchedApp{Path: app, Namespace: cm.Namespace}
		if !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Path < out[j].Path || (out[i].Path == out[j].Path && out[i].Namespace < out[j].Namespace)
	})
	return out
}

// validAppPath accepts a relative, clean, slash-separated path inside the repository, of
// printable characters (a forged one never adds a line to a hint).
func validAppPath(p string) bool {
	printable := strings.IndexFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f || r == utf8.RuneError || r == '\\' }) < 0
	return printable && utf8.ValidString(p) && len(p) <= 1024 && p == path.Clean(p) && !path.IsAbs(p) && p != ".." && !strings.HasPrefix(p, "../")
}

// OwnsNamespace reports whether p's namespace exists and was created by p's launch: only then
// is an inventory found by its annotations taken for p's (status and down at a repository's
// root), since anyone who may create a ConfigMap somewhere can write those annotations.
func (e *Engine) OwnsNamespace(ctx context.Context, p *Project) bool {
	ns, err := e.dyn.Resource(schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}).Get(ctx, p.Namespace, metav1.GetOptions{})
	return err == nil && createdBy(ns, p) && ns.GetDeletionTimestamp() == nil
}

// appCommand is command on the repository's app a, as the user would type it from where they are.
func (p *Project) appCommand(command string, a LaunchedApp) string {
	arg := fromHere(filepath.Join(p.Root, filepath.FromSlash(a.Path)))
	args := []string{"harmony", command, arg}
	if a.Namespace != Namespace(appName(p.Root, a.Path)) {
		args = append(args, "-n", a.Namespace)
	}
	return hint.Command(append(args, p.cluster...)...)
}

// printKeptCRDs says which CRDs down kept, and the command that deletes them by hand.
func printKeptCRDs(out io.Writer, p *Project, crds []string) {
	it, what := "it", "1 CRD"
	if len(crds) > 1 {
		it, what = "them", fmt.Sprintf("%d CRDs", len(crds))
	}
	fmt.Fprintf(out, "kept %s: deleting a CRD deletes every resource of its kind in the cluster; to delete %s anyway: %s\n",
		what, it, p.kubectl(append([]string{"delete", "crd"}, crds...)...))
}

// waitGone waits until a pruned object no longer exists (a namespace: until it is terminating).
func (e *Engine) waitGone(ctx context.Context, s Step, timeout time.Duration) error {
	ri, err := e.resourceFor(s.ID)
	if err != nil {
		return nil
	}
	for {
		live, err := ri.Get(ctx, s.ID.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) || (err == nil && s.ID.GroupKind == nsKind && live.GetDeletionTimestamp() != nil) || (err == nil && live.GetUID() != s.uid) {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s still exists after %s (finalizers may hold it)", s.Ref, timeout)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Status returns the kstatus of every object in the project's inventory; an object that is not
// ready carries the reasons launch's not-ready report gives (pod states, warning events, a
// crashing container's last log lines).
func (e *Engine) Status(ctx context.Context, p *Project) ([]ObjState, error) {
	inv, err := e.loadInventory(ctx, p)
	if err != nil {
		return nil, err
	}
	if !inv.exists {
		return nil, e.notLaunched(ctx, p, "see it there", "status")
	}
	out := make([]ObjState, len(inv.Objects))
	forEach(len(inv.Objects), func(i int) {
		// One bound per object, as a launch's poll round has: a node that does not answer (its
		// logs come through its kubelet) never makes status hang.
		rctx, cancel := context.WithTimeout(ctx, pollRoundTimeout)
		defer cancel()
		out[i] = e.State(rctx, inv.Objects[i])
		if !out[i].Ready() {
			out[i].Reasons = e.diagnose(rctx, inv.Objects[i])
		}
	})
	return out, nil
}

// foreignObjects lists the objects in ns that are not project p's (a namespace holding them is
// not p's to delete): every listable namespaced kind, leaving out objects another object
// controls (pods of a ReplicaSet…), derived kinds, and what Kubernetes puts in every namespace.
func (e *Engine) foreignObjects(ctx context.Context, ns string, p *Project) []string {
	lists, err := e.client.Discovery().ServerPreferredNamespacedResources()
	if err != nil && len(lists) == 0 {
		return []string{"(cannot list the namespace: " + reason(err) + ")"}
	}
	var gvrs []schema.GroupVersionResource
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			continue
		}
		for _, r := range l.APIResources {
			if strings.Contains(r.Name, "/") || derivedKinds[r.Kind] || !hasVerb(r.Verbs, "list") || !hasVerb(r.Verbs, "delete") {
				continue
			}
			gvrs = append(gvrs, gv.WithResource(r.Name))
		}
	}
	found := make([][]string, len(gvrs))
	forEach(len(gvrs), func(i int) {
		list, err := e.dyn.Resource(gvrs[i]).Namespace(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return
		}
		for _, item := range list.Items {
			if len(item.GetOwnerReferences()) > 0 || item.GetAnnotations()[OwningInventoryAnnotation] == p.InventoryID ||
				(gvrs[i].Resource == "configmaps" && (item.GetName() == p.InventoryName() || item.GetName() == "kube-root-ca.crt")) ||
				(gvrs[i].Resource == "serviceaccounts" && item.GetName() == "default") {
				continue
			}
			found[i] = append(found[i], gvrs[i].Resource+"/"+item.GetName())
		}
	})
	var out []string
	for _, f := range found {
		out = append(out, f...)
	}
	sort.Strings(out)
	return out
}

// derivedKinds are written by Kubernetes about other objects (events; endpoints of Services,
// which core Endpoints do not link by ownerReferences): never someone's own objects.
var derivedKinds = map[string]bool{"Event": true, "Endpoints": true, "EndpointSlice": true}

func hasVerb(verbs []string, v string) bool {
	for _, x := range verbs {
		if x == v {
			return true
		}
	}
	return false
}

// ListedApp is one app launched on the cluster, as harmony list shows it.
type ListedApp struct {
	// Folder is the app's folder as its inventory records it; Repository and Path, when the
	// inventory records them (launched by a harmony that knows apps).
	Folder     string `json:"folder"`
	Repository string `json:"repository,omitempty"`
	Path       string `json:"path,omitempty"`
	Namespace  string `json:"namespace"`
	Objects    int    `json:"objects"`
	Ready      int    `json:"ready"`
}

// List returns every app harmony launched on the cluster, by its inventory: folder, namespace,
// how many objects and how many of them are ready (what helm list -A shows for releases). It
// needs to list ConfigMaps in every namespace.
func (e *Engine) List(ctx context.Context) ([]ListedApp, error) {
	list, err := e.client.CoreV1().ConfigMaps("").List(ctx, metav1.ListOptions{LabelSelector: managedByLabel + "=harmony," + InventoryLabel})
	if err != nil {
		return nil, fmt.Errorf("list harmony's inventories: %w", err)
	}
	apps := make([]ListedApp, len(list.Items))
	forEach(len(list.Items), func(i int) {
		cm := list.Items[i]
		a := ListedApp{Folder: Sanitize(cm.Annotations[ProjectRootAnnotation]), Namespace: cm.Namespace}
		if p := cm.Annotations[AppAnnotation]; validAppPath(p) || p == "." {
			a.Repository, a.Path = Sanitize(cm.Annotations[RepositoryAnnotation]), p
		}
		for k := range cm.Data {
			id, err := object.ParseObjMetadata(k)
			if err != nil {
				continue
			}
			a.Objects++
			if e.State(ctx, id).Ready() {
				a.Ready++
			}
		}
		apps[i] = a
	})
	sort.Slice(apps, func(i, j int) bool {
		return apps[i].Folder < apps[j].Folder || (apps[i].Folder == apps[j].Folder && apps[i].Namespace < apps[j].Namespace)
	})
	return apps, nil
}
