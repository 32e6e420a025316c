//go:build linux

package bootstrap_test

import (
	"context"
	"os"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A laptop on a shared network must not publish every launched app: a new k3s serves its apps
// on this machine only (k3s's configuration drop-in: NodePorts on loopback, no ServiceLB;
// Traefik on 127.0.0.1:80/443), --expose serves them on the network (restarting k3s, which reads
// its configuration only when it starts) and --expose=false brings them back, removing the
// ServiceLB DaemonSets that published LoadBalancer Services on every interface.
func TestBootstrapKeepsAppsOnThisMachine(t *testing.T) {
	t.Parallel()
	m := newMachine(t)
	dropIn := m.path("/etc/rancher/k3s/config.yaml.d/50-harmony-loopback.yaml")
	traefik := m.path("/var/lib/rancher/k3s/server/manifests/harmony-traefik-config.yaml")
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			return ""
		}
		return string(b)
	}
	loopback := func(when string) {
		t.Helper()
		d := read(dropIn)
		for _, want := range []string{"disable+:\n  - servicelb\n", "kube-proxy-arg+:\n  - nodeport-addresses=127.0.0.0/8\n"} {
			if !strings.Contains(d, want) {
				t.Fatalf("%s: k3s's drop-in lacks %q:\n%s", when, want, d)
			}
		}
		tr := read(traefik)
		for _, want := range []string{"kind: HelmChartConfig", "name: traefik", "hostPort: 80\n        hostIP: 127.0.0.1", "hostPort: 443\n        hostIP: 127.0.0.1", "type: ClusterIP"} {
			if !strings.Contains(tr, want) {
				t.Fatalf("%s: Traefik's config lacks %q:\n%s", when, want, tr)
			}
		}
		if st := m.status(); st.Apps != "localhost" {
			t.Fatalf("%s: status says apps answer on %q", when, st.Apps)
		}
	}

	m.mustHarmony("bootstrap")
	loopback("after a first bootstrap")
	// k3s reads the drop-in because it reads config.yaml's folder: the stand-in logs its flags.
	if log := read(m.path("/var/log/k3s.log")); !strings.Contains(log, "--config "+m.path("/etc/rancher/k3s/config.yaml")) {
		t.Fatalf("k3s was not started with harmony's config file:\n%s", log)
	}

	pid := m.pid()
	r := m.mustHarmony("bootstrap", "--expose")
	if !strings.Contains(r.stderr, "answer on every network interface from now on: restarting k3s") || m.pid() == pid || !alive(m.pid()) {
		t.Fatalf("--expose did not restart k3s (pid %d → %d):\n%s", pid, m.pid(), r.stderr)
	}
	if _, err := os.Stat(dropIn); !os.IsNotExist(err) {
		t.Fatalf("--expose left the loopback drop-in: %v", err)
	}
	if tr := read(traefik); !strings.Contains(tr, `valuesContent: ""`) || strings.Contains(tr, "127.0.0.1") {
		t.Fatalf("--expose: Traefik's config is not k3s's default:\n%s", tr)
	}
	if st := m.status(); st.Apps != "network" {
		t.Fatalf("after --expose, status says apps answer on %q", st.Apps)
	}
	pid = m.pid()
	if r := m.mustHarmony("bootstrap", "--expose"); !strings.Contains(r.stderr, "already answer on every network interface") || m.pid() != pid {
		t.Fatalf("a second --expose restarted k3s or said nothing:\n%s", r.stderr)
	}
	// A plain bootstrap keeps what the runtime has.
	if m.mustHarmony("bootstrap"); m.status().Apps != "network" || m.pid() != pid {
		t.Fatal("a plain bootstrap changed the exposure")
	}

	// What ServiceLB left publishing while exposed goes with --expose=false; a DaemonSet with the
	// same label elsewhere is not ServiceLB's and stays.
	ctx := context.Background()
	c := cluster.Client
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "exposure-other"}}
	if _, err := c.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{}) })
	for _, n := range []string{"kube-system", ns.Name} {
		if _, err := c.AppsV1().DaemonSets(n).Create(ctx, svclb("svclb-exposure-web"), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		_ = c.AppsV1().DaemonSets("kube-system").Delete(context.Background(), "svclb-exposure-web", metav1.DeleteOptions{})
	})
	r = m.mustHarmony("bootstrap", "--expose=false")
	if !strings.Contains(r.stderr, "answer on this machine only (127.0.0.1) from now on") || !strings.Contains(r.stderr, "removed 1 ServiceLB DaemonSet") {
		t.Fatalf("--expose=false:\n%s", r.stderr)
	}
	loopback("after --expose=false")
	if _, err := c.AppsV1().DaemonSets("kube-system").Get(ctx, "svclb-exposure-web", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("ServiceLB's DaemonSet is still there: %v", err)
	}
	if _, err := c.AppsV1().DaemonSets(ns.Name).Get(ctx, "svclb-exposure-web", metav1.GetOptions{}); err != nil {
		t.Fatalf("a DaemonSet outside kube-system was deleted: %v", err)
	}

	// k3d publishes on localhost only: --expose is refused before anything is done, saying why.
	if r := m.harmony("bootstrap", "--runtime", "k3d", "--expose"); r.code == 0 || !strings.Contains(r.stderr, "k3d serves this machine only") {
		t.Fatalf("k3d --expose: exit %d\n%s", r.code, r.stderr)
	}
}

func svclb(name string) *appsv1.DaemonSet {
	labels := map[string]string{"svccontroller.k3s.cattle.io/svcname": "web", "app": name}
	return &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "lb", Image: "harmony.invalid/svclb"}}},
			},
		},
	}
}
