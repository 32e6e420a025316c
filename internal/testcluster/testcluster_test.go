package testcluster_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"sigs.k8s.io/yaml"

	"github.com/NationTech/harmony-agent/internal/testcluster"
)

var cluster *testcluster.Cluster

func TestMain(m *testing.M) {
	os.Exit(testcluster.Main(m, &cluster))
}

func apply(t *testing.T, dyn dynamic.Interface, gvr schema.GroupVersionResource, ns, doc string, dryRun bool) error {
	t.Helper()
	var obj unstructured.Unstructured
	if err := yaml.Unmarshal([]byte(doc), &obj.Object); err != nil {
		t.Fatal(err)
	}
	data, err := obj.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	opts := metav1.PatchOptions{FieldManager: "harmony-test", Force: new(true)}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	var ri dynamic.ResourceInterface = dyn.Resource(gvr)
	if ns != "" {
		ri = dyn.Resource(gvr).Namespace(ns)
	}
	_, err = ri.Patch(context.Background(), obj.GetName(), types.ApplyPatchType, data, opts)
	return err
}

func deployment(name, image string) string {
	return `
apiVersion: apps/v1
kind: Deployment
metadata: {name: ` + name + `}
spec:
  replicas: 2
  selector: {matchLabels: {app: ` + name + `}}
  template:
    metadata: {labels: {app: ` + name + `}}
    spec:
      containers: [{name: app, image: "` + image + `"}]
`
}

var (
	deployments = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	services    = schema.GroupVersionResource{Version: "v1", Resource: "services"}
	configmaps  = schema.GroupVersionResource{Version: "v1", Resource: "configmaps"}
)

func waitAvailable(ctx context.Context, t *testing.T, ns, name string) (*appsv1.Deployment, bool) {
	var d *appsv1.Deployment
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		var err error
		d, err = cluster.Client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		for _, c := range d.Status.Conditions {
			if c.Type == appsv1.DeploymentAvailable && c.Status == corev1.ConditionTrue && d.Status.AvailableReplicas == *d.Spec.Replicas {
				return true, nil
			}
		}
		return false, nil
	})
	return d, err == nil
}

func TestServerSideApplyAndDeploymentBecomesAvailable(t *testing.T) {
	c := testcluster.Need(t, cluster)
	t.Parallel()
	ns := c.Namespace(t)
	dyn := dynamic.NewForConfigOrDie(c.Config)
	for _, step := range []struct {
		gvr schema.GroupVersionResource
		doc string
	}{
		{configmaps, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: hello}\ndata: {greeting: hi}"},
		{deployments, deployment("hello", "nginx:1.27")},
		{services, "apiVersion: v1\nkind: Service\nmetadata: {name: hello}\nspec: {selector: {app: hello}, ports: [{port: 80}]}"},
	} {
		if err := apply(t, dyn, step.gvr, ns, step.doc, false); err != nil {
			t.Fatal(err)
		}
	}
	// Generous: the wait ends once the deployment is Available, and a loaded CI machine's
	// controller-manager has taken over 20 s to create a pod.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if d, ok := waitAvailable(ctx, t, ns, "hello"); !ok {
		t.Fatalf("deployment never became Available after 3 minutes: %+v\ncontroller-manager: %s\nsimulated node: %s", d.Status, c.LogTail("kube-controller-manager", 10), c.LogTail("simulated-node", 10))
	}
	cm, err := c.Client.CoreV1().ConfigMaps(ns).Get(ctx, "hello", metav1.GetOptions{})
	if err != nil || cm.ManagedFields[0].Manager != "harmony-test" || cm.ManagedFields[0].Operation != metav1.ManagedFieldsOperationApply {
		t.Fatalf("configmap not owned by the apply field manager: %v %+v", err, cm.ManagedFields)
	}
}

