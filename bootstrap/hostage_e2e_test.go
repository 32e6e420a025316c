//go:build linux

package bootstrap_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/NationTech/harmony-agent/bootstrap"
	"github.com/NationTech/harmony-agent/internal/testcluster"
)

// neverAvailable creates a Deployment in kube-system whose pods can never run (the simulated
// node cannot pull its image), as a launched repo can, and removes it when t ends.
func neverAvailable(t *testing.T, name string) {
	t.Helper()
	systemDeployment(t, name, testcluster.FailingImage, nil)
}

// addonMarks are the annotations k3s's deploy controller puts on what its Addons deploy.
var addonMarks = map[string]string{
	"objectset.rio.cattle.io/owner-gvk": "k3s.cattle.io/v1, Kind=Addon", "objectset.rio.cattle.io/owner-name": "x",
	"objectset.rio.cattle.io/owner-namespace": "kube-system",
}

// systemDeployment creates a Deployment in kube-system running image, with annotations, and
// removes it when t ends.
func systemDeployment(t *testing.T, name, image string, annotations map[string]string) {
	t.Helper()
	c := testcluster.Need(t, cluster)
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: metav1.NamespaceSystem, Annotations: annotations},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}},
			},
		},
	}
	if _, err := c.Client.AppsV1().Deployments(metav1.NamespaceSystem).Create(context.Background(), d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = c.Client.AppsV1().Deployments(metav1.NamespaceSystem).Delete(context.Background(), name, metav1.DeleteOptions{})
	})
}

