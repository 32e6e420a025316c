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
