package launch_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/NationTech/harmony-agent/internal/hint"
	"github.com/NationTech/harmony-agent/launch"
)

// The charts below are written for these tests.

const webChart = `apiVersion: v2
name: web
version: 0.3.1
appVersion: "1.0"
`

const webValues = `replicaCount: 2
image: nginxinc/nginx-unprivileged:1.27-alpine
ingress:
  enabled: true
  host: web.localhost
greeting: hello
`

const webHelpers = `{{- define "web.fullname" -}}
{{ .Release.Name }}-web
{{- end -}}
{{- define "web.labels" -}}
app.kubernetes.io/name: web
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
`

const webDeployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "web.fullname" . }}
  labels:
    {{- include "web.labels" . | nindent 4 }}
spec:
  replicas: {{ .Values.replicaCount }}
  selector:
    matchLabels:
      {{- include "web.labels" . | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "web.labels" . | nindent 8 }}
    spec:
      containers:
      - name: web
        image: {{ .Values.image }}
        ports:
        - containerPort: 8080
`

const webService = `apiVersion: v1
kind: Service
metadata:
  name: {{ include "web.fullname" . }}
spec:
  selector:
    {{- include "web.labels" . | nindent 4 }}
  ports:
  - port: 80
    targetPort: 8080
`

const webIngress = `{{- if .Values.ingress.enabled }}
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: {{ include "web.fullname" . }}
spec:
  rules:
  - host: {{ .Values.ingress.host }}
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: {{ include "web.fullname" . }}
            port: {number: 80}
{{- end }}
`

const webConfig = `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "web.fullname" . }}-config
data:
  greeting: {{ .Values.greeting | quote }}
  kube: {{ .Capabilities.KubeVersion.Version | quote }}
  namespace: {{ .Release.Namespace | quote }}
  upgrade: {{ .Release.IsUpgrade | quote }}
