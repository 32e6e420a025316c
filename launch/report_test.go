package launch_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/cli-utils/pkg/object"

	"github.com/NationTech/harmony-agent/internal/testcluster"
	"github.com/NationTech/harmony-agent/launch"
)

// A LoadBalancer Service no load balancer took (a cluster without a load-balancer controller,
// --kubeconfig to kind for one) answers only on its node port: the report names that port, not
// the Service's own, which nothing serves. Once a load balancer takes it, the Service's own port
// is the one.
func TestLoadBalancerWithoutALoadBalancerIsReportedOnItsNodePort(t *testing.T) {
	t.Parallel()
	c := testcluster.Need(t, cluster)
	ctx := context.Background()
	dir := repo(t, "lb", map[string]string{
		"manifests/svc.yaml": "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {type: LoadBalancer, selector: {app: web}, ports: [{port: 8080}]}\n",
	})
	p, _, err := run(t, launch.Selection{Dir: dir}, launch.Options{NoWait: true})
	deleteNamespaceAtEnd(t, p.Namespace)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := c.Client.CoreV1().Services(p.Namespace).Get(ctx, "web", metav1.GetOptions{})
	if err != nil || len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].NodePort == 0 {
		t.Fatalf("service: %v %+v", err, svc)
	}
	node := svc.Spec.Ports[0].NodePort
	eng, err := launch.NewEngine(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	ids := object.ObjMetadataSet{{Namespace: p.Namespace, Name: "web", GroupKind: schema.GroupKind{Kind: "Service"}}}
	eps := eng.Endpoints(ctx, p, ids)
	if len(eps) != 1 || eps[0].URL != fmt.Sprintf("http://localhost:%d", node) || !strings.Contains(eps[0].Note, "no load balancer took port 8080") {
		t.Fatalf("endpoints without a load balancer: %+v, want http://localhost:%d", eps, node)
	}

	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "127.0.0.1"}}
	if _, err := c.Client.CoreV1().Services(p.Namespace).UpdateStatus(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	if eps := eng.Endpoints(ctx, p, ids); len(eps) != 1 || eps[0].URL != "http://localhost:8080" {
		t.Fatalf("endpoints with a load balancer: %+v, want http://localhost:8080", eps)
	}
}

// Endpoints are printed only where they lead to the launch (issue 31): a LoadBalancer nothing
// took and that has no node port is reached through port-forward, not "localhost:80"; an
// Ingress rule for a public host is this machine's address with that Host, not the public name
// (which leads to whatever the name serves on the internet); names under .localhost are their
// own URL. On a cluster the user named, a load balancer's own address is the one.
func TestEndpointsLeadWhereTheySay(t *testing.T) {
	t.Parallel()
	c := testcluster.Need(t, cluster)
	ctx := context.Background()
	dir := repo(t, "endpoints", map[string]string{
		"manifests/svc.yaml": "apiVersion: v1\nkind: Service\nmetadata: {name: lb}\nspec: {type: LoadBalancer, allocateLoadBalancerNodePorts: false, selector: {app: web}, ports: [{port: 80}]}\n",
		"manifests/ing.yaml": "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: web}\nspec:\n  rules:\n  - host: shop.example.com\n  - host: shop.localhost\n  - http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: lb, port: {number: 80}}}}]}\n",
	})
	p, _, err := run(t, launch.Selection{Dir: dir}, launch.Options{NoWait: true})
	deleteNamespaceAtEnd(t, p.Namespace)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := launch.NewEngine(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	lb := object.ObjMetadata{Namespace: p.Namespace, Name: "lb", GroupKind: schema.GroupKind{Kind: "Service"}}
	ing := object.ObjMetadata{Namespace: p.Namespace, Name: "web", GroupKind: schema.GroupKind{Group: "networking.k8s.io", Kind: "Ingress"}}
	eps := eng.Endpoints(ctx, p, object.ObjMetadataSet{lb, ing})
	want := []launch.Endpoint{
		{URL: "lb." + p.Namespace + ".svc:80", Note: "no load balancer took port 80 (and it has no node port); from here: " + p.Command("forward")},
		{URL: "http://localhost", Note: "for host shop.example.com, which leads elsewhere by name: curl -H 'Host: shop.example.com' http://localhost/"},
		{URL: "http://shop.localhost"},
		{URL: "http://localhost"},
	}
	if len(eps) != len(want) {
		t.Fatalf("endpoints %+v", eps)
	}
	for i, w := range want {
		if eps[i].URL != w.URL || eps[i].Note != w.Note {
			t.Errorf("endpoint %d: %+v, want %+v", i, eps[i], w)
		}
	}

	// The user's cluster: its load balancer's address, and the Ingress hosts as they are.
	named, err := launch.Resolve(launch.Selection{Dir: dir, Cluster: []string{"--context", "prod"}})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := c.Client.CoreV1().Services(p.Namespace).Get(ctx, "lb", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "192.0.2.7"}}
	if _, err := c.Client.CoreV1().Services(p.Namespace).UpdateStatus(ctx, svc, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	eps = eng.Endpoints(ctx, named, object.ObjMetadataSet{lb, ing})
	if len(eps) != 4 || eps[0].URL != "http://192.0.2.7:80" || eps[1].URL != "http://shop.example.com" || eps[1].Note != "" {
		t.Fatalf("endpoints on a named cluster %+v", eps)
	}
}
