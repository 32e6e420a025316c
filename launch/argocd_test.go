package launch_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/NationTech/harmony-agent/internal/testcluster"
	"github.com/NationTech/harmony-agent/launch"
)

// argoJob is a Job with Argo CD annotations; name may be "generateName: x-" instead of a name.
func argoJob(name string, annotations ...string) string {
	if !strings.Contains(name, ":") {
		name = "name: " + name
	}
	return fmt.Sprintf(`apiVersion: batch/v1
kind: Job
metadata:
  %s
  annotations:
    %s
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: run
        image: busybox:1.37
        command: ["true"]
`, name, strings.Join(annotations, "\n    "))
}

func waveConfigMap(name, wave string) string {
	ann := ""
	if wave != "" {
		ann = fmt.Sprintf("\n  annotations: {argocd.argoproj.io/sync-wave: %q}", wave)
	}
	return fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: %s%s\ndata: {wave: %q}\n", name, ann, wave)
}

// runLaunch launches dir's app through launch.Run, the CLI's entry point, on the test cluster.
func runLaunch(t *testing.T, dir, ns string, timeout time.Duration) (*launch.Result, string, error) {
	t.Helper()
	c := testcluster.Need(t, cluster)
	var out bytes.Buffer
	res, err := launch.Run(context.Background(), launch.Request{
		Selection: launch.Selection{Dir: dir, Namespace: ns},
		Launch:    launch.Options{Timeout: timeout},
	}, launch.Host{
		Cluster: func(context.Context, *launch.Project, bool) (*rest.Config, error) { return c.Config, nil },
	}, launch.Sink{Progress: &out})
	return res, out.String(), err
}

func cleanupNamespace(t *testing.T, ns string) {
	t.Cleanup(func() {
		_ = cluster.Client.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	})
}

// Argo CD's sync waves order the apply (each wave ready before the next), its PreSync hooks run
// before the objects and its PostSync hooks after they are ready, once per launch; a hook with a
// generateName is created anew each launch (the one before deleted: BeforeHookCreation, the
// default); Skip objects are not applied; SyncFail hooks run only when a launch fails.
func TestArgoSyncWavesAndHooks(t *testing.T) {
	t.Parallel()
	testcluster.Need(t, cluster)
	ns := "argo-waves-hooks"
	cleanupNamespace(t, ns)
	dir := tree(t, map[string]string{
		"manifests/app.yaml": waveConfigMap("late", "2") + "---\n" + waveConfigMap("early", "-1") + "---\n" + waveConfigMap("middle", "") + "---\n" +
			argoJob("migrate", "argocd.argoproj.io/hook: PreSync", "argocd.argoproj.io/hook-delete-policy: HookSucceeded") + "---\n" +
			argoJob("generateName: smoke-", "argocd.argoproj.io/hook: PostSync") + "---\n" +
			argoJob("on-failure", "argocd.argoproj.io/hook: SyncFail") + "---\n" +
			argoJob("maintenance", "argocd.argoproj.io/hook: Sync", `argocd.argoproj.io/sync-wave: "1"`) + "---\n" +
			"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: skipped\n  annotations: {argocd.argoproj.io/hook: Skip}\n",
	})
	ctx := context.Background()
	res, out, err := runLaunch(t, dir, ns, 3*time.Minute)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	// Waves: each created after the one before it was ready (etcd's revisions order creations).
	rv := map[string]int{}
	for _, name := range []string{"early", "middle", "late"} {
		cm, err := cluster.Client.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		rv[name], _ = strconv.Atoi(cm.ResourceVersion)
	}
	if !(rv["early"] < rv["middle"] && rv["middle"] < rv["late"]) {
		t.Errorf("creation order %v, want early (wave -1) < middle (0) < late (2)", rv)
	}
	iPre, iWave, iPost := strings.Index(out, "PreSync hook job/migrate"), strings.Index(out, "sync wave -1"), strings.Index(out, "PostSync hook job/smoke-…")
	if iPre < 0 || iWave < iPre || iPost < iWave {
		t.Errorf("PreSync, the waves and PostSync out of order:\n%s", out)
	}
	// A Sync hook runs at its own wave: after wave 0 was ready, before wave 2 is applied.
	if i0, iSync, i2 := strings.Index(out, "sync wave 0"), strings.Index(out, "Sync hook job/maintenance"), strings.Index(out, "sync wave 2"); i0 < 0 || iSync < i0 || i2 < iSync {
		t.Errorf("the Sync hook of wave 1 ran out of its wave:\n%s", out)
	}
	if !strings.Contains(out, "configmap/skipped (argocd.argoproj.io/hook: Skip: not applied)") {
		t.Errorf("the Skip object is not named:\n%s", out)
	}
	if _, err := cluster.Client.CoreV1().ConfigMaps(ns).Get(ctx, "skipped", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the Skip object was applied: %v", err)
	}
	if _, err := cluster.Client.BatchV1().Jobs(ns).Get(ctx, "on-failure", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the SyncFail hook ran on a launch that did not fail: %v", err)
	}
	if _, err := cluster.Client.BatchV1().Jobs(ns).Get(ctx, "migrate", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("the PreSync job was not deleted after it succeeded (HookSucceeded): %v", err)
	}
	smoke := func() []string {
		t.Helper()
		jobs, err := cluster.Client.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, j := range jobs.Items {
			if strings.HasPrefix(j.Name, "smoke-") {
				if j.Status.Succeeded != 1 {
					t.Errorf("PostSync job %s has not succeeded: %+v", j.Name, j.Status)
				}
				names = append(names, j.Name)
			}
		}
		return names
	}
	first := smoke()
	if len(first) != 1 {
		t.Fatalf("PostSync jobs %v, want one", first)
	}
	hooked := false
	for _, s := range res.Report.Plan {
		switch {
		case strings.HasPrefix(s.Ref, "job/migrate"):
			hooked = s.Action == launch.RunHook
		case strings.HasPrefix(s.Ref, "configmap/skipped"):
			t.Errorf("the Skip object is in the plan: %+v", s)
		}
	}
	if !hooked {
		t.Errorf("the PreSync job is not planned as a hook: %+v", res.Report.Plan)
	}

	// Launched again: the hooks run again, the generateName one as a new Job replacing the last.
	_, out, err = runLaunch(t, dir, ns, 3*time.Minute)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !strings.Contains(out, "PreSync hook job/migrate") || !strings.Contains(out, "PostSync hook job/smoke-…") {
		t.Errorf("the hooks did not run again:\n%s", out)
	}
	if again := smoke(); len(again) != 1 || again[0] == first[0] {
		t.Errorf("PostSync jobs after the second launch %v (first %v), want one new one", again, first)
	}
}

