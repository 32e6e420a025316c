package launch_test

// Threat (DESIGN.md's trust chain): foreign-object deletion. The tests in this file check that
// launch and down change or delete only what this project created or was told to adopt: a
// shared namespace, another project's objects, a Helm release's objects, a project seen through
// a subfolder, a failed launch's partial state.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/NationTech/harmony-agent/internal/hint"
	"github.com/NationTech/harmony-agent/internal/testcluster"
	"github.com/NationTech/harmony-agent/launch"
)

// repo writes a project folder (name under a fresh temp dir) holding files.
func repo(t *testing.T, name string, files map[string]string) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), name)
	for p, body := range files {
		p = filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// run resolves the project sel points into, renders it and launches it.
func run(t *testing.T, sel launch.Selection, o launch.Options) (*launch.Project, *launch.Report, error) {
	t.Helper()
	launchIt := ready(t, sel)
	return launchIt(o)
}

// ready resolves and renders a project; the function it returns launches it (from any goroutine).
func ready(t *testing.T, sel launch.Selection) func(launch.Options) (*launch.Project, *launch.Report, error) {
	t.Helper()
	c := testcluster.Need(t, cluster)
	p, err := launch.Resolve(sel)
	if err != nil {
		t.Fatal(err)
	}
	src, err := p.Discover()
	if err != nil {
		t.Fatal(err)
	}
	objs, err := launch.Render(t.Context(), src, launch.RenderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := launch.NewEngine(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	return func(o launch.Options) (*launch.Project, *launch.Report, error) {
		if o.Timeout == 0 {
			o.Timeout = 3 * time.Minute // generous: a launch returns once ready (see newProject)
		}
		rep, err := eng.Launch(context.Background(), p, objs, o)
		return p, rep, err
	}
}

func down(t *testing.T, p *launch.Project) (string, error) {
	t.Helper()
	eng, err := launch.NewEngine(testcluster.Need(t, cluster).Config)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	_, err = eng.Down(context.Background(), p, time.Minute, &out)
	return out.String(), err
}

func deleteNamespaceAtEnd(t *testing.T, ns string) {
	t.Cleanup(func() {
		_ = cluster.Client.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	})
}

func userNamespace(t *testing.T, name string, objs ...*corev1.ConfigMap) *corev1.Namespace {
	t.Helper()
	ctx := context.Background()
	ns, err := testcluster.Need(t, cluster).Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	deleteNamespaceAtEnd(t, name)
	for _, o := range objs {
		o.Namespace = name
		if _, err := cluster.Client.CoreV1().ConfigMaps(name).Create(ctx, o, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return ns
}

func configMap(name string) *corev1.ConfigMap {
	return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"owner": "the user"}}
}

func exists(t *testing.T, ns, cm string) bool {
	t.Helper()
	_, err := cluster.Client.CoreV1().ConfigMaps(ns).Get(context.Background(), cm, metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	return err == nil
}

func namespaceAlive(t *testing.T, name string) *corev1.Namespace {
	t.Helper()
	ns, err := cluster.Client.CoreV1().Namespaces().Get(context.Background(), name, metav1.GetOptions{})
	if err != nil || ns.DeletionTimestamp != nil {
		return nil
	}
	return ns
}

// The reproduction from the review: a repo listing a namespace that exists, with a user's
// ConfigMap in it. Before, launch stamped the namespace as the project's and down deleted it,
// and the user's ConfigMap with it.
func TestSharedNamespaceIsNotTaken(t *testing.T) {
	t.Parallel()
	testcluster.Need(t, cluster)
	before := userNamespace(t, "shared-ns", configMap("keep-me"))
	dir := repo(t, "shared-app", map[string]string{"k8s/all.yaml": `apiVersion: v1
kind: Namespace
metadata: {name: shared-ns}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: app, namespace: shared-ns}
data: {greeting: hello}
`})
	p, rep, err := run(t, launch.Selection{Dir: dir}, launch.Options{})
	deleteNamespaceAtEnd(t, p.Namespace)
	if !errors.Is(err, launch.ErrNotOwned) || !strings.Contains(err.Error(), "namespace/shared-ns") {
		t.Fatalf("launch: %v, want ErrNotOwned naming namespace/shared-ns", err)
	}
	if rep == nil || len(rep.Conflicts) != 1 || rep.Conflicts[0].Owner != launch.OwnerManager {
		t.Fatalf("conflicts %+v, want the namespace, written by a field manager", rep)
	}
	_, _ = down(t, p)

	ns := namespaceAlive(t, "shared-ns")
	if ns == nil {
		t.Fatal("shared-ns was deleted")
	}
	if ns.ResourceVersion != before.ResourceVersion || ns.Annotations[launch.OwningInventoryAnnotation] != "" {
		t.Fatalf("shared-ns was changed: %v", ns.Annotations)
	}
	if !exists(t, "shared-ns", "keep-me") {
		t.Fatal("keep-me was deleted")
	}
	if exists(t, "shared-ns", "app") {
		t.Fatal("the refused launch applied the repo's ConfigMap")
	}
	if namespaceAlive(t, p.Namespace) != nil {
		t.Fatalf("the refused launch created its namespace %s", p.Namespace)
	}
}

// An existing namespace listed in a repo is refused; --adopt takes it; down deletes the
// project's objects and leaves the namespace (and what else is in it).
func TestAdoptExistingNamespace(t *testing.T) {
	t.Parallel()
	testcluster.Need(t, cluster)
	ctx := context.Background()
	before := userNamespace(t, "adopt-me", configMap("users-own"))
	dir := repo(t, "adopter", map[string]string{"manifests/all.yaml": `apiVersion: v1
kind: Namespace
metadata: {name: adopt-me, labels: {team: web}}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: app}
data: {greeting: hello}
`, "harmony.yaml": "manifests: [manifests]\nnamespace: adopt-me\n"})

	_, _, err := run(t, launch.Selection{Dir: dir}, launch.Options{})
	if !errors.Is(err, launch.ErrNotOwned) || !strings.Contains(strings.Join(hint.Of(err), "\n"), "--adopt") {
		t.Fatalf("launch: %v (hints %q), want ErrNotOwned with --adopt hinted", err, hint.Of(err))
	}
	ns, _ := cluster.Client.CoreV1().Namespaces().Get(ctx, "adopt-me", metav1.GetOptions{})
	if ns.ResourceVersion != before.ResourceVersion || exists(t, "adopt-me", "app") {
		t.Fatal("the refused launch changed something")
	}
	cms, _ := cluster.Client.CoreV1().ConfigMaps("adopt-me").List(ctx, metav1.ListOptions{})
	for _, cm := range cms.Items {
		if cm.Name != "users-own" && cm.Name != "kube-root-ca.crt" {
			t.Fatalf("the refused launch wrote configmap %s", cm.Name)
		}
	}

	p, rep, err := run(t, launch.Selection{Dir: dir}, launch.Options{Adopt: true, NoWait: true})
	if err != nil {
		t.Fatal(err)
	}
	if got := actions(rep); got["namespace/adopt-me"] != launch.Update || got["configmap/app"] != launch.Create {
		t.Fatalf("plan %v", got)
	}
	ns, _ = cluster.Client.CoreV1().Namespaces().Get(ctx, "adopt-me", metav1.GetOptions{})
	if ns.Annotations[launch.OwningInventoryAnnotation] != p.InventoryID || ns.Labels["team"] != "web" {
		t.Fatalf("namespace not adopted: %v %v", ns.Annotations, ns.Labels)
	}
	// Launching again needs no --adopt: the namespace is the project's now.
	if _, _, err := run(t, launch.Selection{Dir: dir}, launch.Options{NoWait: true}); err != nil {
		t.Fatal(err)
	}

	out, err := down(t, p)
	if err != nil {
		t.Fatal(err)
	}
	ns = namespaceAlive(t, "adopt-me")
	if ns == nil {
		t.Fatalf("down deleted a namespace harmony did not create:\n%s", out)
	}
	if ns.Annotations[launch.OwningInventoryAnnotation] != "" {
		t.Fatalf("down left the project's mark on the namespace it kept: %v", ns.Annotations)
	}
	if exists(t, "adopt-me", "app") || !exists(t, "adopt-me", "users-own") {
		t.Fatalf("down: app should be gone, users-own kept\n%s", out)
	}
}

// An object of a Helm release is never taken, not even with --adopt.
func TestHelmOwnedObjectIsRefusedEvenWithAdopt(t *testing.T) {
	t.Parallel()
	c := testcluster.Need(t, cluster)
	ns := c.Namespace(t)
	helmCM := configMap("web-config")
	helmCM.Annotations = map[string]string{"meta.helm.sh/release-name": "web", "meta.helm.sh/release-namespace": ns}
	helmCM.Labels = map[string]string{"app.kubernetes.io/managed-by": "Helm"}
	helmCM, err := c.Client.CoreV1().ConfigMaps(ns).Create(context.Background(), helmCM, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dir := repo(t, "helm-taker", map[string]string{"manifests/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web-config}\ndata: {owner: harmony}\n"})
	for _, adopt := range []bool{false, true} {
		_, rep, err := run(t, launch.Selection{Dir: dir, Namespace: ns}, launch.Options{Adopt: adopt})
		if !errors.Is(err, launch.ErrNotOwned) || !strings.Contains(err.Error(), "Helm release "+ns+"/web") {
			t.Fatalf("adopt=%v: %v, want ErrNotOwned naming the Helm release", adopt, err)
		}
		if rep.Conflicts[0].Owner != launch.OwnerHelm || rep.Conflicts[0].Adoptable() {
			t.Fatalf("adopt=%v: conflict %+v", adopt, rep.Conflicts[0])
		}
		if adopt && strings.Contains(strings.Join(hint.Of(err), "\n"), "harmony launch --adopt") {
			t.Fatal("the hint offers --adopt for a Helm release's object")
		}
	}
	got, _ := c.Client.CoreV1().ConfigMaps(ns).Get(context.Background(), "web-config", metav1.GetOptions{})
	if got.ResourceVersion != helmCM.ResourceVersion {
		t.Fatalf("the Helm release's object was changed: %v", got.Data)
	}
}

// Two repos launched into one namespace each keep their own inventory: neither prunes nor takes
// the other's objects, and down of one leaves the other running.
func TestTwoProjectsInOneNamespace(t *testing.T) {
	t.Parallel()
	testcluster.Need(t, cluster)
	const ns = "two-projects"
	deleteNamespaceAtEnd(t, ns)
	cm := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: %s}\n"
	a := repo(t, "alpha", map[string]string{"manifests/a1.yaml": fmt.Sprintf(cm, "a1"), "harmony.yaml": "manifests: [manifests]\nnamespace: " + ns + "\n"})
	b := repo(t, "beta", map[string]string{"manifests/b1.yaml": fmt.Sprintf(cm, "b1"), "harmony.yaml": "manifests: [manifests]\nnamespace: " + ns + "\n"})

	pa, _, err := run(t, launch.Selection{Dir: a}, launch.Options{NoWait: true})
	if err != nil {
		t.Fatal(err)
	}
	// beta's harmony.yaml names alpha's namespace: beta asks for it, and gets it when allowed.
	if _, _, err := run(t, launch.Selection{Dir: b}, launch.Options{NoWait: true}); !errors.Is(err, launch.ErrPrivileges) {
		t.Fatalf("a repository naming another project's namespace: %v, want ErrPrivileges", err)
	}
	allow := []launch.Risk{launch.RiskNamespaces}
	pb, _, err := run(t, launch.Selection{Dir: b}, launch.Options{NoWait: true, Allow: allow})
	if err != nil {
		t.Fatal(err)
	}
	if pa.InventoryID == pb.InventoryID || pa.InventoryName() == pb.InventoryName() {
		t.Fatalf("two repos share inventory %s", pa.InventoryID)
	}
	// Each launches again (a with a new object): nothing of the other is pruned.
	if err := os.WriteFile(filepath.Join(a, "manifests", "a2.yaml"), []byte(fmt.Sprintf(cm, "a2")), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{a, b} {
		_, rep, err := run(t, launch.Selection{Dir: dir}, launch.Options{NoWait: true, Allow: allow})
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range rep.Plan {
			if s.Action == launch.Prune {
				t.Errorf("%s prunes %s", filepath.Base(dir), s.Ref)
			}
		}
	}
	for _, name := range []string{"a1", "a2", "b1"} {
		if !exists(t, ns, name) {
			t.Fatalf("%s is gone", name)
		}
	}
	// b listing a's object is refused, naming project a.
	if err := os.WriteFile(filepath.Join(b, "manifests", "a1.yaml"), []byte(fmt.Sprintf(cm, "a1")), 0o644); err != nil {
		t.Fatal(err)
	}
	_, rep, err := run(t, launch.Selection{Dir: b}, launch.Options{Adopt: true})
	if !errors.Is(err, launch.ErrNotOwned) || rep.Conflicts[0].Owner != launch.OwnerHarmony || !strings.Contains(err.Error(), a) {
		t.Fatalf("b taking a's object: %v", err)
	}
	if err := os.Remove(filepath.Join(b, "manifests", "a1.yaml")); err != nil {
		t.Fatal(err)
	}

	// down a: a's objects go, b's stay, and so does the namespace (b still uses it).
	if out, err := down(t, pa); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if exists(t, ns, "a1") || exists(t, ns, "a2") || !exists(t, ns, "b1") || namespaceAlive(t, ns) == nil {
		t.Fatal("down a: want a1, a2 gone; b1 and the namespace kept")
	}
	if out, err := down(t, pb); err != nil || exists(t, ns, "b1") {
		t.Fatalf("down b: %v\n%s", err, out)
	}
}

// From a subfolder, with -f relative to it or to the root, or from the root: one project.
func TestSubfolderAndFileSelectTheSameProject(t *testing.T) {
	t.Parallel()
	testcluster.Need(t, cluster)
	kust := func(extra string) string {
		return "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [../../base]\n" + extra
	}
	root := repo(t, "storefront", map[string]string{
		".git/HEAD":                            "ref: refs/heads/main\n",
		"k8s/base/kustomization.yaml":          "resources: [cm.yaml]\n",
		"k8s/base/cm.yaml":                     "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web}\ndata: {env: any}\n",
		"k8s/overlays/dev/kustomization.yaml":  kust("namePrefix: dev-\n"),
		"k8s/overlays/prod/kustomization.yaml": kust("namePrefix: prod-\n"),
		"src/api/main.go":                      "package main\n",
	})
	deleteNamespaceAtEnd(t, "storefront")

	// The root is ambiguous; the hint is the -f form, and following it launches the root's project.
	p, err := launch.Resolve(launch.Selection{Dir: root})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Discover()
	if !errors.Is(err, launch.ErrAmbiguous) || !strings.Contains(strings.Join(hint.Of(err), "\n"), " -f k8s/overlays/dev") {
		t.Fatalf("discover at the root: %v %q", err, hint.Of(err))
	}
	first, rep, err := run(t, launch.Selection{Dir: root, Manifests: []string{"k8s/overlays/dev"}}, launch.Options{NoWait: true})
	if err != nil {
		t.Fatal(err)
	}
	if first.Root != root || first.Namespace != "storefront" || actions(rep)["configmap/dev-web"] != launch.Create {
		t.Fatalf("project %+v, plan %v", first, actions(rep))
	}
	for _, sel := range []launch.Selection{
		{Dir: filepath.Join(root, "src", "api"), Manifests: []string{"k8s/overlays/dev"}}, // relative to the root
		{Dir: filepath.Join(root, "k8s", "overlays"), Manifests: []string{"dev"}},         // relative to the folder
		{Dir: filepath.Join(root, "k8s"), Manifests: []string{filepath.Join(root, "k8s", "overlays", "dev")}},
	} {
		p, rep, err := run(t, sel, launch.Options{NoWait: true})
		if err != nil {
			t.Fatal(err)
		}
		if p.Root != root || p.Namespace != first.Namespace || p.InventoryID != first.InventoryID {
			t.Fatalf("from %s: project %+v, want %+v", sel.Dir, p, first)
		}
		if got := actions(rep); len(got) != 1 || got["configmap/dev-web"] != launch.Unchanged {
			t.Fatalf("from %s: plan %v, want the same object unchanged", sel.Dir, got)
		}
	}
	// down from a subfolder removes the project, namespace included.
	sub, err := launch.Resolve(launch.Selection{Dir: filepath.Join(root, "src")})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := down(t, sub); err != nil || !strings.Contains(out, "deleted namespace storefront") {
		t.Fatalf("down from src/: %v\n%s", err, out)
	}
}

// A launch that fails after its first writes leaves an inventory naming everything it may
// have created, so down afterwards removes all of it.
func TestFailedLaunchThenDownLeavesNothing(t *testing.T) {
	t.Parallel()
	testcluster.Need(t, cluster)
	ctx := context.Background()
	// Each Service passes the dry run alone; applied together, one finds the port taken.
	svc := "apiVersion: v1\nkind: Service\nmetadata: {name: %s}\nspec: {type: NodePort, selector: {app: x}, ports: [{port: 80, nodePort: 31999}]}\n"
	dir := repo(t, "half-way", map[string]string{
		"manifests/cm.yaml":    "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\n",
		"manifests/svc-a.yaml": fmt.Sprintf(svc, "a"),
		"manifests/svc-b.yaml": fmt.Sprintf(svc, "b"),
	})
	p, _, err := run(t, launch.Selection{Dir: dir}, launch.Options{NoWait: true})
	deleteNamespaceAtEnd(t, p.Namespace)
	if err == nil || !strings.Contains(err.Error(), "31999") {
		t.Fatalf("launch: %v, want the second Service refused for its port", err)
	}
	inv, err := cluster.Client.CoreV1().ConfigMaps(p.Namespace).Get(ctx, p.InventoryName(), metav1.GetOptions{})
	if err != nil || len(inv.Data) != 3 {
		t.Fatalf("inventory after the failed launch: %v %v", err, inv)
	}
	if !exists(t, p.Namespace, "settings") {
		t.Fatal("the ConfigMap was not applied: the launch did not fail after its first writes")
	}
	if out, err := down(t, p); err != nil {
		t.Fatalf("down: %v\n%s", err, out)
	}
	if namespaceAlive(t, p.Namespace) != nil {
		t.Fatal("down left the namespace the failed launch created")
	}
	for _, name := range []string{"a", "b"} {
		if s, err := cluster.Client.CoreV1().Services(p.Namespace).Get(ctx, name, metav1.GetOptions{}); err == nil && s.DeletionTimestamp == nil {
			t.Fatalf("down left service/%s", name)
		}
	}
}

// syncBuffer is a bytes.Buffer safe to read while a launch writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A project namespace still terminating (the undo of a failed launch, a down) is waited for,
// with a line saying so, instead of failing half-way.
func TestLaunchWaitsForATerminatingNamespace(t *testing.T) {
	t.Parallel()
	c := testcluster.Need(t, cluster)
	ctx := context.Background()
	dir := repo(t, "phoenix", map[string]string{"manifests/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\n"})
	deleteNamespaceAtEnd(t, "phoenix")
	// The namespace is terminating, held by a finalizer on an object inside it.
	held := configMap("held")
	held.Finalizers = []string{"harmony.dev/test-hold"}
	userNamespace(t, "phoenix", held)
	if err := c.Client.CoreV1().Namespaces().Delete(ctx, "phoenix", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}

	var out syncBuffer
	done := make(chan error, 1)
	launchIt := ready(t, launch.Selection{Dir: dir})
	go func() {
		_, _, err := launchIt(launch.Options{NoWait: true, Out: &out})
		done <- err
	}()
	deadline := time.After(time.Minute)
	for !strings.Contains(out.String(), "waiting for namespace phoenix to finish terminating") {
		select {
		case err := <-done:
			t.Fatalf("launch returned before the namespace was gone: %v\n%s", err, out.String())
		case <-deadline:
			t.Fatalf("no waiting line:\n%s", out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	patch := []byte(`{"metadata":{"finalizers":null}}`)
	if _, err := c.Client.CoreV1().ConfigMaps("phoenix").Patch(ctx, "held", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("launch after the namespace went: %v\n%s", err, out.String())
	}
	if !exists(t, "phoenix", "settings") || namespaceAlive(t, "phoenix") == nil {
		t.Fatal("the launch did not recreate the namespace and its objects")
	}
}