func TestFailingImageNeverBecomesAvailable(t *testing.T) {
	c := testcluster.Need(t, cluster)
	t.Parallel()
	ns := c.Namespace(t)
	dyn := dynamic.NewForConfigOrDie(c.Config)
	if err := apply(t, dyn, deployments, ns, deployment("broken", testcluster.FailingImage), false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	if _, ok := waitAvailable(ctx, t, ns, "broken"); ok {
		t.Fatal("a deployment whose image cannot be pulled became Available")
	}
	// A loaded machine's controller-manager and simulated node take their time to create the pods
	// and fail their pull: wait (up to two minutes) until a pod waits with ErrImagePull and a
	// Warning event about it says the pull failed, rather than expecting both after 8 seconds.
	pctx, pcancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer pcancel()
	var pods []corev1.Pod
	var events []corev1.Event
	err := wait.PollUntilContextCancel(pctx, 200*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		list, err := c.Client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		pods, events = list.Items, nil
		for _, pod := range pods {
			st := pod.Status.ContainerStatuses
			if len(st) == 0 || st[0].State.Waiting == nil || st[0].State.Waiting.Reason != "ErrImagePull" {
				continue
			}
			ev, err := c.Client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + pod.Name})
			if err != nil {
				return false, nil
			}
			events = ev.Items
			for _, e := range events {
				if e.Type == corev1.EventTypeWarning && strings.Contains(e.Message, "Failed to pull image") {
					return true, nil
				}
			}
		}
		return false, nil
	})
	if err != nil {
		var states []string
		for _, pod := range pods {
			states = append(states, fmt.Sprintf("%s: %+v", pod.Name, pod.Status.ContainerStatuses))
		}
		t.Fatalf("after two minutes no pod shows the pull failure with a Warning event about it\npods: %v\nevents of the last failing pod: %+v\ncontroller-manager: %s\nsimulated node: %s",
			states, events, c.LogTail("kube-controller-manager", 10), c.LogTail("simulated-node", 10))
	}
	d, err := c.Client.AppsV1().Deployments(ns).Get(context.Background(), "broken", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if d.Status.AvailableReplicas != 0 {
		t.Fatalf("a deployment whose image cannot be pulled has available replicas: %+v", d.Status)
	}
}

func TestCRDAndCustomResource(t *testing.T) {
	c := testcluster.Need(t, cluster)
	t.Parallel()
	ns := c.Namespace(t)
	dyn := dynamic.NewForConfigOrDie(c.Config)
	crds := schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	crd := `
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.test.harmony.dev}
spec:
  group: test.harmony.dev
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, properties: {size: {type: integer}}}
`
	if err := apply(t, dyn, crds, "", crd, false); err != nil {
		t.Fatal(err)
	}
	widgets := schema.GroupVersionResource{Group: "test.harmony.dev", Version: "v1", Resource: "widgets"}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // ends once the CRD serves
	defer cancel()
	err := wait.PollUntilContextCancel(ctx, 200*time.Millisecond, true, func(context.Context) (bool, error) {
		return apply(t, dyn, widgets, ns, "apiVersion: test.harmony.dev/v1\nkind: Widget\nmetadata: {name: w}\nspec: {size: 3}", false) == nil, nil
	})
	if err != nil {
		t.Fatal("custom resource never applied within 2 minutes of its CRD")
	}
	// The CRD's schema is enforced by the real server.
	err = apply(t, dyn, widgets, ns, "apiVersion: test.harmony.dev/v1\nkind: Widget\nmetadata: {name: bad}\nspec: {size: many}", true)
	if err == nil || !strings.Contains(err.Error(), "spec.size") {
		t.Fatalf("dry run of a widget with a string size: %v, want a rejection naming spec.size", err)
	}
}

func TestServerSideDryRunRejectsAnInvalidObject(t *testing.T) {
	c := testcluster.Need(t, cluster)
	t.Parallel()
	ns := c.Namespace(t)
	dyn := dynamic.NewForConfigOrDie(c.Config)
	bad := strings.Replace(deployment("bad", "nginx"), "replicas: 2", "replicas: -1", 1)
	err := apply(t, dyn, deployments, ns, bad, true)
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "spec.replicas") {
		t.Fatalf("dry run: %v, want an Invalid error naming spec.replicas", err)
	}
	if _, err := c.Client.AppsV1().Deployments(ns).Get(context.Background(), "bad", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the dry run created the object: %v", err)
	}
	good := deployment("good", "nginx")
	if err := apply(t, dyn, deployments, ns, good, true); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client.AppsV1().Deployments(ns).Get(context.Background(), "good", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("a dry run wrote the object: %v", err)
	}
}

func TestVersionMatchesThePinnedMinor(t *testing.T) {
	c := testcluster.Need(t, cluster)
	v, err := c.Client.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if v.GitVersion != "v1.36.3" {
		t.Fatalf("server reports %q, want v1.36.3", v.GitVersion)
	}
	t.Logf("control plane started in %s", c.StartupTime)
}
