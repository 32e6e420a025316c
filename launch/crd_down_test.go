package launch_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/NationTech/harmony-agent/internal/testcluster"
	"github.com/NationTech/harmony-agent/launch"
)

var crdGVR = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// testCRD is a namespaced CRD of group, kind and plural.
func testCRD(group, kind, plural string) string {
	return fmt.Sprintf(`apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: %[3]s.%[1]s}
spec:
  group: %[1]s
  scope: Namespaced
  names: {plural: %[3]s, singular: %[4]s, kind: %[2]s}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
`, group, kind, plural, strings.ToLower(kind))
}

// deleteCRDAtEnd removes a test's CRD (cluster-wide) when the test ends, whatever down did.
func deleteCRDAtEnd(t *testing.T, name string) {
	c := testcluster.Need(t, cluster) // under -short: skips before a cleanup that needs the cluster
	t.Cleanup(func() {
		_ = dynamic.NewForConfigOrDie(c.Config).Resource(crdGVR).Delete(context.Background(), name, metav1.DeleteOptions{})
	})
}

func crdExists(t *testing.T, name string) bool {
	t.Helper()
	_, err := dynamic.NewForConfigOrDie(cluster.Config).Resource(crdGVR).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	return err == nil
}

// Helm never deletes the CRDs of a chart's crds/ folder: deleting a CRD deletes every custom
// resource of its kind in the cluster, whoever made it. down keeps them too (the project's own
// custom resources go), says so with the command that deletes them by hand, and a later
// launch of the same project takes them back without --adopt.
func TestDownKeepsChartCRDs(t *testing.T) {
	t.Parallel()
	const name = "gizmos.chartcrd.harmony.dev"
	deleteCRDAtEnd(t, name)
	p := newChartProject(t, map[string]string{
		"chart/Chart.yaml":          "apiVersion: v2\nname: gizmo\nversion: 0.1.0\n",
		"chart/crds/gizmos.yaml":    testCRD("chartcrd.harmony.dev", "Gizmo", "gizmos"),
		"chart/templates/app.yaml":  "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\n",
		"chart/templates/mine.yaml": "apiVersion: chartcrd.harmony.dev/v1\nkind: Gizmo\nmetadata: {name: mine}\nspec: {size: 1}\n",
	})
	ctx := context.Background()
	if _, _, err := p.launchChart(); err != nil {
		t.Fatalf("%v\n%s", err, p.out.String())
	}
	gizmos := dynamic.NewForConfigOrDie(cluster.Config).Resource(schema.GroupVersionResource{Group: "chartcrd.harmony.dev", Version: "v1", Resource: "gizmos"})

	var out bytes.Buffer
	steps, err := p.eng.Down(ctx, p.proj, time.Minute, &out)
	if err != nil {
		t.Fatalf("down: %v\n%s", err, out.String())
	}
	if !crdExists(t, name) {
		t.Fatalf("down deleted the chart's crds/ CRD %s:\n%s", name, out.String())
	}
	if _, err := gizmos.Namespace(p.ns).Get(ctx, "mine", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the project's own custom resource survived down: %v", err)
	}
	for _, want := range []string{
		"kept customresourcedefinition/" + name + ": from the Helm chart's crds/ folder",
		"kept 1 CRD: deleting a CRD deletes every resource of its kind in the cluster; to delete it anyway: kubectl --context harmony delete crd " + name + "\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("down's output lacks %q:\n%s", want, out.String())
		}
	}
	for _, s := range steps {
		if strings.HasPrefix(s.Ref, "customresourcedefinition/") && (s.Action != launch.Skip || !strings.Contains(s.Note, "crds/")) {
			t.Errorf("step %+v, want a skip that says why", s)
		}
	}
	if _, err := cluster.Client.CoreV1().ConfigMaps(p.ns).Get(ctx, p.proj.InventoryName(), metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the inventory survived down: %v", err)
	}

	// Launching the project again takes its CRD back, as Helm installs over existing crds/.
	if _, _, err := p.launchChart(); err != nil {
		t.Fatalf("re-launch over the kept CRD: %v\n%s", err, p.out.String())
	}
	if _, err := gizmos.Namespace(p.ns).Get(ctx, "mine", metav1.GetOptions{}); err != nil {
		t.Fatalf("re-launch: %v", err)
	}
}

