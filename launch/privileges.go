package launch

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	psaapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"sigs.k8s.io/cli-utils/pkg/object"

	"github.com/NationTech/harmony-agent/internal/hint"
)

// Risk names what a repository's objects may ask for beyond their own namespaces. A launch
// applies objects that ask for one only when the user allows it (--allow, or yes on a terminal).
type Risk string

// The risks. CRDs and the namespaces a project creates are its own and ask for none.
const (
	// RiskHost: pods that need more than Pod Security's baseline (privileged containers, the
	// host's network, PIDs or IPC, host paths, host ports, added capabilities, …) and
	// persistent volumes on a host path: root on the machine, in effect.
	RiskHost Risk = "host-access"
	// RiskCluster: cluster-scoped objects other than namespaces and CRDs: cluster roles and
	// their bindings, admission webhooks and policies, API services, storage classes, …
	RiskCluster Risk = "cluster-wide"
	// RiskNamespaces: objects in namespaces this project did not create (kube-system, default,
	// another project's).
	RiskNamespaces Risk = "other-namespaces"
)

// Risks are every risk, in the order they are listed.
var Risks = []Risk{RiskHost, RiskCluster, RiskNamespaces}

// ParseRisks reads --allow values (comma-separated or repeated).
func ParseRisks(values []string) ([]Risk, error) {
	var out []Risk
	for _, v := range values {
		for _, s := range strings.Split(v, ",") {
			r := Risk(strings.TrimSpace(s))
			if !slices.Contains(Risks, r) {
				names := make([]string, len(Risks))
				for i, k := range Risks {
					names[i] = string(k)
				}
				return nil, fmt.Errorf("--allow %q: the risks are %s", s, strings.Join(names, ", "))
			}
			if !slices.Contains(out, r) {
				out = append(out, r)
			}
		}
	}
	return out, nil
}

// Privilege is one thing a repository's object asks for beyond its own namespaces.
type Privilege struct {
	Risk   Risk   `json:"risk"`
	Object string `json:"object"`
	Origin string `json:"origin,omitempty"`
	What   string `json:"what"`
}

func (p Privilege) String() string {
	s := fmt.Sprintf("%-16s %s", p.Risk, p.Object)
	if p.Origin != "" {
		s += ", " + p.Origin
	}
	return s + ": " + p.What
}

// Key identifies a privilege across launches (its risk, object and what it asks, not where in
// the repository it is written).
func (p Privilege) Key() string { return string(p.Risk) + " " + p.Object + ": " + p.What }

// Pod Security labels harmony sets on the namespaces a project creates.
const (
	podSecurityEnforce        = psaapi.EnforceLevelLabel
	podSecurityEnforceVersion = psaapi.EnforceVersionLabel
	podSecurityWarn           = psaapi.WarnLevelLabel
)

// podSecurityLevel is the Pod Security level a project's namespaces enforce: baseline, or
// privileged when the user allowed host access the objects ask for.
func podSecurityLevel(hostAllowed bool) string {
	if hostAllowed {
		return string(psaapi.LevelPrivileged)
	}
	return string(psaapi.LevelBaseline)
}

// setPodSecurity sets the enforce (and warn) level on a namespace object the project creates.
// A stricter level the repository set (restricted) is kept.
func setPodSecurity(ns *unstructured.Unstructured, level string) {
	labels := ns.GetLabels()
	if labels == nil {
		labels = map[string]string{}
	}
	if labels[podSecurityEnforce] == string(psaapi.LevelRestricted) {
		return
	}
	labels[podSecurityEnforce] = level
	labels[podSecurityEnforceVersion] = "latest"
	if labels[podSecurityWarn] != string(psaapi.LevelRestricted) {
		labels[podSecurityWarn] = level
	}
	ns.SetLabels(labels)
}