`

const webNotes = `Visit http://{{ .Values.ingress.host }} to see {{ include "web.fullname" . }}.
`

func webFiles(prefix string) map[string]string {
	return map[string]string{
		prefix + "Chart.yaml":                webChart,
		prefix + "values.yaml":               webValues,
		prefix + "templates/_helpers.tpl":    webHelpers,
		prefix + "templates/deployment.yaml": webDeployment,
		prefix + "templates/service.yaml":    webService,
		prefix + "templates/ingress.yaml":    webIngress,
		prefix + "templates/config.yaml":     webConfig,
		prefix + "templates/NOTES.txt":       webNotes,
	}
}

// chartProject is a repository holding a chart, launched the way the CLI does it.
type chartProject struct {
	*project
	kubeVersion string
}

func newChartProject(t *testing.T, files map[string]string) *chartProject {
	p := newProject(t, "../examples/hello")
	p.dir = tree(t, files)
	var err error
	if p.proj, err = launch.Resolve(launch.Selection{Dir: p.dir, Namespace: p.ns}); err != nil {
		t.Fatal(err)
	}
	return &chartProject{project: p}
}

func (p *chartProject) write(name, body string) {
	p.t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// render discovers and renders the project's chart against the test cluster.
func (p *chartProject) render() (*launch.Source, []launch.Object, *launch.Rendered, error) {
	p.t.Helper()
	src, err := p.proj.Discover()
	if err != nil {
		return nil, nil, nil, err
	}
	objs, err := launch.Render(context.Background(), src, launch.RenderOptions{})
	if err != nil {
		return src, nil, nil, err
	}
	if src.Chart == nil {
		p.t.Fatalf("no chart discovered (%s)", src.Reason)
	}
	upgrade, err := p.eng.Launched(context.Background(), p.proj)
	if err != nil {
		return src, nil, nil, err
	}
	r, err := launch.RenderChart(context.Background(), src, launch.ChartOptions{
		Release: "demo", Namespace: p.ns, Cluster: cluster.Config, KubeVersion: p.kubeVersion, Upgrade: upgrade,
	})
	if err != nil {
		return src, nil, nil, err
	}
	return src, append(objs, r.Objects...), r, nil
}

func (p *chartProject) launchChart() (*launch.Report, *launch.Rendered, error) {
	p.t.Helper()
	_, objs, r, err := p.render()
	if err != nil {
		return nil, nil, err
	}
	o := p.opts
	o.Hooks = r.Hooks
	rep, err := p.eng.Launch(context.Background(), p.proj, objs, o)
	return rep, r, err
}

func TestChartLaunchWithHelpersValuesAndIngress(t *testing.T) {
	t.Parallel()
	files := webFiles("charts/web/")
	files["harmony.yaml"] = "chart: charts/web\nvalues: [values-dev.yaml]\nset: {replicaCount: 1, ingress: {host: dev.localhost}}\n"
	files["values-dev.yaml"] = "greeting: hi from dev\nreplicaCount: 3\n"
	p := newChartProject(t, files)
	ctx := context.Background()

	rep, r, err := p.launchChart()
	if err != nil {
		t.Fatalf("%v\n%s", err, p.out.String())
	}
	if r.Chart.Name != "web" || r.Chart.Version != "0.3.1" || r.Chart.Path != "charts/web" {
		t.Fatalf("chart info %+v", r.Chart)
	}
	want := map[string]launch.Action{"deployment/demo-web": launch.Create, "service/demo-web": launch.Create,
		"ingress/demo-web": launch.Create, "configmap/demo-web-config": launch.Create}
	if got := actions(rep); len(got) != len(want) {
		t.Fatalf("plan %v, want %v", got, want)
	} else {
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: %s, want %s", k, got[k], v)
			}
		}
	}
	d, err := cluster.Client.AppsV1().Deployments(p.ns).Get(ctx, "demo-web", metav1.GetOptions{})
	if err != nil || *d.Spec.Replicas != 1 || d.Labels["app.kubernetes.io/instance"] != "demo" {
		t.Fatalf("deployment: set replicaCount=1 over the values file's 3, helpers' labels: %v %+v", err, d)
	}
	cm, err := cluster.Client.CoreV1().ConfigMaps(p.ns).Get(ctx, "demo-web-config", metav1.GetOptions{})
	if err != nil || cm.Data["greeting"] != "hi from dev" || cm.Data["namespace"] != p.ns || cm.Data["upgrade"] != "false" {
		t.Fatalf("configmap %v %+v", err, cm.Data)
	}
	if !strings.HasPrefix(cm.Data["kube"], "v1.36.") {
		t.Fatalf("Capabilities.KubeVersion %q, want the test cluster's", cm.Data["kube"])
	}
	if r.Chart.Notes != "Visit http://dev.localhost to see demo-web." {
		t.Fatalf("notes %q", r.Chart.Notes)
	}
	found, forward := false, false
	for _, ep := range rep.Endpoints {
		found = found || ep.URL == "http://dev.localhost"
		// the command that reaches it from here needs no kubectl
		forward = forward || strings.HasPrefix(ep.Note, "inside the cluster; from here: harmony forward")
	}
	if !rep.Ready || !found || !forward {
		t.Fatalf("ready %v, endpoints %+v", rep.Ready, rep.Endpoints)
	}
	for _, s := range rep.Plan {
		if s.Ref == "deployment/demo-web (namespace "+p.ns+")" && s.Origin != "charts/web/templates/deployment.yaml" {
			t.Errorf("origin %q", s.Origin)
		}
	}

	// Re-launch after a template change: the Ingress is gone from the chart, so it is pruned;
	// the chart renders as an upgrade.
	p.write("charts/web/templates/ingress.yaml", "{{- /* no ingress any more */ -}}\n")
	rep, _, err = p.launchChart()
	if err != nil {
		t.Fatalf("%v\n%s", err, p.out.String())
	}
	got := actions(rep)
	if got["ingress/demo-web"] != launch.Prune || got["deployment/demo-web"] != launch.Unchanged || got["configmap/demo-web-config"] != launch.Update {
		t.Fatalf("re-launch plan %v", got)
	}
	if _, err := cluster.Client.NetworkingV1().Ingresses(p.ns).Get(ctx, "demo-web", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the ingress removed from the chart was not pruned: %v", err)
	}
	if cm, _ := cluster.Client.CoreV1().ConfigMaps(p.ns).Get(ctx, "demo-web-config", metav1.GetOptions{}); cm.Data["upgrade"] != "true" {
		t.Fatalf("re-launch not rendered as an upgrade: %+v", cm.Data)
	}
}

func TestChartWithVendoredSubcharts(t *testing.T) {
	t.Parallel()
	files := map[string]string{
		"helm/Chart.yaml":                        "apiVersion: v2\nname: shop\nversion: 1.0.0\ndependencies:\n- name: cache\n  version: 0.1.0\n  repository: https://charts.invalid/stable\n- name: queue\n  version: 0.2.0\n  condition: queue.enabled\n",
		"helm/values.yaml":                       "cache:\n  size: 7\nqueue:\n  enabled: false\n",
		"helm/templates/cm.yaml":                 "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: shop}\ndata: {cache: {{ .Values.cache.size | quote }}}\n",
		"helm/charts/cache/Chart.yaml":           "apiVersion: v2\nname: cache\nversion: 0.1.0\n",
		"helm/charts/cache/values.yaml":          "size: 1\n",
		"helm/charts/cache/templates/cache.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: {{ .Release.Name }}-cache}\ndata: {size: {{ .Values.size | quote }}}\n",
		"helm/charts/queue/Chart.yaml":           "apiVersion: v2\nname: queue\nversion: 0.2.0\n",
		"helm/charts/queue/templates/q.yaml":     "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: queue}\n",
	}
	p := newChartProject(t, files)
	rep, _, err := p.launchChart()
	if err != nil {
		t.Fatalf("%v\n%s", err, p.out.String())
	}
	got := actions(rep)
	if len(got) != 2 || got["configmap/shop"] != launch.Create || got["configmap/demo-cache"] != launch.Create {
		t.Fatalf("plan %v: want the chart and its enabled vendored subchart", got)
	}
	cm, err := cluster.Client.CoreV1().ConfigMaps(p.ns).Get(context.Background(), "demo-cache", metav1.GetOptions{})
	if err != nil || cm.Data["size"] != "7" {
		t.Fatalf("subchart values from the parent: %v %+v", err, cm)
	}
	for _, s := range rep.Plan {
		if strings.HasPrefix(s.Ref, "configmap/demo-cache") && s.Origin != "helm/charts/cache/templates/cache.yaml" {
			t.Errorf("subchart origin %q", s.Origin)
		}
	}
}

const hookJob = `apiVersion: batch/v1
kind: Job
metadata:
  name: %s
  annotations:
    helm.sh/hook: %s
    helm.sh/hook-weight: "%s"
    %s
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: run
        image: busybox:1.37
        command: ["true"]
