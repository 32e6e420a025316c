package launch_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/NationTech/harmony-agent/internal/hint"
	"github.com/NationTech/harmony-agent/internal/testcluster"
	"github.com/NationTech/harmony-agent/launch"
)

// The attack from the review: a repository holding a privileged DaemonSet on the host's
// network and PIDs with the host's / mounted, a ClusterRoleBinding to cluster-admin and a
// ConfigMap in kube-system. Launching it gave it root on the host without a word. Now nothing is
// applied until the user allows each risk; a dry run lists them.
const rootkit = `apiVersion: apps/v1
kind: DaemonSet
metadata: {name: node-agent}
spec:
  selector: {matchLabels: {app: node-agent}}
  template:
    metadata: {labels: {app: node-agent}}
    spec:
      hostPID: true
      hostNetwork: true
      serviceAccountName: agent
      containers:
      - name: agent
        image: busybox
        securityContext: {privileged: true}
        volumeMounts: [{name: root, mountPath: /host}]
      volumes:
      - name: root
        hostPath: {path: /}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: agent}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: rootkit-admin}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects:
- {kind: ServiceAccount, name: agent, namespace: rootkit}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: rootkit-planted, namespace: kube-system}
data: {coredns: replaced}
`

func TestARepoGetsNoPrivilegeTheUserDidNotAllow(t *testing.T) {
	t.Parallel()
	c := testcluster.Need(t, cluster)
	ctx := context.Background()
	dir := repo(t, "rootkit", map[string]string{"deploy/all.yaml": rootkit})
	sel := launch.Selection{Dir: dir}
	launchIt := ready(t, sel)

	applied := func() []string {
		var found []string
		if _, err := c.Client.AppsV1().DaemonSets("rootkit").Get(ctx, "node-agent", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			found = append(found, "daemonset/node-agent")
		}
		if _, err := c.Client.RbacV1().ClusterRoleBindings().Get(ctx, "rootkit-admin", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			found = append(found, "clusterrolebinding/rootkit-admin")
		}
		if _, err := c.Client.CoreV1().ConfigMaps("kube-system").Get(ctx, "rootkit-planted", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			found = append(found, "configmap/rootkit-planted in kube-system")
		}
		if namespaceAlive(t, "rootkit") != nil {
			found = append(found, "namespace/rootkit")
		}
		return found
	}

	// No terminal, no --allow: nothing is applied, and the error says what and how.
	p, rep, err := launchIt(launch.Options{NoWait: true})
	deleteNamespaceAtEnd(t, p.Namespace)
	t.Cleanup(func() {
		_ = c.Client.RbacV1().ClusterRoleBindings().Delete(context.Background(), "rootkit-admin", metav1.DeleteOptions{})
		_ = c.Client.CoreV1().ConfigMaps("kube-system").Delete(context.Background(), "rootkit-planted", metav1.DeleteOptions{})
	})
	if !errors.Is(err, launch.ErrPrivileges) {
		t.Fatalf("launch: %v, want ErrPrivileges", err)
	}
	for _, want := range []string{"daemonset/node-agent", "privileged", "host namespaces", "hostPath volumes", "clusterrolebinding/rootkit-admin",
		"cluster-admin", "serviceaccount rootkit/agent", "configmap/rootkit-planted (namespace kube-system), deploy/all.yaml", "namespace kube-system is not one this project created"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not name %q:\n%v", want, err)
		}
	}
	if h := strings.Join(hint.Of(err), "\n"); !strings.Contains(h, "--allow host-access,cluster-wide,other-namespaces") {
		t.Errorf("the hint does not name the flag: %s", h)
	}
	if rep == nil || len(rep.Privileges) != 4 {
		t.Errorf("report privileges %+v, want the DaemonSet, the binding (twice: cluster-wide, and cluster-admin may relabel namespaces) and the ConfigMap", rep)
	}
	if got := applied(); len(got) > 0 {
		t.Fatalf("a refused launch applied %v", got)
	}

	// A terminal's no, or a --allow that covers only some of it: still nothing.
	var shown []launch.Privilege
	_, _, err = launchIt(launch.Options{NoWait: true, Allow: []launch.Risk{launch.RiskHost}, Confirm: func(asked []launch.Privilege) (bool, error) {
		shown = asked
		return false, nil
	}})
	if !errors.Is(err, launch.ErrPrivileges) || len(shown) != 2 {
		t.Fatalf("launch answered no: %v; asked about %v, want the two not allowed", err, shown)
	}
	if got := applied(); len(got) > 0 {
		t.Fatalf("a launch the user said no to applied %v", got)
	}

	// A dry run lists them and changes nothing.
	_, rep, err = launchIt(launch.Options{DryRun: true})
	if err != nil || len(rep.Privileges) != 4 {
		t.Fatalf("dry run: %v, privileges %+v", err, rep)
	}
	if got := applied(); len(got) > 0 {
		t.Fatalf("a dry run applied %v", got)
	}

	// The user's yes applies it, and the namespace lets the privileged pods in.
	_, _, err = launchIt(launch.Options{NoWait: true, Confirm: func([]launch.Privilege) (bool, error) { return true, nil }})
	if err != nil {
		t.Fatalf("launch with the user's yes: %v", err)
	}
	if got := applied(); len(got) != 4 {
		t.Fatalf("applied %v, want all of it", got)
	}
	ns, err := c.Client.CoreV1().Namespaces().Get(ctx, "rootkit", metav1.GetOptions{})
	if err != nil || ns.Labels["pod-security.kubernetes.io/enforce"] != "privileged" {
		t.Fatalf("namespace rootkit: %v, labels %v, want Pod Security enforce=privileged (host access allowed)", err, ns.Labels)
	}
	if out, err := down(t, p); err != nil {
		t.Fatalf("down: %v\n%s", err, out)
	}
	if got := applied(); len(got) > 0 {
		t.Fatalf("down left %v", got)
	}
}