// TestARepoDeploymentInKubeSystemCannotHoldPatchingHostage: a launched repo that adds a
// never-available Deployment to kube-system once made every upgrade fail and its rollback fail
// too, freezing the runtime on its patch. Health is judged by k3s's own components, against
// the state before the switch.
func TestARepoDeploymentInKubeSystemCannotHoldPatchingHostage(t *testing.T) {
	t.Parallel()
	m := newMachine(t)
	m.mustHarmony("bootstrap")
	neverAvailable(t, "hostage-"+strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))[:20])
	m.publish(3, patchTag)
	r := m.harmony("runtime", "upgrade", "--timeout", "20s")
	if r.code != 0 || !strings.Contains(r.stdout, "k3s upgraded "+k3sTag+" → "+patchTag+" and healthy") {
		t.Fatalf("upgrade with a repo's never-available deployment in kube-system: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	m.healthyAt(patchTag)
	r = m.harmony("runtime", "rollback", "--timeout", "20s")
	if r.code != 0 {
		t.Fatalf("rollback: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	m.healthyAt(k3sTag)
}

// TestAComponentUnavailableBeforeCannotFailTheSwitch: one of k3s's own components that was not
// available before the switch (here coredns, k3s's marks on it, whose image cannot be pulled)
// does not count against the new version, nor against the way back; and a repo's Deployment
// squatting a component's name counts never, even with k3s's marks copied, once harmony applied
// it (its inventory mark), nor one without k3s's marks.
func TestAComponentUnavailableBeforeCannotFailTheSwitch(t *testing.T) {
	t.Parallel()
	c := testcluster.Need(t, cluster)
	systemDeployment(t, "coredns", testcluster.FailingImage, addonMarks)
	squat := map[string]string{"config.k8s.io/owning-inventory": "hostile-repo"}
	for k, v := range addonMarks {
		squat[k] = v
	}
	systemDeployment(t, "metrics-server", "registry.invalid/squat:v1", squat)
	systemDeployment(t, "local-path-provisioner", "registry.invalid/squat:v1", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Both squatters become available on the simulated node (it runs any image but the failing one).
	if err := waitAvailable(ctx, c, "metrics-server", "local-path-provisioner"); err != nil {
		t.Fatal(err)
	}
	before := bootstrap.Baseline(ctx, c.Config)
	if !before.API || !before.Node || len(before.Components) != 0 {
		t.Fatalf("baseline with an unavailable coredns and a repo's deployments in kube-system: %+v, want the API and a node, no components", before)
	}
	if err := bootstrap.CheckHealth(ctx, c.Config, before.Want()); err != nil {
		t.Fatalf("health judged against that baseline: %v", err)
	}
	// A component that was available before is required: coredns is not available.
	err := bootstrap.CheckHealth(ctx, c.Config, bootstrap.Health{API: true, Node: true, Components: []string{"coredns"}})
	if err == nil || !strings.Contains(err.Error(), "coredns") {
		t.Fatalf("health requiring coredns, which is not available: %v", err)
	}

	m := newMachine(t)
	m.mustHarmony("bootstrap")
	m.publish(3, patchTag)
	if r := m.harmony("runtime", "upgrade", "--timeout", "20s"); r.code != 0 {
		t.Fatalf("upgrade with coredns unavailable before: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	m.healthyAt(patchTag)
}

// TestARecoveryThatCannotSucceedHoldsNoOtherCommand: a rollback whose way back keeps failing
// once made every later command wait minutes for it and fail. Only runtime commands recover;
// the others say so in a line and go on; rollback --abandon ends it.
func TestARecoveryThatCannotSucceedHoldsNoOtherCommand(t *testing.T) {
	t.Parallel()
	m := newMachine(t)
	m.mustHarmony("bootstrap")
	// An interrupted rollback whose way back requires a component that never becomes available
	// (recorded as available before the switch: what the way back must restore).
	journal := m.path("/var/lib/harmony/k3s/upgrade-journal.json")
	dead := exec.Command("true") // the killed harmony's process: gone
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(bootstrap.Journal{Runtime: "k3s", Op: "upgrade", From: k3sTag, To: patchTag, Phase: bootstrap.PhaseRollingBack,
		Started: time.Now(), Updated: time.Now(), PID: dead.Process.Pid, Before: &bootstrap.Health{API: true, Node: true, Components: []string{"coredns"}}})
	if err := os.WriteFile(journal, b, 0o600); err != nil {
		t.Fatal(err)
	}

	// Another command says what is unfinished and how to end it, and goes on at once.
	r := m.harmonyWithin(30*time.Second, "kubeconfig")
	if r.code != 0 || !strings.Contains(r.stderr, "interrupted upgrade of k3s ("+k3sTag+" → "+patchTag) || !strings.Contains(r.stderr, "harmony runtime rollback --abandon") {
		t.Fatalf("kubeconfig with an unfinished switch: exit %d\n%s", r.code, r.stderr)
	}
	if _, err := os.Stat(journal); err != nil {
		t.Fatalf("a command other than a runtime command acted on the journal: %v", err)
	}

	// The runtime's own recovery fails (coredns never becomes available) and names --abandon.
	r = m.harmonyWithin(2*time.Minute, "runtime", "rollback", "--timeout", "3s")
	if r.code == 0 || !strings.Contains(r.stderr, "--abandon") {
		t.Fatalf("rollback of a recovery that cannot succeed: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// --abandon ends it without touching the runtime, and nothing notes it afterwards.
	pid := m.pid()
	r = m.harmonyWithin(30*time.Second, "runtime", "rollback", "--abandon")
	if r.code != 0 || !strings.Contains(r.stdout, "is abandoned") {
		t.Fatalf("rollback --abandon: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(journal); !os.IsNotExist(err) {
		t.Fatalf("the journal is still there after --abandon: %v", err)
	}
	if m.pid() != pid || m.current() != k3sTag {
		t.Fatalf("--abandon touched the runtime: pid %d → %d, current %s", pid, m.pid(), m.current())
	}
	if r := m.harmonyWithin(30*time.Second, "runtime", "status"); strings.Contains(r.stderr, "interrupted") {
		t.Fatalf("status after --abandon still notes a switch:\n%s", r.stderr)
	}
	if r := m.harmonyWithin(30*time.Second, "runtime", "rollback", "--abandon"); r.code != 0 || !strings.Contains(r.stdout, "nothing to abandon") {
		t.Fatalf("a second --abandon: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// waitAvailable waits until each named kube-system Deployment has all its replicas available.
func waitAvailable(ctx context.Context, c *testcluster.Cluster, names ...string) error {
	for _, name := range names {
		for {
			d, err := c.Client.AppsV1().Deployments(metav1.NamespaceSystem).Get(ctx, name, metav1.GetOptions{})
			if err == nil && d.Status.AvailableReplicas >= 1 && d.Status.UpdatedReplicas >= 1 {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("kube-system/%s never became available: %v", name, ctx.Err())
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	return nil
}

// TestHealthWantsTheNodeToReportSinceTheStart: right after a restart a node's Ready status is the
// one from before; the health check of a switch wants the node's kubelet to have renewed its
// lease since the new version started.
func TestHealthWantsTheNodeToReportSinceTheStart(t *testing.T) {
	t.Parallel()
	c := testcluster.Need(t, cluster)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := bootstrap.CheckHealth(ctx, c.Config, bootstrap.Health{API: true, Node: true, Since: time.Now().Add(-time.Minute)}); err != nil {
		t.Fatalf("a node that reports every few seconds, wanted since a minute ago: %v", err)
	}
	err := bootstrap.CheckHealth(ctx, c.Config, bootstrap.Health{API: true, Node: true, Since: time.Now().Add(time.Hour)})
	if err == nil || !strings.Contains(err.Error(), "reported since the start") {
		t.Fatalf("a node that has not reported since the start passed: %v", err)
	}
}
