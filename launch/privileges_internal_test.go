package launch

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

func TestPrivilegesOfEachKind(t *testing.T) {
	cases := []struct {
		name, yaml string
		want       []string // "risk: part of what", in order; none for an object that asks for nothing
	}{
		{"a plain deployment", `{apiVersion: apps/v1, kind: Deployment, metadata: {name: web, namespace: app}, spec: {template: {spec: {containers: [{name: web, image: nginx, ports: [{containerPort: 80}]}]}}}}`, nil},
		{"a role binding inside the project", `{apiVersion: rbac.authorization.k8s.io/v1, kind: RoleBinding, metadata: {name: rb, namespace: app}, roleRef: {kind: ClusterRole, name: admin}, subjects: [{kind: ServiceAccount, name: default, namespace: app}]}`, nil},
		{"a CRD", `{apiVersion: apiextensions.k8s.io/v1, kind: CustomResourceDefinition, metadata: {name: things.example.com}}`, nil},
		{"a CRD with a conversion webhook", `{apiVersion: apiextensions.k8s.io/v1, kind: CustomResourceDefinition, metadata: {name: things.example.com}, spec: {conversion: {strategy: Webhook}}}`,
			[]string{"cluster-wide: its conversion webhook"}},
		{"a role that may relabel its namespace", `{apiVersion: rbac.authorization.k8s.io/v1, kind: Role, metadata: {name: r, namespace: app}, rules: [{apiGroups: [""], resources: [namespaces], verbs: [get, patch]}]}`,
			[]string{"host-access: may change namespaces (their Pod Security level)"}},
		{"a role that may escalate", `{apiVersion: rbac.authorization.k8s.io/v1, kind: Role, metadata: {name: r, namespace: app}, rules: [{apiGroups: ["*"], resources: ["*"], verbs: ["*"]}]}`,
			[]string{"host-access: may change namespaces"}},
		{"a role binding to cluster-admin in its own namespace", `{apiVersion: rbac.authorization.k8s.io/v1, kind: RoleBinding, metadata: {name: rb, namespace: app}, roleRef: {kind: ClusterRole, name: cluster-admin}, subjects: [{kind: ServiceAccount, name: default, namespace: app}]}`,
			[]string{"host-access: may change namespaces"}},
		{"a service on external IPs", `{apiVersion: v1, kind: Service, metadata: {name: s, namespace: app}, spec: {externalIPs: [1.1.1.1], ports: [{port: 53}]}}`,
			[]string{"host-access: takes over traffic to 1.1.1.1"}},
		{"a pod with a system priority", `{apiVersion: v1, kind: Pod, metadata: {name: p, namespace: app}, spec: {priorityClassName: system-node-critical, containers: [{name: c, image: x}]}}`,
			[]string{"cluster-wide: takes the priority system-node-critical"}},
		{"a namespace it creates", `{apiVersion: v1, kind: Namespace, metadata: {name: app-extra}}`, nil},
		{"a privileged cronjob", `{apiVersion: batch/v1, kind: CronJob, metadata: {name: c, namespace: app}, spec: {jobTemplate: {spec: {template: {spec: {containers: [{name: c, image: x, securityContext: {privileged: true, capabilities: {add: [SYS_ADMIN]}}}]}}}}}}`,
			[]string{"host-access: runs beyond Pod Security's baseline (root on this machine, in effect): non-default capabilities", "privileged (container \"c\" must not set securityContext.privileged=true)"}},
		{"a pod on a host port", `{apiVersion: v1, kind: Pod, metadata: {name: p, namespace: app}, spec: {containers: [{name: c, image: x, ports: [{containerPort: 80, hostPort: 80}]}]}}`, []string{"host-access: runs beyond Pod Security's baseline (root on this machine, in effect): hostPort (container \"c\" uses hostPort 80)"}},
		{"a host-path volume", `{apiVersion: v1, kind: PersistentVolume, metadata: {name: pv}, spec: {hostPath: {path: /etc}}}`, []string{"host-access: a volume on the host's path /etc"}},
		{"an aggregated cluster role", `{apiVersion: rbac.authorization.k8s.io/v1, kind: ClusterRole, metadata: {name: cr, labels: {rbac.authorization.k8s.io/aggregate-to-admin: "true"}}}`, []string{"cluster-wide: adds its rules to the cluster roles admin"}},
		{"a webhook", `{apiVersion: admissionregistration.k8s.io/v1, kind: MutatingWebhookConfiguration, metadata: {name: w}}`, []string{"cluster-wide: an admission webhook or policy (MutatingWebhookConfiguration)"}},
		{"a binding to every authenticated user", `{apiVersion: rbac.authorization.k8s.io/v1, kind: RoleBinding, metadata: {name: rb, namespace: app}, roleRef: {kind: ClusterRole, name: edit}, subjects: [{kind: Group, name: "system:authenticated"}]}`,
			[]string{"cluster-wide: gives its role to the group system:authenticated"}},
		{"k3s's HelmChart in the project's own namespace", `{apiVersion: helm.cattle.io/v1, kind: HelmChart, metadata: {name: h, namespace: app}}`, []string{"cluster-wide: k3s installs what a HelmChart names with cluster-admin"}},
		{"an object in kube-system", `{apiVersion: v1, kind: ConfigMap, metadata: {name: coredns-custom, namespace: kube-system}}`, []string{"other-namespaces: namespace kube-system is not one this project created"}},
		{"a namespace it did not create", `{apiVersion: v1, kind: Namespace, metadata: {name: default}}`, []string{"other-namespaces: exists, and this project did not create it"}},
	}
	owned := func(ns string) bool { return ns == "app" || ns == "app-extra" }
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u := &unstructured.Unstructured{}
			if err := yaml.Unmarshal([]byte(c.yaml), &u.Object); err != nil {
				t.Fatal(err)
			}
			got := privileges([]Object{{Unstructured: u, Origin: "f.yaml:1"}}, owned)
			var all []string
			for _, p := range got {
				all = append(all, string(p.Risk)+": "+p.What)
			}
			if len(c.want) == 0 && len(got) > 0 {
				t.Fatalf("privileges %q, want none", all)
			}
			joined := strings.Join(all, "\n")
			for _, w := range c.want {
				if !strings.Contains(joined, w) {
					t.Errorf("privileges %q lack %q", all, w)
				}
			}
		})
	}
}

