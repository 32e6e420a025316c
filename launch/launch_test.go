package launch_test

import (
	"bytes"
	"context"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/NationTech/harmony-agent/internal/testcluster"
	"github.com/NationTech/harmony-agent/launch"
)

var cluster *testcluster.Cluster

func TestMain(m *testing.M) {
	// Chart repositories are https only: the tests' servers (httptest's TLS certificate) are
	// trusted as a system root would be.
	srv := httptest.NewTLSServer(nil)
	pemFile := filepath.Join(os.TempDir(), fmt.Sprintf("harmony-launch-test-ca-%d.pem", os.Getpid()))
	err := os.WriteFile(pemFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600)
	srv.Close()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("SSL_CERT_FILE", pemFile)
	os.Setenv("GIT_SSL_CAINFO", pemFile) // git's https (the tests' git servers)
	code := testcluster.Main(m, &cluster)
	os.Remove(pemFile)
	os.Exit(code)
}

// copyDir copies an example project into a temp dir the test may edit.
func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(src))
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if info.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

type project struct {
	t    *testing.T
	dir  string
	ns   string
	eng  *launch.Engine
	out  bytes.Buffer
	opts launch.Options
	proj *launch.Project
}

func newProject(t *testing.T, example string) *project {
	c := testcluster.Need(t, cluster)
	eng, err := launch.NewEngine(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	p := &project{t: t, dir: copyDir(t, example), eng: eng}
	p.ns = strings.Trim(strings.ReplaceAll(strings.ReplaceAll(strings.ToLower(t.Name()), "/", "-"), "_", "-"), "-")
	if len(p.ns) > 50 {
		p.ns = p.ns[:50]
	}
	// A launch returns once everything is ready; the bound only ends one that never is. A loaded
	// CI machine's controller-manager has taken over 20 s to create a pod: be generous.
	p.opts = launch.Options{Timeout: 3 * time.Minute, Out: &p.out}
	if p.proj, err = launch.Resolve(launch.Selection{Dir: p.dir, Namespace: p.ns}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Client.CoreV1().Namespaces().Delete(context.Background(), p.ns, metav1.DeleteOptions{})
	})
	return p
}

// edit replaces old by new in one of the project's manifests.
func (p *project) edit(file, old, new string) {
	p.t.Helper()
	path := filepath.Join(p.dir, "manifests", file)
	b, err := os.ReadFile(path)
	if err != nil || !bytes.Contains(b, []byte(old)) {
		p.t.Fatalf("%s does not contain %q (%v)", file, old, err)
	}
	if err := os.WriteFile(path, bytes.Replace(b, []byte(old), []byte(new), 1), 0o644); err != nil {
		p.t.Fatal(err)
	}
}

func (p *project) launch(mut ...func(*launch.Options)) (*launch.Report, error) {
	p.t.Helper()
	src, err := p.proj.Discover()
	if err != nil {
		return nil, err
	}
	objs, err := launch.Render(context.Background(), src, launch.RenderOptions{})
	if err != nil {
		return nil, err
	}
	o := p.opts
	for _, m := range mut {
		m(&o)
	}
	return p.eng.Launch(context.Background(), p.proj, objs, o)
}

func actions(rep *launch.Report) map[string]launch.Action {
	out := map[string]launch.Action{}
	for _, s := range rep.Plan {
		out[strings.SplitN(s.Ref, " ", 2)[0]] = s.Action
	}
	return out
}

func (p *project) versions() map[string]string {
	c := cluster
	out := map[string]string{}
	ctx := context.Background()
	if cm, err := c.Client.CoreV1().ConfigMaps(p.ns).List(ctx, metav1.ListOptions{}); err == nil {
		for _, o := range cm.Items {
			out["configmap/"+o.Name] = o.ResourceVersion
		}
	}
	if ds, err := c.Client.AppsV1().Deployments(p.ns).List(ctx, metav1.ListOptions{}); err == nil {
		for _, o := range ds.Items {
			out["deployment/"+o.Name] = o.ResourceVersion + "/" + o.Spec.Template.Labels["app"]
		}
	}
	if ss, err := c.Client.CoreV1().Services(p.ns).List(ctx, metav1.ListOptions{}); err == nil {
		for _, o := range ss.Items {
			out["service/"+o.Name] = o.ResourceVersion
		}
	}
	return out
}

