package launch_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/NationTech/harmony-agent/internal/testcluster"
	"github.com/NationTech/harmony-agent/launch"
)

// benchProject writes n objects (Deployments, Services and ConfigMaps in turn) into a
// manifests/ folder, one file each.
func benchProject(b *testing.B, n int) string {
	dir := filepath.Join(b.TempDir(), "bench")
	if err := os.MkdirAll(filepath.Join(dir, "manifests"), 0o755); err != nil {
		b.Fatal(err)
	}
	for i := range n {
		var doc string
		switch i % 3 {
		case 0:
			doc = fmt.Sprintf("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: app-%d}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: app-%d}}\n  template:\n    metadata: {labels: {app: app-%d}}\n    spec: {containers: [{name: app, image: nginx}]}\n", i, i, i)
		case 1:
			doc = fmt.Sprintf("apiVersion: v1\nkind: Service\nmetadata: {name: svc-%d}\nspec: {selector: {app: app-%d}, ports: [{port: 80}]}\n", i, i-1)
		default:
			doc = fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm-%d}\ndata: {key: value-%d}\n", i, i)
		}
		if err := os.WriteFile(filepath.Join(dir, "manifests", fmt.Sprintf("obj-%03d.yaml", i)), []byte(doc), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	return dir
}

var benchSeq int

func freshNamespace(b *testing.B, create bool) string {
	benchSeq++
	ns := fmt.Sprintf("bench-%d-%d", time.Now().UnixNano()%100000, benchSeq)
	if create {
		if _, err := cluster.Client.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	return ns
}

// BenchmarkLaunch200 measures launching 200 objects on the test API server, against
// `kubectl apply --server-side` on the same objects (scripts/bench launch prints the ratio).
func BenchmarkLaunch200(b *testing.B) {
	c := testcluster.Need(b, cluster)
	dir := benchProject(b, 200)
	src, err := launch.Discover(dir, nil)
	if err != nil {
		b.Fatal(err)
	}
	project := func(ns string) *launch.Project {
		p, err := launch.Resolve(launch.Selection{Dir: dir, Namespace: ns})
		if err != nil {
			b.Fatal(err)
		}
		return p
	}
	render := func() []launch.Object {
		objs, err := launch.Render(context.Background(), src, launch.RenderOptions{})
		if err != nil {
			b.Fatal(err)
		}
		return objs
	}
	eng, err := launch.NewEngine(c.Config)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()

	b.Run("harmony-first", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			ns := freshNamespace(b, false)
			objs := render()
			b.StartTimer()
			if _, err := eng.Launch(ctx, project(ns), objs, launch.Options{NoWait: true}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("harmony-no-change", func(b *testing.B) {
		ns := freshNamespace(b, false)
		if _, err := eng.Launch(ctx, project(ns), render(), launch.Options{NoWait: true}); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			b.StopTimer()
			objs := render()
			b.StartTimer()
			rep, err := eng.Launch(ctx, project(ns), objs, launch.Options{NoWait: true})
			if err != nil {
				b.Fatal(err)
			}
			for _, s := range rep.Plan {
				if s.Action != launch.Unchanged {
					b.Fatalf("%s: %s on a no-change launch", s.Ref, s.Action)
				}
			}
		}
	})
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		b.Log("kubectl not installed: the comparison is skipped (apt-get install kubernetes-client)")
		return
	}
	b.Run("kubectl-apply-server-side", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			ns := freshNamespace(b, true)
			b.StartTimer()
			out, err := exec.Command(kubectl, "--kubeconfig", c.Kubeconfig, "apply", "--server-side", "-n", ns, "-f", filepath.Join(dir, "manifests")).CombinedOutput()
			if err != nil {
				b.Fatalf("%v\n%s", err, out)
			}
		}
	})
}