// The namespaces a project creates enforce Pod Security's baseline: the API server itself
// refuses a privileged pod there, whatever creates it.
func TestProjectNamespaceEnforcesBaseline(t *testing.T) {
	t.Parallel()
	c := testcluster.Need(t, cluster)
	ctx := context.Background()
	dir := repo(t, "baseline-app", map[string]string{"k8s/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: b}\n"})
	p, _, err := run(t, launch.Selection{Dir: dir}, launch.Options{NoWait: true})
	deleteNamespaceAtEnd(t, p.Namespace)
	if err != nil {
		t.Fatal(err)
	}
	ns, err := c.Client.CoreV1().Namespaces().Get(ctx, p.Namespace, metav1.GetOptions{})
	if err != nil || ns.Labels["pod-security.kubernetes.io/enforce"] != "baseline" {
		t.Fatalf("namespace %s: %v, labels %v, want enforce=baseline", p.Namespace, err, ns.Labels)
	}
	yes := true
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "escalate"}, Spec: corev1.PodSpec{
		HostPID:    true,
		Containers: []corev1.Container{{Name: "x", Image: "busybox", SecurityContext: &corev1.SecurityContext{Privileged: &yes}}},
	}}
	_, err = c.Client.CoreV1().Pods(p.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "baseline") {
		t.Fatalf("a privileged pod in the project's namespace: %v, want forbidden by Pod Security baseline", err)
	}
}

// harmony.yaml (the repository's) cannot send the project into a namespace that exists and is
// not the project's: the user names one with -n, or allows it.
func TestRepoCannotChooseAnExistingNamespace(t *testing.T) {
	t.Parallel()
	c := testcluster.Need(t, cluster)
	ctx := context.Background()
	dir := repo(t, "squatter", map[string]string{
		"harmony.yaml": "manifests: [k8s]\nnamespace: kube-system\n",
		"k8s/cm.yaml":  "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: squatter-settings}\ndata: {a: b}\n",
	})
	t.Cleanup(func() {
		_ = c.Client.CoreV1().ConfigMaps("kube-system").Delete(context.Background(), "squatter-settings", metav1.DeleteOptions{})
	})
	_, _, err := run(t, launch.Selection{Dir: dir}, launch.Options{NoWait: true})
	if !errors.Is(err, launch.ErrPrivileges) || !strings.Contains(err.Error(), "namespace/kube-system") || !strings.Contains(err.Error(), "-n") {
		t.Fatalf("launch into kube-system from harmony.yaml: %v, want ErrPrivileges naming it and -n", err)
	}
	if _, err := c.Client.CoreV1().ConfigMaps("kube-system").Get(ctx, "squatter-settings", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the refused launch applied its ConfigMap into kube-system: %v", err)
	}
	ks, err := c.Client.CoreV1().Namespaces().Get(ctx, "kube-system", metav1.GetOptions{})
	if err != nil || ks.Labels["pod-security.kubernetes.io/enforce"] != "" {
		t.Fatalf("kube-system: %v, labels %v: harmony must not label a namespace it did not create", err, ks.Labels)
	}
}