// A CRD the project applies itself (not from a chart's crds/) goes with down, unless custom
// resources of its kind that are not the project's exist: deleting it would delete them, and
// harmony never deletes what is not its own. Then down keeps it, naming them.
func TestDownKeepsACRDOthersUse(t *testing.T) {
	t.Parallel()
	const group, name = "downcrd.harmony.dev", "widgets.downcrd.harmony.dev"
	deleteCRDAtEnd(t, name)
	p := newProject(t, "../examples/hello")
	p.setManifests(map[string]string{
		"z-crd.yaml":  testCRD(group, "Widget", "widgets"),
		"a-mine.yaml": "apiVersion: " + group + "/v1\nkind: Widget\nmetadata: {name: mine}\n",
	})
	ctx := context.Background()
	if _, err := p.launch(); err != nil {
		t.Fatalf("%v\n%s", err, p.out.String())
	}
	widgets, other := othersWidget(t, p, group)

	var out bytes.Buffer
	if _, err := p.eng.Down(ctx, p.proj, time.Minute, &out); err != nil {
		t.Fatalf("down: %v\n%s", err, out.String())
	}
	if !crdExists(t, name) {
		t.Fatalf("down deleted %s, and with it a widget that is not the project's:\n%s", name, out.String())
	}
	if _, err := widgets.Namespace(other).Get(ctx, "theirs", metav1.GetOptions{}); err != nil {
		t.Fatalf("someone else's widget: %v", err)
	}
	for _, want := range []string{
		"kept customresourcedefinition/" + name + ": 1 widget in the cluster is not this project's (widget/theirs in namespace " + other + ")",
		"delete crd " + name,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("down's output lacks %q:\n%s", want, out.String())
		}
	}

	// Once nothing else uses it, the project's CRD goes with down.
	if err := widgets.Namespace(other).Delete(ctx, "theirs", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.launch(); err != nil {
		t.Fatalf("re-launch: %v\n%s", err, p.out.String())
	}
	out.Reset()
	if _, err := p.eng.Down(ctx, p.proj, time.Minute, &out); err != nil {
		t.Fatalf("down: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "deleted customresourcedefinition/"+name) || strings.Contains(out.String(), "kept") {
		t.Fatalf("down of a CRD only the project used:\n%s", out.String())
	}
}

// Hostile repository: a project that stops serving its CRD's kind (served: false), so that the
// custom resources of that kind can no longer be listed, does not get it deleted by down while
// someone else's resources of that kind exist: a kind that cannot be listed keeps its CRD.
func TestDownKeepsACRDWhoseKindIsNotServed(t *testing.T) {
	t.Parallel()
	const group, name = "unserved.harmony.dev", "widgets.unserved.harmony.dev"
	deleteCRDAtEnd(t, name)
	p := newProject(t, "../examples/hello")
	crd := filepath.Join(p.dir, "manifests", "z-crd.yaml")
	p.setManifests(map[string]string{"z-crd.yaml": testCRD(group, "Widget", "widgets")})
	ctx := context.Background()
	if _, err := p.launch(); err != nil {
		t.Fatalf("%v\n%s", err, p.out.String())
	}
	othersWidget(t, p, group) // someone else's widget, which down must not take with the CRD

	// The project's next version serves no version of its kind.
	if err := os.WriteFile(crd, []byte(strings.Replace(testCRD(group, "Widget", "widgets"), "served: true", "served: false", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := p.launch(); err != nil {
		t.Fatalf("re-launch: %v\n%s", err, p.out.String())
	}
	var out bytes.Buffer
	if _, err := p.eng.Down(ctx, p.proj, time.Minute, &out); err != nil {
		t.Fatalf("down: %v\n%s", err, out.String())
	}
	if !crdExists(t, name) {
		t.Fatalf("down deleted %s, and with it a widget that is not the project's:\n%s", name, out.String())
	}
	if !strings.Contains(out.String(), "kept customresourcedefinition/"+name) {
		t.Errorf("down's output does not say it kept %s:\n%s", name, out.String())
	}
}

// setManifests leaves only the test's files in the example's manifests folder (its Deployment
// and Service are left out: these tests are about CRDs).
func (p *project) setManifests(files map[string]string) {
	p.t.Helper()
	for _, file := range []string{"deployment.yaml", "service.yaml"} {
		_ = os.Remove(filepath.Join(p.dir, "manifests", file))
	}
	for file, body := range files {
		if err := os.WriteFile(filepath.Join(p.dir, "manifests", file), []byte(body), 0o644); err != nil {
			p.t.Fatal(err)
		}
	}
}

// othersWidget creates someone else's Widget "theirs" of group in a namespace of their own,
// and returns the Widgets' client and that namespace.
func othersWidget(t *testing.T, p *project, group string) (dynamic.NamespaceableResourceInterface, string) {
	t.Helper()
	ctx := context.Background()
	other := p.ns + "-other"
	if _, err := cluster.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: other}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cluster.Client.CoreV1().Namespaces().Delete(context.Background(), other, metav1.DeleteOptions{})
	})
	widgets := dynamic.NewForConfigOrDie(cluster.Config).Resource(schema.GroupVersionResource{Group: group, Version: "v1", Resource: "widgets"})
	theirs := &unstructured.Unstructured{Object: map[string]any{"apiVersion": group + "/v1", "kind": "Widget", "metadata": map[string]any{"name": "theirs"}}}
	if _, err := widgets.Namespace(other).Create(ctx, theirs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return widgets, other
}