// baselineChecks evaluates pod specs against Pod Security's baseline level: the same checks the
// API server's admission runs.
func baselineChecks() func(meta *metav1.ObjectMeta, spec *corev1.PodSpec) []policy.CheckResult {
	eval, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		panic(err) // the library's own checks
	}
	lv := psaapi.LevelVersion{Level: psaapi.LevelBaseline, Version: psaapi.LatestVersion()}
	return func(meta *metav1.ObjectMeta, spec *corev1.PodSpec) []policy.CheckResult {
		return eval.EvaluatePod(lv, meta, spec)
	}
}

// podTemplate is the pod an object runs (a Pod's own spec, a workload's template), if any.
func podTemplate(u *unstructured.Unstructured) (*metav1.ObjectMeta, *corev1.PodSpec, error) {
	var path []string
	switch u.GroupVersionKind().GroupKind().String() {
	case "Pod":
		path = nil
	case "Deployment.apps", "StatefulSet.apps", "DaemonSet.apps", "ReplicaSet.apps", "ReplicationController", "Job.batch":
		path = []string{"spec", "template"}
	case "CronJob.batch":
		path = []string{"spec", "jobTemplate", "spec", "template"}
	default:
		return nil, nil, nil
	}
	m := u.Object
	if path != nil {
		// No copy: kustomize's objects hold Go ints, which unstructured's deep copy refuses.
		v, found, err := unstructured.NestedFieldNoCopy(u.Object, path...)
		if err != nil || !found {
			return nil, nil, err
		}
		t, ok := v.(map[string]any)
		if !ok {
			return nil, nil, fmt.Errorf("%s is not an object", strings.Join(path, "."))
		}
		m = t
	}
	var pod struct {
		Metadata metav1.ObjectMeta `json:"metadata"`
		Spec     corev1.PodSpec    `json:"spec"`
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(m, &pod); err != nil {
		return nil, nil, err
	}
	return &pod.Metadata, &pod.Spec, nil
}

// privileges lists what objs ask for beyond the project's own namespaces (owned says which
// those are), in the order of objs.
func privileges(objs []Object, owned func(ns string) bool) []Privilege {
	return privilegesWith(objs, owned, nil)
}

// privilegesWith is privileges; liveRole gives the rules of a cluster role the objects do not
// hold (nil: only cluster-admin is known).
func privilegesWith(objs []Object, owned func(ns string) bool, liveRole func(name string) []any) []Privilege {
	evaluate := baselineChecks()
	var out []Privilege
	listedRoles := map[string]bool{} // cluster roles the objects hold: each says itself what it allows
	for _, obj := range objs {
		if k := obj.GroupVersionKind().GroupKind(); k.Group == "rbac.authorization.k8s.io" && k.Kind == "ClusterRole" {
			listedRoles[obj.GetName()] = true
		}
	}
	for _, obj := range objs {
		u := obj.Unstructured
		add := func(r Risk, what string) {
			out = append(out, Privilege{Risk: r, Object: ref(object.UnstructuredToObjMetadata(u)), Origin: obj.Origin, What: what})
		}
		gk := u.GroupVersionKind().GroupKind()
		ns := u.GetNamespace()
		if gk.Group == "helm.cattle.io" || gk.Group == "k3s.cattle.io" {
			// k3s's Helm and deploy controllers install these as cluster-admin, in any namespace.
			add(RiskCluster, "k3s installs what a "+gk.Kind+" names with cluster-admin")
		}
		switch {
		case object.IsCRD(u):
			if strategy, _, _ := unstructured.NestedString(u.Object, "spec", "conversion", "strategy"); strategy == "Webhook" {
				add(RiskCluster, "its conversion webhook is sent every object of this kind, whoever made it")
			}
		case object.IsNamespace(u):
			if !owned(u.GetName()) {
				add(RiskNamespaces, "exists, and this project did not create it")
			}
		case ns == "":
			r, what := clusterScoped(u)
			add(r, what)
		case !owned(ns):
			add(RiskNamespaces, "namespace "+ns+" is not one this project created")
		}
		if gk.Group == "rbac.authorization.k8s.io" && gk.Kind == "RoleBinding" {
			if s := roleBindingScope(u); s != "" && ns != "" && owned(ns) {
				add(RiskCluster, s)
			}
		}
		if gk.Group == "rbac.authorization.k8s.io" {
			// A role that can change namespaces can lift its own namespace's Pod Security level;
			// one that can escalate or bind can give itself anything.
			var rules []any
			switch gk.Kind {
			case "Role", "ClusterRole":
				rules = nestedSlice(u.Object, "rules")
			case "RoleBinding", "ClusterRoleBinding":
				kind, _, _ := unstructured.NestedString(u.Object, "roleRef", "kind")
				name, _, _ := unstructured.NestedString(u.Object, "roleRef", "name")
				if kind == "ClusterRole" && !listedRoles[name] {
					if name == "cluster-admin" {
						rules = []any{map[string]any{"apiGroups": []any{"*"}, "resources": []any{"*"}, "verbs": []any{"*"}}}
					} else if liveRole != nil {
						rules = liveRole(name)
					}
				}
			}
			if what := dangerousRules(rules); what != "" {
				add(RiskHost, what+": its holders can then run privileged pods, root on this machine in effect")
			}
		}
		if gk.Group == "" && gk.Kind == "Service" {
			if ips, _, _ := unstructured.NestedStringSlice(u.Object, "spec", "externalIPs"); len(ips) > 0 {
				add(RiskHost, "takes over traffic to "+strings.Join(ips, ", ")+" from this machine and every pod (externalIPs)")
			}
		}
		meta, spec, err := podTemplate(u)
		if err != nil {
			add(RiskHost, "its pod template cannot be read, so what it asks for cannot be checked: "+err.Error())
			continue
		}
		if spec == nil {
			continue
		}
		var why []string
		for _, res := range evaluate(meta, spec) {
			if res.Allowed {
				continue
			}
			w := res.ForbiddenReason
			if res.ForbiddenDetail != "" {
				w += " (" + res.ForbiddenDetail + ")"
			}
			why = append(why, w)
		}
		if len(why) > 0 {
			add(RiskHost, "runs beyond Pod Security's baseline (root on this machine, in effect): "+strings.Join(why, "; "))
		}
		if pc := spec.PriorityClassName; strings.HasPrefix(pc, "system-") {
			add(RiskCluster, "takes the priority "+pc+", which can push other projects' pods (and the cluster's own) off the node")
		}
	}
	// Listed by risk, each risk's in the objects' order.
	sort.SliceStable(out, func(i, j int) bool { return slices.Index(Risks, out[i].Risk) < slices.Index(Risks, out[j].Risk) })
	return out
}

// dangerousRules says what RBAC rules allow that reaches beyond their namespace ("" for nothing):
// changing namespaces (their Pod Security labels), or escalating and binding roles.
func dangerousRules(rules []any) string {
	has := func(list []string, want ...string) bool {
		for _, v := range list {
			if v == "*" || slices.Contains(want, v) {
				return true
			}
		}
		return false
	}
	for _, r := range rules {
		m, _ := r.(map[string]any)
		if m == nil {
			continue
		}
		groups, _, _ := unstructured.NestedStringSlice(m, "apiGroups")
		resources, _, _ := unstructured.NestedStringSlice(m, "resources")
		verbs, _, _ := unstructured.NestedStringSlice(m, "verbs")
		if has(groups, "") && has(resources, "namespaces") && has(verbs, "update", "patch") {
			return "may change namespaces (their Pod Security level)"
		}
		if has(groups, "rbac.authorization.k8s.io") && has(resources, "roles", "clusterroles", "rolebindings", "clusterrolebindings") && has(verbs, "escalate", "bind") {
			return "may escalate or bind roles (give itself any permission)"
		}
	}
	return ""
}

// clusterScoped says what a cluster-scoped object (not a namespace or CRD) asks for.
func clusterScoped(u *unstructured.Unstructured) (Risk, string) {
	gk := u.GroupVersionKind().GroupKind()
	switch {
	case gk.Group == "rbac.authorization.k8s.io" && gk.Kind == "ClusterRoleBinding":
		role, _, _ := unstructured.NestedString(u.Object, "roleRef", "name")
		what := "gives " + subjects(u) + " the cluster role " + role + " in every namespace"
		if role == "cluster-admin" {
			what += " (cluster-admin: every permission on the whole cluster)"
		}
		return RiskCluster, what
	case gk.Group == "rbac.authorization.k8s.io" && gk.Kind == "ClusterRole":
		var into []string
		for k, v := range u.GetLabels() {
			if strings.HasPrefix(k, "rbac.authorization.k8s.io/aggregate-to-") && v == "true" {
				into = append(into, strings.TrimPrefix(k, "rbac.authorization.k8s.io/aggregate-to-"))
			}
		}
		if len(into) > 0 {
			sort.Strings(into)
			return RiskCluster, "adds its rules to the cluster roles " + strings.Join(into, ", ") + " that other users and projects hold"
		}
		return RiskCluster, "a cluster role (rules for every namespace, once bound)"
	case gk.Group == "admissionregistration.k8s.io":
		return RiskCluster, "an admission webhook or policy (" + gk.Kind + "): sees, and may change or refuse, what every project sends to the cluster"
	case gk.Group == "apiregistration.k8s.io":
		return RiskCluster, "serves part of the cluster's API: requests for it go to this project"
	case gk.Group == "" && gk.Kind == "PersistentVolume":
		if p, found, _ := unstructured.NestedString(u.Object, "spec", "hostPath", "path"); found {
			return RiskHost, "a volume on the host's path " + p
		}
		if p, found, _ := unstructured.NestedString(u.Object, "spec", "local", "path"); found {
			return RiskHost, "a volume on the host's path " + p
		}
		return RiskCluster, "a cluster-wide persistent volume"
	}
	return RiskCluster, "a cluster-wide " + gk.Kind
}

// roleBindingScope says what a RoleBinding in the project's namespace grants beyond it: nothing
// (""), unless it binds the role to every user or service account of the cluster.
func roleBindingScope(u *unstructured.Unstructured) string {
	list := nestedSlice(u.Object, "subjects")
	for _, s := range list {
		m, _ := s.(map[string]any)
		if m["kind"] == "Group" {
			switch name, _ := m["name"].(string); name {
			case "system:authenticated", "system:unauthenticated", "system:serviceaccounts":
				return "gives its role to the group " + name + " (everyone of that kind on the cluster)"
			}
		}
	}
	return ""
}

// subjects names a binding's subjects.
func subjects(u *unstructured.Unstructured) string {
	list := nestedSlice(u.Object, "subjects")
	var out []string
	for _, s := range list {
		m, _ := s.(map[string]any)
		kind, _ := m["kind"].(string)
		name, _ := m["name"].(string)
		if ns, _ := m["namespace"].(string); ns != "" {
			name = ns + "/" + name
		}
		out = append(out, strings.ToLower(kind)+" "+name)
	}
	if len(out) == 0 {
		return "no one"
	}
	return strings.Join(out, ", ")
}

// projectNamespace reads the project namespace as it is now (nil when it does not exist):
// read once per launch, for the privileges and for ensureNamespace.
func (e *Engine) projectNamespace(ctx context.Context, p *Project) (*corev1.Namespace, error) {
	live, err := e.client.CoreV1().Namespaces().Get(ctx, p.Namespace, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("namespace %s: %w", p.Namespace, err)
	}
	return live, nil
}

// projectNamespaceOwned reports whether the project namespace (live, nil when it does not
// exist) is the project's own: the user named it (-n), or it does not exist yet, or this
// project created it, or the user took it over before (--adopt marks it the project's).
// Otherwise (a namespace from harmony.yaml or the folder's name that exists already:
// kube-system, default, another project's) the repository asks for it.
func projectNamespaceOwned(p *Project, live *corev1.Namespace) bool {
	return p.nsFlag != "" || live == nil ||
		live.Annotations[CreatedNamespaceAnnotation] == p.InventoryID || live.Annotations[OwningInventoryAnnotation] == p.InventoryID
}

// checkPrivileges lists what a launch's objects (hooks included) ask for beyond the project's
// own namespaces. It returns those the user did not allow.
func (e *Engine) checkPrivileges(ctx context.Context, p *Project, liveNS *corev1.Namespace, objs []Object, hooks []Hook, claims map[object.ObjMetadata]claim, allowed []Risk, accepted []string) (all, asked []Privilege) {
	// The Namespaces it lists are its own when it creates them (or created them before), or
	// when the user takes them over with --adopt (now or before: then they carry its mark).
	created := map[string]bool{}
	for _, obj := range objs {
		if object.IsNamespace(obj.Unstructured) {
			c := claims[object.UnstructuredToObjMetadata(obj.Unstructured)]
			created[obj.GetName()] = c.live == nil || ours(c.live, p) || c.adopted
		}
	}
	projectOwned := created[p.Namespace] || projectNamespaceOwned(p, liveNS)
	owned := func(ns string) bool {
		if ns == p.Namespace {
			return true // when it is not the project's, one line below says so for all its objects
		}
		return created[ns]
	}
	list := append([]Object{}, objs...)
	for _, h := range hooks {
		list = append(list, h.Object)
	}
	if !projectOwned {
		all = append(all, Privilege{Risk: RiskNamespaces, Object: "namespace/" + p.Namespace,
			What: "the project's namespace exists and this project did not create it (choose one yourself with -n)"})
	}
	liveRole := func(name string) []any {
		cr, err := e.client.RbacV1().ClusterRoles().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return nil
		}
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(cr)
		if err != nil {
			return nil
		}
		return nestedSlice(u, "rules")
	}
	all = append(all, privilegesWith(list, owned, liveRole)...)
	sort.SliceStable(all, func(i, j int) bool { return slices.Index(Risks, all[i].Risk) < slices.Index(Risks, all[j].Risk) })
	for _, pr := range all {
		if !slices.Contains(allowed, pr.Risk) && !slices.Contains(accepted, pr.Key()) {
			asked = append(asked, pr)
		}
	}
	return all, asked
}