// What k3s's own controllers applied (its coredns, traefik, a HelmChart's release: wrangler's
// objectset marks) is never taken over, --adopt or not.
func TestK3sObjectsAreNeverAdopted(t *testing.T) {
	t.Parallel()
	c := testcluster.Need(t, cluster)
	ctx := context.Background()
	userNamespace(t, "k3s-like")
	cm := configMap("coredns-custom")
	cm.Annotations = map[string]string{
		"objectset.rio.cattle.io/owner-gvk":       "k3s.cattle.io/v1, Kind=Addon",
		"objectset.rio.cattle.io/owner-name":      "coredns",
		"objectset.rio.cattle.io/owner-namespace": "kube-system",
	}
	if _, err := c.Client.CoreV1().ConfigMaps("k3s-like").Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dir := repo(t, "taker", map[string]string{"k8s/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: coredns-custom}\ndata: {Corefile: hijacked}\n"})
	_, rep, err := run(t, launch.Selection{Dir: dir, Namespace: "k3s-like"}, launch.Options{Adopt: true, NoWait: true})
	if !errors.Is(err, launch.ErrNotOwned) || rep == nil || len(rep.Conflicts) != 1 || rep.Conflicts[0].Owner != launch.OwnerController ||
		!strings.Contains(rep.Conflicts[0].Detail, "k3s's") {
		t.Fatalf("launch --adopt over k3s's object: %v, conflicts %+v, want it refused as k3s's", err, rep)
	}
	live, err := c.Client.CoreV1().ConfigMaps("k3s-like").Get(ctx, "coredns-custom", metav1.GetOptions{})
	if err != nil || live.Data["owner"] != "the user" {
		t.Fatalf("k3s's ConfigMap was changed: %v %v", err, live.Data)
	}
}

// Another project's inventory and the namespace it created are that project's: --adopt (even
// with every risk allowed) never takes them, so a second project cannot delete the first's.
func TestAnotherProjectsInventoryAndNamespaceAreNeverAdopted(t *testing.T) {
	t.Parallel()
	c := testcluster.Need(t, cluster)
	ctx := context.Background()
	first := repo(t, "first-owner", map[string]string{"k8s/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {a: b}\n"})
	p1, _, err := run(t, launch.Selection{Dir: first}, launch.Options{NoWait: true})
	deleteNamespaceAtEnd(t, p1.Namespace)
	if err != nil {
		t.Fatal(err)
	}
	inventory := p1.InventoryName()
	second := repo(t, "second-taker", map[string]string{"k8s/all.yaml": "apiVersion: v1\nkind: Namespace\nmetadata: {name: first-owner}\n---\n" +
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: " + inventory + ", namespace: first-owner}\ndata: {}\n"})
	p2, rep, err := run(t, launch.Selection{Dir: second}, launch.Options{NoWait: true, Adopt: true, Allow: launch.Risks})
	deleteNamespaceAtEnd(t, p2.Namespace)
	if !errors.Is(err, launch.ErrNotOwned) || rep == nil || len(rep.Conflicts) != 2 {
		t.Fatalf("launch --adopt of another project's namespace and inventory: %v, conflicts %+v, want both refused", err, rep)
	}
	for _, cf := range rep.Conflicts {
		if cf.Owner != launch.OwnerHarmony || !strings.Contains(cf.Detail, "first-owner") {
			t.Errorf("conflict %+v: want another harmony project's, naming it", cf)
		}
	}
	cm, err := c.Client.CoreV1().ConfigMaps("first-owner").Get(ctx, inventory, metav1.GetOptions{})
	if err != nil || len(cm.Data) == 0 {
		t.Fatalf("the first project's inventory was changed: %v %v", err, cm)
	}
}