func TestLaunchLifecycle(t *testing.T) {
	t.Parallel()
	p := newProject(t, "../examples/hello")
	ctx := context.Background()

	// First launch creates everything and waits until it runs.
	rep, err := p.launch()
	if err != nil {
		t.Fatalf("%v\n%s", err, p.out.String())
	}
	want := map[string]launch.Action{"configmap/hello": launch.Create, "deployment/hello": launch.Create, "service/hello": launch.Create}
	if got := actions(rep); len(got) != 3 || got["configmap/hello"] != want["configmap/hello"] || got["deployment/hello"] != launch.Create || got["service/hello"] != launch.Create {
		t.Fatalf("first plan %v", got)
	}
	if !rep.Ready {
		t.Fatal("not ready")
	}
	// A person reads the count, not a row per object's every state (issue 29 item 2).
	if out := p.out.String(); !strings.Contains(out, "all 3 objects ready in") || strings.Contains(out, "InProgress") || strings.Contains(out, "Current") {
		t.Fatalf("wait output without --verbose:\n%s", out)
	}
	d, err := cluster.Client.AppsV1().Deployments(p.ns).Get(ctx, "hello", metav1.GetOptions{})
	if err != nil || d.Status.AvailableReplicas != 2 {
		t.Fatalf("deployment not available: %v %+v", err, d.Status)
	}
	if d.ManagedFields[0].Manager != launch.FieldManager {
		t.Fatalf("field manager %q", d.ManagedFields[0].Manager)
	}
	if len(rep.Endpoints) != 1 || !strings.HasPrefix(rep.Endpoints[0].URL, "http://localhost:") {
		t.Fatalf("endpoints %+v", rep.Endpoints)
	}
	ns, err := cluster.Client.CoreV1().Namespaces().Get(ctx, p.ns, metav1.GetOptions{})
	if err != nil || ns.Annotations[launch.CreatedNamespaceAnnotation] != p.proj.InventoryID {
		t.Fatalf("namespace not created by harmony: %v", err)
	}

	// A second launch with no change writes nothing; --verbose shows every object's state.
	before := p.versions()
	inv, _ := cluster.Client.CoreV1().ConfigMaps(p.ns).Get(ctx, p.proj.InventoryName(), metav1.GetOptions{})
	p.out.Reset()
	rep, err = p.launch(func(o *launch.Options) { o.Verbose = true })
	if out := p.out.String(); strings.Count(out, "Current") != 3 {
		t.Errorf("wait output with --verbose:\n%s", out)
	}
	if err != nil {
		t.Fatal(err)
	}
	for ref, a := range actions(rep) {
		if a != launch.Unchanged {
			t.Errorf("no-change launch: %s %s", ref, a)
		}
	}
	after := p.versions()
	for k, v := range before {
		if after[k] != v && k != "configmap/"+p.proj.InventoryName() {
			t.Errorf("%s changed (%s → %s) on a no-change launch", k, v, after[k])
		}
	}
	if inv2, _ := cluster.Client.CoreV1().ConfigMaps(p.ns).Get(ctx, p.proj.InventoryName(), metav1.GetOptions{}); inv2.ResourceVersion != inv.ResourceVersion {
		t.Error("the inventory was rewritten on a no-change launch")
	}

	// An edited manifest updates only that object.
	p.edit("configmap.yaml", "Hello from harmony", "Hello again")
	before = p.versions()
	rep, err = p.launch()
	if err != nil {
		t.Fatal(err)
	}
	if got := actions(rep); got["configmap/hello"] != launch.Update || got["deployment/hello"] != launch.Unchanged || got["service/hello"] != launch.Unchanged {
		t.Fatalf("edit plan %v", got)
	}
	after = p.versions()
	if after["configmap/hello"] == before["configmap/hello"] || after["deployment/hello"] != before["deployment/hello"] || after["service/hello"] != before["service/hello"] {
		t.Fatalf("edit changed the wrong objects: %v → %v", before, after)
	}

	// A deleted manifest is pruned; an object someone else created stays.
	foreign := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "someone-else", Namespace: p.ns}}
	if _, err := cluster.Client.CoreV1().ConfigMaps(p.ns).Create(ctx, foreign, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(p.dir, "manifests", "service.yaml")); err != nil {
		t.Fatal(err)
	}
	rep, err = p.launch()
	if err != nil {
		t.Fatal(err)
	}
	if got := actions(rep); got["service/hello"] != launch.Prune || len(got) != 3 {
		t.Fatalf("prune plan %v", got)
	}
	if _, err := cluster.Client.CoreV1().Services(p.ns).Get(ctx, "hello", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("pruned service still there: %v", err)
	}
	if _, err := cluster.Client.CoreV1().ConfigMaps(p.ns).Get(ctx, "someone-else", metav1.GetOptions{}); err != nil {
		t.Fatalf("someone else's object was touched: %v", err)
	}

	// status shows each object's state.
	states, err := p.eng.Status(ctx, p.proj)
	if err != nil || len(states) != 2 {
		t.Fatalf("status %v %v", states, err)
	}
	for _, s := range states {
		if !s.Ready() {
			t.Errorf("status: %s %s", s.Ref, s.Status)
		}
	}

	// down removes exactly the inventory, and keeps a namespace that holds someone else's object.
	var out bytes.Buffer
	if _, err := p.eng.Down(ctx, p.proj, time.Minute, &out); err != nil {
		t.Fatal(err)
	}
	for _, check := range []error{
		func() error {
			_, err := cluster.Client.AppsV1().Deployments(p.ns).Get(ctx, "hello", metav1.GetOptions{})
			return err
		}(),
		func() error {
			_, err := cluster.Client.CoreV1().ConfigMaps(p.ns).Get(ctx, "hello", metav1.GetOptions{})
			return err
		}(),
		func() error {
			_, err := cluster.Client.CoreV1().ConfigMaps(p.ns).Get(ctx, p.proj.InventoryName(), metav1.GetOptions{})
			return err
		}(),
	} {
		if !apierrors.IsNotFound(check) {
			t.Errorf("down left an inventory object: %v", check)
		}
	}
	if _, err := cluster.Client.CoreV1().ConfigMaps(p.ns).Get(ctx, "someone-else", metav1.GetOptions{}); err != nil {
		t.Fatalf("down deleted someone else's object: %v", err)
	}
	if !strings.Contains(out.String(), "kept namespace") {
		t.Fatalf("down output: %s", out.String())
	}
}