// A wave that does not become ready stops the launch: the waves after it are not applied, and
// the SyncFail hooks run.
func TestArgoUnreadyWaveStopsTheLaunch(t *testing.T) {
	t.Parallel()
	testcluster.Need(t, cluster)
	ns := "argo-unready-wave"
	cleanupNamespace(t, ns)
	deploy := fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: broken
spec:
  selector: {matchLabels: {app: broken}}
  template:
    metadata: {labels: {app: broken}}
    spec:
      containers: [{name: c, image: %s}]
`, testcluster.FailingImage)
	dir := tree(t, map[string]string{
		"manifests/app.yaml": deploy + "---\n" + waveConfigMap("after", "1") + "---\n" +
			argoJob("generateName: report-", "argocd.argoproj.io/hook: SyncFail"),
	})
	_, out, err := runLaunch(t, dir, ns, 20*time.Second)
	if err == nil || !strings.Contains(err.Error(), "sync wave 0 did not become ready") {
		t.Fatalf("error %v, want the unready wave named\n%s", err, out)
	}
	ctx := context.Background()
	if _, err := cluster.Client.CoreV1().ConfigMaps(ns).Get(ctx, "after", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("wave 1 was applied after wave 0 failed: %v", err)
	}
	jobs, err := cluster.Client.BatchV1().Jobs(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(jobs.Items) != 1 || !strings.HasPrefix(jobs.Items[0].Name, "report-") || !strings.Contains(out, "SyncFail hook job/report-…") {
		t.Errorf("SyncFail jobs %d, want the report- one\n%s", len(jobs.Items), out)
	}
}

// A sync wave that is not a number, and an object that is not a hook with a generateName, are
// refused by name before anything is applied.
func TestArgoBadAnnotationsAreNamed(t *testing.T) {
	t.Parallel()
	testcluster.Need(t, cluster)
	ns := "argo-bad-annotations"
	cleanupNamespace(t, ns)
	dir := tree(t, map[string]string{"manifests/app.yaml": waveConfigMap("odd", "first")})
	_, _, err := runLaunch(t, dir, ns, time.Minute)
	if !errors.Is(err, launch.ErrBadManifest) || !strings.Contains(err.Error(), "configmap/odd (manifests/app.yaml") ||
		!strings.Contains(err.Error(), `argocd.argoproj.io/sync-wave "first" is not a whole number`) {
		t.Fatalf("error %v", err)
	}
	dir = tree(t, map[string]string{"manifests/app.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {generateName: x-}\n"})
	_, _, err = runLaunch(t, dir, ns, time.Minute)
	if !errors.Is(err, launch.ErrBadManifest) || !strings.Contains(err.Error(), "only a hook") {
		t.Fatalf("error %v", err)
	}
	if _, err := cluster.Client.CoreV1().Namespaces().Get(context.Background(), ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("a refused launch created its namespace: %v", err)
	}
}

// Ctrl-C while a launch waits says what was applied and what was not ready yet (issue 29 item 6),
// as an InterruptedError, not the client's "context canceled".
func TestInterruptedWhileWaitingNamesWhatIsNotReady(t *testing.T) {
	t.Parallel()
	c := testcluster.Need(t, cluster)
	ns := "interrupted-wait"
	cleanupNamespace(t, ns)
	dir := tree(t, map[string]string{"manifests/app.yaml": fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: stuck}
spec:
  selector: {matchLabels: {app: stuck}}
  template:
    metadata: {labels: {app: stuck}}
    spec: {containers: [{name: c, image: %s}]}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: fine}
`, testcluster.FailingImage)})
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	go func() {
		for !strings.Contains(out.String(), "launching") {
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(3 * time.Second) // applied, waiting
		cancel()
	}()
	_, err := launch.Run(ctx, launch.Request{Selection: launch.Selection{Dir: dir, Namespace: ns}, Launch: launch.Options{Timeout: time.Minute}},
		launch.Host{Cluster: func(context.Context, *launch.Project, bool) (*rest.Config, error) { return c.Config, nil }},
		launch.Sink{Progress: out})
	var ie *launch.InterruptedError
	if !errors.As(err, &ie) || !errors.Is(err, context.Canceled) || ie.Applied != 2 || len(ie.NotReady) != 1 || !strings.HasPrefix(ie.NotReady[0], "deployment/stuck") {
		t.Fatalf("error %v (%+v)", err, ie)
	}
}
