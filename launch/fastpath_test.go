package launch_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/NationTech/harmony-agent/internal/testcluster"
	"github.com/NationTech/harmony-agent/launch"
)

// requestLog counts the requests an engine sends, by method and whether they are dry runs.
type requestLog struct {
	mu   sync.Mutex
	reqs []string
}

func (l *requestLog) RoundTrip(rt http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		what := r.Method + " " + r.URL.Path
		if r.URL.Query().Get("dryRun") != "" {
			what = "DRYRUN " + what
		}
		l.mu.Lock()
		l.reqs = append(l.reqs, what)
		l.mu.Unlock()
		return rt.RoundTrip(r)
	})
}

func (l *requestLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.reqs
	l.reqs = nil
	return out
}

func count(reqs []string, prefix string) int {
	n := 0
	for _, r := range reqs {
		if strings.HasPrefix(r, prefix) {
			n++
		}
	}
	return n
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// A no-change launch asks the server little (issue 30): one LIST per kind and namespace tells it
// that every object is as the last launch left it, so none is dry-run or read on its own. A
// status-only write (a controller's) keeps the fast path; a change behind harmony's back (an
// edit of a field it applied) is detected and applied again; a manifest change is applied.
func TestNoChangeLaunchAsksTheServerLittle(t *testing.T) {
	t.Parallel()
	c := testcluster.Need(t, cluster)
	ctx := context.Background()
	files := map[string]string{}
	var all []string
	for i := range 20 {
		all = append(all, fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm-%d}\ndata: {value: \"%d\"}\n", i, i))
		all = append(all, fmt.Sprintf("apiVersion: v1\nkind: Service\nmetadata: {name: svc-%d}\nspec: {selector: {app: a%d}, ports: [{port: 80}]}\n", i, i))
	}
	all = append(all, "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, labels: {tier: web}}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: c, image: busybox:1.37}]}\n")
	files["manifests/app.yaml"] = strings.Join(all, "---\n")
	dir := repo(t, "fastpath", files)
	proj, err := launch.Resolve(launch.Selection{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	deleteNamespaceAtEnd(t, proj.Namespace)
	log := &requestLog{}
	cfg := rest.CopyConfig(c.Config)
	cfg.Wrap(log.RoundTrip)
	eng, err := launch.NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	launchIt := func() *launch.Report { return launchNoWait(t, eng, proj) }
	launchIt()
	first := log.take()

	rep := launchIt()
	again := log.take()
	for _, s := range rep.Plan {
		if s.Action != launch.Unchanged {
			t.Errorf("%s: %s on a no-change launch", s.Ref, s.Action)
		}
	}
	if n := count(again, "DRYRUN"); n != 0 {
		t.Errorf("%d dry runs on a no-change launch, want none:\n%s", n, strings.Join(again, "\n"))
	}
	if n := count(again, "PATCH") + count(again, "PUT") + count(again, "POST") + count(again, "DELETE"); n != 0 {
		t.Errorf("%d writes on a no-change launch:\n%s", n, strings.Join(again, "\n"))
	}
	// 41 objects of 3 kinds: one LIST each, a few reads of the namespace and the inventory; the
	// first launch (discovery aside) read or dry-ran each object.
	if len(again) > 12 {
		t.Errorf("%d requests on a no-change launch of 41 objects (the first took %d):\n%s", len(again), len(first), strings.Join(again, "\n"))
	}
	t.Logf("requests: first launch %d, no-change launch %d", len(first), len(again))

	// A status-only write (the controller's) keeps the fast path.
	dep, err := c.Client.AppsV1().Deployments(proj.Namespace).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dep.Status.ObservedGeneration, dep.Status.Replicas = dep.Generation, 7
	if _, err := c.Client.AppsV1().Deployments(proj.Namespace).UpdateStatus(ctx, dep, metav1.UpdateOptions{FieldManager: "a-controller"}); err != nil {
		t.Fatal(err)
	}
	launchIt()
	if n := count(log.take(), "DRYRUN"); n != 0 {
		t.Errorf("a status write took the launch off the fast path: %d dry runs", n)
	}

	// An edit behind harmony's back, as kubectl edit makes it: detected, and applied again.
	dep, err = c.Client.AppsV1().Deployments(proj.Namespace).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dep.Labels["tier"] = "edited"
	if _, err := c.Client.AppsV1().Deployments(proj.Namespace).Update(ctx, dep, metav1.UpdateOptions{FieldManager: "kubectl-edit"}); err != nil {
		t.Fatal(err)
	}
	rep = launchIt()
	if got := actions(rep); got["deployment/web"] != launch.Update {
		t.Errorf("an edited deployment planned as %v", got["deployment/web"])
	}
	if n := count(log.take(), "DRYRUN"); n != 1 {
		t.Errorf("%d dry runs after one object was edited, want 1", n)
	}
	var live *appsv1.Deployment
	if live, err = c.Client.AppsV1().Deployments(proj.Namespace).Get(ctx, "web", metav1.GetOptions{}); err != nil || live.Labels["tier"] != "web" {
		t.Errorf("the edit was not undone: %v %v", err, live.Labels)
	}

	// A manifest change is applied (and only that object is checked).
	if err := os.WriteFile(filepath.Join(dir, "manifests", "app.yaml"), []byte(strings.Replace(files["manifests/app.yaml"], `data: {value: "3"}`, `data: {value: "three"}`, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	rep = launchIt()
	if got := actions(rep); got["configmap/cm-3"] != launch.Update {
		t.Errorf("a changed configmap planned as %v", got["configmap/cm-3"])
	}
	if n := count(log.take(), "DRYRUN"); n != 1 {
		t.Errorf("%d dry runs after one manifest changed, want 1", n)
	}
	cm, err := c.Client.CoreV1().ConfigMaps(proj.Namespace).Get(ctx, "cm-3", metav1.GetOptions{})
	if err != nil || cm.Data["value"] != "three" {
		t.Errorf("configmap: %v %v", err, cm.Data)
	}
}

// An edit behind harmony's back followed by a second write that puts harmony's managedFields
// entry back as it was (the API server keeps the managedFields a client sends when the object
// itself does not change) does not ride the fast path: the edited value is applied again.
func TestFastPathSeesAnEditWithForgedManagedFields(t *testing.T) {
	t.Parallel()
	c := testcluster.Need(t, cluster)
	ctx := context.Background()
	var all []string
	for i := range 3 {
		all = append(all, fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm-%d}\ndata: {value: \"%d\"}\n", i, i))
	}
	dir := repo(t, "forged", map[string]string{"app.yaml": strings.Join(all, "---\n")})
	proj, err := launch.Resolve(launch.Selection{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	deleteNamespaceAtEnd(t, proj.Namespace)
	eng, err := launch.NewEngine(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	launchIt := func() *launch.Report { return launchNoWait(t, eng, proj) }
	launchIt()
	cms := c.Client.CoreV1().ConfigMaps(proj.Namespace)
	cm, err := cms.Get(ctx, "cm-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	orig := cm.ManagedFields
	cm.Data["value"] = "tampered"
	if cm, err = cms.Update(ctx, cm, metav1.UpdateOptions{FieldManager: "intruder"}); err != nil {
		t.Fatal(err)
	}
	cm.ManagedFields = orig // harmony's entry as the launch left it, nobody else's
	if cm, err = cms.Update(ctx, cm, metav1.UpdateOptions{FieldManager: "intruder"}); err != nil {
		t.Fatal(err)
	}
	if cm.Data["value"] != "tampered" {
		t.Fatalf("setup: %v", cm.Data)
	}
	rep := launchIt()
	if got := actions(rep); got["configmap/cm-1"] != launch.Update {
		t.Errorf("a tampered configmap planned as %v", got["configmap/cm-1"])
	}
	if cm, err := cms.Get(ctx, "cm-1", metav1.GetOptions{}); err != nil || cm.Data["value"] != "1" {
		t.Errorf("the tampering was not undone: %v %v", err, cm.Data)
	}
}

// launchNoWait renders proj's manifests and launches them with eng, not waiting.
func launchNoWait(t *testing.T, eng *launch.Engine, proj *launch.Project) *launch.Report {
	t.Helper()
	ctx := context.Background()
	src, err := proj.Discover()
	if err != nil {
		t.Fatal(err)
	}
	objs, err := launch.Render(ctx, src, launch.RenderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := eng.Launch(ctx, proj, objs, launch.Options{NoWait: true})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}