func TestDownRemovesTheNamespaceItCreated(t *testing.T) {
	t.Parallel()
	p := newProject(t, "../examples/hello")
	if _, err := p.launch(func(o *launch.Options) { o.NoWait = true }); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := p.eng.Down(context.Background(), p.proj, time.Minute, &out); err != nil {
		t.Fatal(err)
	}
	ns, err := cluster.Client.CoreV1().Namespaces().Get(context.Background(), p.ns, metav1.GetOptions{})
	if err == nil && ns.DeletionTimestamp == nil {
		t.Fatalf("namespace survived down:\n%s", out.String())
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	t.Parallel()
	p := newProject(t, "../examples/hello")
	rep, err := p.launch(func(o *launch.Options) { o.DryRun = true })
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Plan) != 3 {
		t.Fatalf("plan %+v", rep.Plan)
	}
	for _, s := range rep.Plan {
		if s.Action != launch.Create {
			t.Errorf("%s: %s", s.Ref, s.Action)
		}
	}
	if _, err := cluster.Client.CoreV1().Namespaces().Get(context.Background(), p.ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("a dry run created the namespace: %v", err)
	}
}

func TestRejectedObjectAppliesNothing(t *testing.T) {
	t.Parallel()
	p := newProject(t, "../examples/hello")
	p.edit("deployment.yaml", "replicas: 2", "replicas: -3")
	_, err := p.launch()
	if !errors.Is(err, launch.ErrRejected) || !strings.Contains(err.Error(), "deployment/hello") || !strings.Contains(err.Error(), "spec.replicas") ||
		!strings.Contains(err.Error(), "manifests/deployment.yaml:1") {
		t.Fatalf("error %v, want a rejection naming the deployment, its file and the field", err)
	}
	if _, err := cluster.Client.CoreV1().ConfigMaps(p.ns).Get(context.Background(), "hello", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the valid configmap was applied despite the rejection: %v", err)
	}
}