`

func job(name, events, weight, extra string) string {
	return fmt.Sprintf(hookJob, name, events, weight, extra)
}

func TestChartHooks(t *testing.T) {
	t.Parallel()
	files := map[string]string{
		"chart/Chart.yaml":         "apiVersion: v2\nname: hooked\nversion: 0.0.1\n",
		"chart/templates/app.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\n",
		"chart/templates/migrate.yaml": job("migrate", "pre-install,pre-upgrade", "5", "helm.sh/hook-delete-policy: hook-succeeded") + "---\n" +
			job("prepare", "pre-install", "-5", "helm.sh/hook-delete-policy: before-hook-creation,hook-succeeded"),
		"chart/templates/announce.yaml":              job("announce", "post-install", "0", "harmony.test/note: none"),
		"chart/templates/tests/test-connection.yaml": "apiVersion: v1\nkind: Pod\nmetadata:\n  name: test-connection\n  annotations: {helm.sh/hook: test}\nspec:\n  containers: [{name: t, image: busybox:1.37}]\n",
		"chart/templates/old-crd.yaml":               "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: old\n  annotations: {helm.sh/hook: crd-install}\n",
	}
	p := newChartProject(t, files)
	p.opts.Timeout = 4 * time.Minute // each hook Job goes through the Job controller and the simulated node
	ctx := context.Background()
	rep, r, err := p.launchChart()
	if err != nil {
		t.Fatalf("%v\n%s", err, p.out.String())
	}
	if len(r.Chart.SkippedHooks) != 2 || !strings.Contains(strings.Join(r.Chart.SkippedHooks, "\n"), "pod/test-connection (test hook") ||
		!strings.Contains(strings.Join(r.Chart.SkippedHooks, "\n"), "configmap/old (crd-install") {
		t.Fatalf("skipped hooks %q", r.Chart.SkippedHooks)
	}
	// Pre-install hooks ran in weight order before the objects, the post-install one after.
	out := p.out.String()
	iPrepare, iMigrate, iAnnounce := strings.Index(out, "pre-install hook job/prepare"), strings.Index(out, "pre-install hook job/migrate"), strings.Index(out, "post-install hook job/announce")
	if iPrepare < 0 || iMigrate < iPrepare || iAnnounce < iMigrate {
		t.Fatalf("hook order in output:\n%s", out)
	}
	got := actions(rep)
	if got["configmap/app"] != launch.Create || got["job/migrate"] != launch.RunHook || got["job/announce"] != launch.RunHook || got["pod/test-connection"] != "" {
		t.Fatalf("plan %v", got)
	}
	// hook-succeeded deleted the pre-install Jobs; the post-install one stays (before-hook-creation).
	for _, name := range []string{"migrate", "prepare"} {
		if _, err := cluster.Client.BatchV1().Jobs(p.ns).Get(ctx, name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
			t.Errorf("job %s was not deleted after it succeeded: %v", name, err)
		}
	}
	announce, err := cluster.Client.BatchV1().Jobs(p.ns).Get(ctx, "announce", metav1.GetOptions{})
	if err != nil || announce.Status.Succeeded != 1 {
		t.Fatalf("post-install job: %v %+v", err, announce)
	}
	if _, err := cluster.Client.CoreV1().Pods(p.ns).Get(ctx, "test-connection", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the test hook ran: %v", err)
	}
	// Hooks are not part of the inventory: not pruned, not listed.
	inv, _ := cluster.Client.CoreV1().ConfigMaps(p.ns).Get(ctx, p.proj.InventoryName(), metav1.GetOptions{})
	for k := range inv.Data {
		if strings.Contains(k, "Job") {
			t.Errorf("hook in the inventory: %s", k)
		}
	}

	// A re-launch is an upgrade: pre-upgrade runs, install hooks do not.
	p.out.Reset()
	if _, _, err := p.launchChart(); err != nil {
		t.Fatalf("%v\n%s", err, p.out.String())
	}
	out = p.out.String()
	if !strings.Contains(out, "pre-upgrade hook job/migrate") || strings.Contains(out, "install hook") {
		t.Fatalf("upgrade hooks:\n%s", out)
	}
	again, err := cluster.Client.BatchV1().Jobs(p.ns).Get(ctx, "announce", metav1.GetOptions{})
	if err != nil || again.UID != announce.UID {
		t.Fatalf("the post-install job ran again on an upgrade: %v", err)
	}
}

func TestChartTemplateErrorNamesFileAndLine(t *testing.T) {
	t.Parallel()
	files := webFiles("charts/web/")
	files["charts/web/templates/deployment.yaml"] = strings.Replace(webDeployment, "{{ .Values.replicaCount }}", "{{ .Values.replicaCount | nosuchfunc }}", 1)
	p := newChartProject(t, files)
	_, _, _, err := p.render()
	if !errors.Is(err, launch.ErrBadManifest) || !strings.Contains(err.Error(), "charts/web/templates/deployment.yaml:8") || !strings.Contains(err.Error(), "nosuchfunc") {
		t.Fatalf("error %v, want the template's file and line", err)
	}

	files = webFiles("")
	files["templates/config.yaml"] = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata:\n  a: {{ required \"set greeting2\" .Values.greeting2 }}\n"
	p = newChartProject(t, files)
	_, _, _, err = p.render()
	if !errors.Is(err, launch.ErrBadManifest) || !strings.Contains(err.Error(), "templates/config.yaml:5") || !strings.Contains(err.Error(), "set greeting2") {
		t.Fatalf("error %v, want the failing template's file and line", err)
	}
	if _, err := cluster.Client.CoreV1().Namespaces().Get(context.Background(), p.ns, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("a failed render touched the cluster: %v", err)
	}
}

func TestChartValuesFilesAreNamed(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct{ values, want string }{
		"missing":  {"", `values file "values-dev.yaml" does not exist`},
		"unparsed": {"replicaCount: [1\n", `values file "values-dev.yaml"`},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			files := webFiles("charts/web/")
			files["harmony.yaml"] = "chart: charts/web\nvalues: [values-dev.yaml]\n"
			if tc.values != "" {
				files["values-dev.yaml"] = tc.values
			}
			root := tree(t, files)
			src, err := launch.Discover(root, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = launch.RenderChart(context.Background(), src, launch.ChartOptions{Release: "x", Namespace: "x", KubeVersion: "v1.36.4+k3s1"})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestChartWithoutCluster(t *testing.T) {
	t.Parallel()
	root := tree(t, webFiles("deploy/helm/"))
	src, err := launch.Discover(root, nil)
	if err != nil || src.Chart == nil {
		t.Fatalf("%v %+v", err, src)
	}
	r, err := launch.RenderChart(context.Background(), src, launch.ChartOptions{Release: "my-project", Namespace: "shop", KubeVersion: "v1.36.4+k3s1"})
	if err != nil {
		t.Fatal(err)
	}
	rep := launch.Unchecked("shop", r.Objects)
	if len(rep.Plan) != 4 || r.Chart.KubeVersion != "v1.36.4+k3s1" {
		t.Fatalf("plan %+v, kube %q", rep.Plan, r.Chart.KubeVersion)
	}
	for _, o := range r.Objects {
		if o.GetKind() == "ConfigMap" && o.Object["data"].(map[string]any)["kube"] != "v1.36.4+k3s1" {
			t.Fatalf("Capabilities without a cluster: %v", o.Object["data"])
		}
	}
}

func TestChartDependenciesNotVendored(t *testing.T) {
	t.Parallel()
	root := tree(t, map[string]string{
		"chart/Chart.yaml":        "apiVersion: v2\nname: app\nversion: 1.0.0\ndependencies:\n- name: db\n  version: 1.2.3\n  repository: https://charts.invalid/db\n",
		"chart/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\n",
	})
	src, err := launch.Discover(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = launch.RenderChart(context.Background(), src, launch.ChartOptions{Release: "x", Namespace: "x", KubeVersion: "v1.36.4+k3s1"})
	if !errors.Is(err, launch.ErrChartDependencies) || !strings.Contains(err.Error(), "db 1.2.3") ||
		!strings.Contains(strings.Join(hint.Of(err), "\n"), "--allow-remote") {
		t.Fatalf("error %v (hints %q)", err, hint.Of(err))
	}
}

func TestChartDiscovery(t *testing.T) {
	t.Parallel()
	kust := "resources: [a.yaml]\n"
	tests := []struct {
		name     string
		files    map[string]string
		wantDir  string
		wantErr  error
		wantHint []string
	}{
		{"chart at the root", webFiles(""), ".", nil, nil},
		{"the only chart in charts/", webFiles("charts/web/"), "charts/web", nil, nil},
		{"helm-chart folder", webFiles("helm-chart/"), "helm-chart", nil, nil},
		{"library charts and file dependencies are not candidates", func() map[string]string {
			f := webFiles("charts/web/")
			f["charts/web/Chart.yaml"] = webChart + "dependencies:\n- name: common\n  version: 0.1.0\n  repository: file://../common\n"
			f["charts/common/Chart.yaml"] = "apiVersion: v2\nname: common\nversion: 0.1.0\ntype: library\n"
			f["charts/lib2/Chart.yaml"] = "apiVersion: v2\nname: lib2\nversion: 0.1.0\ntype: library\n"
			return f
		}(), "charts/web", nil, nil},
		{"a chart next to a kustomization is an explained choice", func() map[string]string {
			f := webFiles("charts/web/")
			f["config/default/kustomization.yaml"] = kust
			f["config/default/a.yaml"] = cmDoc("a")
			return f
		}(), "", launch.ErrAmbiguous, []string{filepath.Join("charts", "web"), filepath.Join("config", "default"), "a Helm chart and"}},
		{"a chart next to a manifests folder", func() map[string]string {
			f := webFiles("helm/")
			f["k8s/a.yaml"] = cmDoc("a")
			return f
		}(), "", launch.ErrAmbiguous, []string{"helm", "k8s"}},
		{"two charts", func() map[string]string {
			f := webFiles("charts/web/")
			for k, v := range webFiles("charts/api/") {
				f[k] = v
			}
			return f
		}(), "", launch.ErrAmbiguous, []string{"charts/api", "charts/web"}},
		{"kustomization and chart at the root", func() map[string]string {
			f := webFiles("")
			f["kustomization.yaml"] = kust
			f["a.yaml"] = cmDoc("a")
			return f
		}(), "", launch.ErrAmbiguous, []string{"chart: .", "manifests: [.]"}},
		{"harmony.yaml names the chart", func() map[string]string {
			f := webFiles("charts/web/")
			for k, v := range webFiles("charts/api/") {
				f[k] = v
			}
			f["harmony.yaml"] = "chart: charts/api\n"
			return f
		}(), "charts/api", nil, nil},
		{"harmony.yaml chart outside the project", map[string]string{"harmony.yaml": "chart: ../elsewhere\n"}, "", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root := tree(t, tt.files)
			src, err := launch.Discover(root, nil)
			if tt.name == "harmony.yaml chart outside the project" {
				if err == nil || !strings.Contains(err.Error(), "inside the project") {
					t.Fatalf("error %v", err)
				}
				return
			}
			if tt.wantErr != nil {
				hints := strings.Join(hint.Of(err), "\n")
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error %v, want %v", err, tt.wantErr)
				}
				for _, h := range tt.wantHint {
					if !strings.Contains(hints+err.Error(), h) {
						t.Errorf("error %v / hints %q lack %q", err, hints, h)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if src.Chart == nil {
				t.Fatalf("no chart (%s)", src.Reason)
			}
			if got, _ := filepath.Rel(root, src.Chart.Dir); got != filepath.FromSlash(tt.wantDir) {
				t.Fatalf("chart %q, want %q", got, tt.wantDir)
			}
			if src.Reason == "" || len(src.Files)+len(src.Kustomizations) != 0 {
				t.Fatalf("source %+v", src)
			}
		})
	}
}

func TestHelmOwnedObjectIsNeverTakenOver(t *testing.T) {
	t.Parallel()
	p := newChartProject(t, webFiles("charts/web/"))
	ctx := context.Background()
	if _, err := cluster.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: p.ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"app": "theirs"}
	theirs := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "demo-web", Namespace: p.ns, Labels: map[string]string{"app.kubernetes.io/managed-by": "Helm"},
			Annotations: map[string]string{"meta.helm.sh/release-name": "their-release", "meta.helm.sh/release-namespace": p.ns}},
		Spec: appsv1.DeploymentSpec{
			Replicas: new(int32(5)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "theirs:1"}}}},
		},
	}
	if _, err := cluster.Client.AppsV1().Deployments(p.ns).Create(ctx, theirs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, _, err := p.launchChart()
	if !errors.Is(err, launch.ErrNotOwned) || !strings.Contains(err.Error(), "their-release") || !strings.Contains(err.Error(), "deployment/demo-web") {
		t.Fatalf("error %v, want a refusal naming the Helm release", err)
	}
	d, err := cluster.Client.AppsV1().Deployments(p.ns).Get(ctx, "demo-web", metav1.GetOptions{})
	if err != nil || *d.Spec.Replicas != 5 || d.Spec.Template.Spec.Containers[0].Image != "theirs:1" || d.Annotations[launch.OwningInventoryAnnotation] != "" {
		t.Fatalf("the Helm release's deployment was changed: %v %+v", err, d)
	}
	if _, err := cluster.Client.CoreV1().Services(p.ns).Get(ctx, "demo-web", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("the rest of the chart was applied: %v", err)
	}
}

func TestChartReadsStayInsideTheProject(t *testing.T) {
	t.Parallel()
	root := tree(t, webFiles("chart/"))
	outside := filepath.Join(filepath.Dir(root), "secret.yaml")
	if err := os.WriteFile(outside, []byte("apiVersion: v1\nkind: Secret\nmetadata: {name: leaked}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../secret.yaml", filepath.Join(root, "chart", "templates", "leak.yaml")); err != nil {
		t.Fatal(err)
	}
	src, err := launch.Discover(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = launch.RenderChart(context.Background(), src, launch.ChartOptions{Release: "x", Namespace: "x", KubeVersion: "v1.36.4+k3s1"})
	if !errors.Is(err, launch.ErrOutside) || !strings.Contains(err.Error(), "leak.yaml") {
		t.Fatalf("error %v, want the link leaving the project refused and named", err)
	}
}

// BenchmarkRenderChart renders the web chart (helpers, values, four templates, NOTES) without a
// cluster, as launch --dry-run does.
func BenchmarkRenderChart(b *testing.B) {
	root := filepath.Join(b.TempDir(), "web")
	for name, body := range webFiles("") {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			b.Fatal(err)
		}
	}
	src, err := launch.Discover(root, nil)
	if err != nil {
		b.Fatal(err)
	}
	o := launch.ChartOptions{Release: "web", Namespace: "web", KubeVersion: "v1.36.4+k3s1"}
	for b.Loop() {
		if _, err := launch.RenderChart(context.Background(), src, o); err != nil {
			b.Fatal(err)
		}
	}
}