// kustomize's objects hold Go ints: reading one, even where a string belongs, never panics
// (unstructured's deep copy does: "cannot deep copy int").
func TestPrivilegesReadGoInts(t *testing.T) {
	role := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
		"metadata": map[string]any{"name": "r", "namespace": "app"},
		"rules":    []any{map[string]any{"apiGroups": []any{""}, "resources": []any{"namespaces"}, "verbs": []any{1, "patch"}}},
	}}
	binding := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
		"metadata": map[string]any{"name": "rb", "namespace": "app"},
		"roleRef":  map[string]any{"kind": "ClusterRole", "name": "view"},
		"subjects": []any{map[string]any{"kind": "Group", "name": "system:authenticated", "weight": 3}},
	}}
	deploy := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "apps/v1", "kind": "Deployment", "metadata": map[string]any{"name": "d", "namespace": "app"},
		"spec": map[string]any{"replicas": 2, "template": map[string]any{"spec": map[string]any{"containers": []any{
			map[string]any{"name": "c", "image": "x", "ports": []any{map[string]any{"containerPort": 80, "hostPort": 8080}}}}}}},
	}}
	got := privileges([]Object{{Unstructured: role}, {Unstructured: binding}, {Unstructured: deploy}}, func(ns string) bool { return ns == "app" })
	var all []string
	for _, p := range got {
		all = append(all, string(p.Risk)+": "+p.What)
	}
	joined := strings.Join(all, "\n")
	for _, want := range []string{"system:authenticated", "hostPort"} {
		if !strings.Contains(joined, want) {
			t.Errorf("privileges %q lack %q", all, want)
		}
	}
}