func TestKustomizeOverlay(t *testing.T) {
	t.Parallel()
	p := newProject(t, "../examples/overlay")
	rep, err := p.launch()
	if err != nil {
		t.Fatalf("%v\n%s", err, p.out.String())
	}
	if got := actions(rep); len(got) != 2 || got["deployment/dev-web"] != launch.Create || got["service/dev-web"] != launch.Create {
		t.Fatalf("overlay plan %v (the base must not be applied on its own)", got)
	}
	d, err := cluster.Client.AppsV1().Deployments(p.ns).Get(context.Background(), "dev-web", metav1.GetOptions{})
	if err != nil || *d.Spec.Replicas != 2 || d.Labels["env"] != "dev" {
		t.Fatalf("overlay not applied: %v", err)
	}
}

func TestCRDAndCustomResourceInOneLaunch(t *testing.T) {
	t.Parallel()
	p := newProject(t, "../examples/hello")
	crd := `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: gadgets.launch.harmony.dev}
spec:
  group: launch.harmony.dev
  scope: Namespaced
  names: {plural: gadgets, singular: gadget, kind: Gadget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, properties: {spec: {type: object, properties: {size: {type: integer}}}}}
`
	cr := "apiVersion: launch.harmony.dev/v1\nkind: Gadget\nmetadata: {name: g1}\nspec: {size: 3}\n"
	// The custom resource comes first in the files: harmony orders CRDs before what needs them.
	if err := os.WriteFile(filepath.Join(p.dir, "manifests", "a-gadget.yaml"), []byte(cr), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p.dir, "manifests", "z-crd.yaml"), []byte(crd), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		gvr := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
		_ = dynamic.NewForConfigOrDie(cluster.Config).Resource(gvr).Delete(context.Background(), "gadgets.launch.harmony.dev", metav1.DeleteOptions{})
	})
	rep, err := p.launch()
	if err != nil {
		t.Fatalf("%v\n%s", err, p.out.String())
	}
	if got := actions(rep); got["gadget/g1"] != launch.Create || got["customresourcedefinition/gadgets.launch.harmony.dev"] != launch.Create {
		t.Fatalf("plan %v", got)
	}
	gvr := schema.GroupVersionResource{Group: "launch.harmony.dev", Version: "v1", Resource: "gadgets"}
	g, err := dynamic.NewForConfigOrDie(cluster.Config).Resource(gvr).Namespace(p.ns).Get(context.Background(), "g1", metav1.GetOptions{})
	if err != nil || g.GetAnnotations()[launch.OwningInventoryAnnotation] != p.proj.InventoryID {
		t.Fatalf("custom resource: %v", err)
	}
}