// privilegeError lists what a repository asks for that the user did not allow.
func privilegeError(asked []Privilege, p *Project, answeredNo bool) error {
	if answeredNo { // the list is on the screen already
		return hint.With(fmt.Errorf("%w (you answered no)", ErrPrivileges),
			"to launch it with them without being asked: "+p.Command("launch", "--allow", riskList(asked, nil)))
	}
	var lines []string
	for _, pr := range asked {
		lines = append(lines, pr.String())
	}
	return hint.With(fmt.Errorf("%w:\n  %s", ErrPrivileges, strings.Join(lines, "\n  ")),
		"launching it gives it all of the above; if you trust it: "+p.Command("launch", "--allow", riskList(asked, nil)))
}

// riskList is the comma-separated risks of privs that allowed lacks, in the order of Risks.
func riskList(privs []Privilege, allowed []Risk) string {
	var names []string
	for _, r := range Risks {
		if slices.Contains(allowed, r) {
			continue
		}
		if slices.ContainsFunc(privs, func(pr Privilege) bool { return pr.Risk == r }) {
			names = append(names, string(r))
		}
	}
	return strings.Join(names, ",")
}

// ErrPrivileges means the repository asks for privileges the user did not allow: nothing was
// applied.
var ErrPrivileges = errors.New("this repository asks for more than its own namespaces; nothing was applied")

// nestedSlice is the list at fields, not copied (kustomize's objects hold Go ints, which
// unstructured's deep copy refuses with a panic), nil when there is none.
func nestedSlice(obj map[string]any, fields ...string) []any {
	v, _, _ := unstructured.NestedFieldNoCopy(obj, fields...)
	list, _ := v.([]any)
	return list
}