func TestUnreadyDeploymentFailsWithTheReason(t *testing.T) {
	t.Parallel()
	p := newProject(t, "../examples/hello")
	p.edit("deployment.yaml", "nginxinc/nginx-unprivileged:1.27-alpine", testcluster.FailingImage)
	start := time.Now()
	rep, err := p.launch(func(o *launch.Options) { o.Timeout = 5 * time.Second })
	if !errors.Is(err, launch.ErrNotReady) {
		t.Fatalf("error %v, want ErrNotReady", err)
	}
	if time.Since(start) > 90*time.Second {
		t.Fatalf("launch took %s with a 5s timeout", time.Since(start))
	}
	if rep == nil || rep.Ready {
		t.Fatal("report says ready")
	}
	// A loaded machine's controller-manager and simulated node take their time to create the
	// pod and fail its pull: wait for the cluster to say so, then the report must carry it.
	waitPullFailure(t, p.ns)
	_, err = p.launch(func(o *launch.Options) { o.Timeout = 5 * time.Second })
	if !errors.Is(err, launch.ErrNotReady) {
		t.Fatalf("second launch: error %v, want ErrNotReady", err)
	}
	for _, want := range []string{"deployment/hello", "ErrImagePull", "Failed to pull image"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	// A wait not drawn on a terminal (CI, a pipe) says how it goes every 10 s, naming what is
	// not ready yet, never minutes of nothing (the newcomer review's launch of an unschedulable
	// pod printed nothing until Ctrl-C).
	p.out.Reset()
	if _, err = p.launch(func(o *launch.Options) { o.Timeout = 12 * time.Second }); !errors.Is(err, launch.ErrNotReady) {
		t.Fatalf("third launch: error %v, want ErrNotReady", err)
	}
	if !regexp.MustCompile(`(?m)^waiting: [0-9]/3 ready \(1[0-9]s\); not yet: deployment/hello \(namespace [^)]+\) InProgress`).MatchString(p.out.String()) {
		t.Errorf("no news of the wait:\n%s", p.out.String())
	}
}

// waitPullFailure waits (up to two minutes) until a pod in ns waits with ErrImagePull and a
// Warning event says the pull failed.
func waitPullFailure(t *testing.T, ns string) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		pulled, warned := false, false
		pods, err := cluster.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err == nil {
			for _, pod := range pods.Items {
				for _, st := range pod.Status.ContainerStatuses {
					pulled = pulled || (st.State.Waiting != nil && st.State.Waiting.Reason == "ErrImagePull")
				}
			}
		}
		events, err := cluster.Client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
		if err == nil {
			for _, e := range events.Items {
				warned = warned || (e.Type == corev1.EventTypeWarning && strings.Contains(e.Message, "Failed to pull image"))
			}
		}
		if pulled && warned {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after two minutes the cluster shows no pull failure in %s (pod waiting: %v, event: %v)", ns, pulled, warned)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Events, condition messages and logs are written by whatever a repository runs: the reasons a
// failed launch prints must be inert on a terminal.
func TestDiagnosisPrintsClusterTextInert(t *testing.T) {
	t.Parallel()
	p := newProject(t, "../examples/hello")
	p.edit("deployment.yaml", "nginxinc/nginx-unprivileged:1.27-alpine", testcluster.FailingImage)
	ctx := context.Background()
	if _, err := cluster.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: p.ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	hostile := "\x1b]0;owned\x07\x1b[2J\x1b[1;1Hcluster says hi\r\n\u202eevil"
	_, err := cluster.Client.CoreV1().Events(p.ns).Create(ctx, &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: "hostile", Namespace: p.ns},
		InvolvedObject: corev1.ObjectReference{Kind: "Deployment", Namespace: p.ns, Name: "hello", APIVersion: "apps/v1"},
		Type:           corev1.EventTypeWarning, Reason: "Hostile", Message: hostile,
		FirstTimestamp: metav1.Now(), LastTimestamp: metav1.Now(), Count: 1,
		Source: corev1.EventSource{Component: "test"},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.launch(func(o *launch.Options) { o.Timeout = 6 * time.Second })
	if !errors.Is(err, launch.ErrNotReady) {
		t.Fatalf("error %v, want ErrNotReady", err)
	}
	if !strings.Contains(err.Error(), "cluster says hi") {
		t.Fatalf("the event is not among the reasons:\n%v", err)
	}
	for _, out := range []string{err.Error(), p.out.String()} {
		if strings.ContainsAny(out, "\x1b\x07\r\u202e") {
			t.Errorf("printed text keeps control characters: %q", out)
		}
	}
}
