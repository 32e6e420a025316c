package launch_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"helm.sh/helm/v4/pkg/chart/common"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	"helm.sh/helm/v4/pkg/provenance"
	helmrepo "helm.sh/helm/v4/pkg/repo/v1"
	"sigs.k8s.io/yaml"

	"github.com/NationTech/harmony-agent/launch"
)

// repoFaults make chartRepo's repository misbehave.
type repoFaults struct {
	tamper    atomic.Bool // serve another archive than the index's digest
	failIndex atomic.Bool // answer the index with 500
	toHTTP    atomic.Bool // redirect the chart to http://
}

// chartRepo serves a Helm chart repository (index.yaml and one packaged chart, both built
// here) from a local HTTPS server, counting requests.
func chartRepo(t *testing.T) (*httptest.Server, *atomic.Int64) {
	srv, n, _ := faultyChartRepo(t)
	return srv, n
}

func faultyChartRepo(t *testing.T) (*httptest.Server, *atomic.Int64, *repoFaults) {
	t.Helper()
	db := &chart.Chart{
		Metadata:  &chart.Metadata{APIVersion: chart.APIVersionV2, Name: "db", Version: "1.2.3"},
		Values:    map[string]any{"port": 5432},
		Templates: []*common.File{{Name: "templates/db.yaml", Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: {{ .Release.Name }}-db}\ndata: {port: {{ .Values.port | quote }}}\n")}},
	}
	dir := t.TempDir()
	pkg, err := chartutil.Save(db, dir)
	if err != nil {
		t.Fatal(err)
	}
	tgz, err := os.ReadFile(pkg)
	if err != nil {
		t.Fatal(err)
	}
	var requests atomic.Int64
	faults := &repoFaults{}
	mux := http.NewServeMux()
	srv := httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)
	digest, _ := provenance.Digest(bytes.NewReader(tgz))
	idx := helmrepo.NewIndexFile()
	if err := idx.MustAdd(db.Metadata, "db-1.2.3.tgz", srv.URL+"/charts", "sha256:"+digest); err != nil {
		t.Fatal(err)
	}
	index, err := yaml.Marshal(idx)
	if err != nil {
		t.Fatal(err)
	}
	mux.HandleFunc("/charts/index.yaml", func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		if faults.failIndex.Load() {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		w.Write(index)
	})
	mux.HandleFunc("/charts/db-1.2.3.tgz", func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		switch {
		case faults.toHTTP.Load():
			http.Redirect(w, r, "http://"+r.Host+r.URL.Path, http.StatusFound)
		case faults.tamper.Load():
			other := *db.Metadata
			other.Description = "swapped"
			pkg, err := chartutil.Save(&chart.Chart{Metadata: &other, Templates: db.Templates}, t.TempDir())
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			b, _ := os.ReadFile(pkg)
			w.Write(b)
		default:
			w.Write(tgz)
		}
	})
	return srv, &requests, faults
}

// lockFor writes Chart.lock the way helm dependency update does (its digest covers Chart.yaml's
// dependencies and the locked ones).
func lockFor(t *testing.T, req, locked []*chart.Dependency) string {
	t.Helper()
	data, err := json.Marshal([2][]*chart.Dependency{req, locked})
	if err != nil {
		t.Fatal(err)
	}
	sum, _ := provenance.Digest(bytes.NewReader(data))
	out, err := yaml.Marshal(&chart.Lock{Digest: "sha256:" + sum, Dependencies: locked})
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func TestChartRemoteDependencies(t *testing.T) {
	t.Parallel()
	srv, requests := chartRepo(t)
	url := srv.URL + "/charts"
	req := []*chart.Dependency{{Name: "db", Version: "~1.2.0", Repository: url}}
	locked := []*chart.Dependency{{Name: "db", Version: "1.2.3", Repository: url}}
	chartYAML := "apiVersion: v2\nname: app\nversion: 1.0.0\ndependencies:\n- name: db\n  version: ~1.2.0\n  repository: " + url + "\n"
	files := map[string]string{
		"chart/Chart.yaml":        chartYAML,
		"chart/Chart.lock":        lockFor(t, req, locked),
		"chart/values.yaml":       "db:\n  port: 6000\n",
		"chart/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\n",
	}
	render := func(root string, allow bool) (*launch.Rendered, error) {
		src, err := launch.Discover(root, nil)
		if err != nil {
			t.Fatal(err)
		}
		return launch.RenderChart(context.Background(), src, launch.ChartOptions{Release: "shop", Namespace: "shop",
			KubeVersion: "v1.36.4+k3s1", AllowRemote: allow, CacheDir: filepath.Join(t.TempDir(), "cache")})
	}

	// Without --allow-remote nothing is fetched.
	root := tree(t, files)
	if _, err := render(root, false); !errors.Is(err, launch.ErrChartDependencies) {
		t.Fatalf("error %v, want ErrChartDependencies", err)
	}
	if n := requests.Load(); n != 0 {
		t.Fatalf("%d requests without --allow-remote", n)
	}

	// With it, the locked version is fetched and rendered; the repository is not written to.
	r, err := render(root, true)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range r.Objects {
		names = append(names, o.GetName())
		if o.GetName() == "shop-db" && o.Object["data"].(map[string]any)["port"] != "6000" {
			t.Errorf("dependency values %v", o.Object["data"])
		}
	}
	if strings.Join(names, ",") != "shop-db,app" && strings.Join(names, ",") != "app,shop-db" {
		t.Fatalf("rendered %v", names)
	}
	if requests.Load() == 0 {
		t.Fatal("nothing was fetched")
	}
	if _, err := os.Stat(filepath.Join(root, "chart", "charts")); !os.IsNotExist(err) {
		t.Fatalf("fetching wrote into the repository: %v", err)
	}

	// A Chart.lock that does not match Chart.yaml is refused.
	files["chart/Chart.yaml"] = strings.Replace(chartYAML, "~1.2.0", "~1.3.0", 1)
	if _, err := render(tree(t, files), true); err == nil || !strings.Contains(err.Error(), "out of sync") {
		t.Fatalf("error %v, want Chart.lock out of sync", err)
	}

	// No Chart.lock: harmony does not pick versions itself.
	files["chart/Chart.yaml"] = chartYAML
	delete(files, "chart/Chart.lock")
	if _, err := render(tree(t, files), true); !errors.Is(err, launch.ErrChartDependencies) || !strings.Contains(err.Error(), "no Chart.lock") {
		t.Fatalf("error %v, want a refusal without Chart.lock", err)
	}
}

// A chart repository that answers with an endless body (a hostile or broken server) makes the
// fetch fail at the remote size cap, with a clear error, instead of filling memory.
func TestChartRemoteDependencyEndlessResponse(t *testing.T) {
	t.Parallel()
	srv, _ := chartRepo(t)
	endless := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/index.yaml") {
			// The real index, pointing at this server's endless chart.
			resp, err := http.Get(srv.URL + "/charts/index.yaml")
			if err != nil {
				http.Error(w, err.Error(), 500)
				return
			}
			defer resp.Body.Close()
			var b bytes.Buffer
			b.ReadFrom(resp.Body)
			w.Write([]byte(strings.ReplaceAll(b.String(), srv.URL, "https://"+r.Host)))
			return
		}
		chunk := bytes.Repeat([]byte{0}, 1<<20)
		for {
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	}))
	t.Cleanup(endless.Close)
	err := renderWithDB(t, endless.URL+"/charts", filepath.Join(t.TempDir(), "cache"))
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("error %v, want the size cap", err)
	}
}

// renderWithDB renders, with --allow-remote, a chart whose Chart.lock pins db 1.2.3 from the
// repository at url, caching in cache.
func renderWithDB(t *testing.T, url, cache string) error {
	t.Helper()
	req := []*chart.Dependency{{Name: "db", Version: "~1.2.0", Repository: url}}
	locked := []*chart.Dependency{{Name: "db", Version: "1.2.3", Repository: url}}
	root := tree(t, map[string]string{
		"chart/Chart.yaml":        "apiVersion: v2\nname: app\nversion: 1.0.0\ndependencies:\n- name: db\n  version: ~1.2.0\n  repository: " + url + "\n",
		"chart/Chart.lock":        lockFor(t, req, locked),
		"chart/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: app}\n",
	})
	src, err := launch.Discover(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = launch.RenderChart(context.Background(), src, launch.ChartOptions{Release: "shop", Namespace: "shop",
		KubeVersion: "v1.36.4+k3s1", AllowRemote: true, CacheDir: cache})
	return err
}

// What --allow-remote fetches is what the repository's index lists, from the repository Chart.lock
// names, over https: a plain-http repository, a redirect to http://, an archive that is not the
// one the index lists, and an index that cannot be fetched now (where a cached one, possibly
// another repository's, used to be read) each stop the launch.
func TestChartRemoteDependencyCannotBeSubstituted(t *testing.T) {
	t.Parallel()
	srv, requests, faults := faultyChartRepo(t)
	cache := filepath.Join(t.TempDir(), "cache") // shared by every render below, as a user's is
	render := func(url string) error { return renderWithDB(t, url, cache) }
	url := srv.URL + "/charts"
	if err := render(url); err != nil {
		t.Fatalf("the repository as it is: %v", err)
	}

	before := requests.Load()
	if err := render(strings.Replace(url, "https://", "http://", 1)); !errors.Is(err, launch.ErrInsecureRepository) {
		t.Errorf("an http:// repository: %v, want ErrInsecureRepository", err)
	}
	if requests.Load() != before {
		t.Errorf("an http:// repository was asked")
	}

	faults.toHTTP.Store(true)
	if err := render(url); !errors.Is(err, launch.ErrInsecureRepository) {
		t.Errorf("a redirect to http://: %v, want ErrInsecureRepository", err)
	}
	faults.toHTTP.Store(false)

	faults.tamper.Store(true)
	if err := render(url); err == nil || !strings.Contains(err.Error(), "the repository's index says") {
		t.Errorf("an archive that is not the index's: %v, want refused by its digest", err)
	}
	faults.tamper.Store(false)

	faults.failIndex.Store(true)
	if err := render(url); err == nil || !strings.Contains(err.Error(), "its index") {
		t.Errorf("an index that cannot be fetched, with one cached: %v, want the launch stopped", err)
	}
}

// file:// dependencies are the project's own folders, read through its confined tree (Helm's
// downloader read them relative to a temporary copy, so an in-repo file://../common failed, and
// from any absolute path or ../.. out of it).
func TestChartFileDependencies(t *testing.T) {
	t.Parallel()
	common := map[string]string{
		"charts/common/Chart.yaml":           "apiVersion: v2\nname: common\nversion: 0.1.0\ntype: library\n",
		"charts/common/templates/_names.tpl": `{{- define "common.name" -}}{{ .Release.Name }}-common{{- end -}}`,
	}
	web := func(repo string, extra ...string) map[string]string {
		f := map[string]string{
			"charts/web/Chart.yaml":        "apiVersion: v2\nname: web\nversion: 1.0.0\ndependencies:\n- name: common\n  version: 0.1.0\n  repository: " + repo + "\n" + strings.Join(extra, ""),
			"charts/web/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: {{ include \"common.name\" . }}}\n",
		}
		for k, v := range common {
			f[k] = v
		}
		return f
	}
	render := func(files map[string]string, allow bool) (*launch.Rendered, error) {
		root := tree(t, files)
		src, err := launch.Discover(root, []string{filepath.Join(root, "charts", "web")})
		if err != nil {
			t.Fatal(err)
		}
		return launch.RenderChart(context.Background(), src, launch.ChartOptions{Release: "shop", Namespace: "shop",
			KubeVersion: "v1.36.4+k3s1", AllowRemote: allow, CacheDir: filepath.Join(t.TempDir(), "cache")})
	}

	r, err := render(web("file://../common"), false)
	if err != nil || len(r.Objects) != 1 || r.Objects[0].GetName() != "shop-common" {
		t.Fatalf("an in-repo file://../common: %v %+v", err, r)
	}

	outside := t.TempDir()
	if err := os.MkdirAll(filepath.Join(outside, "common"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(outside, "common", "Chart.yaml"), []byte("apiVersion: v2\nname: common\nversion: 0.1.0\ntype: library\n"), 0o644)
	for _, repo := range []string{"file://" + filepath.Join(outside, "common"), "file://../../../../../../../../" + filepath.Join(outside, "common")} {
		if _, err := render(web(repo), true); !errors.Is(err, launch.ErrOutside) {
			t.Errorf("%s: %v, want it refused as outside the project", repo, err)
		}
	}

	// With a remote dependency beside it, Helm's downloader fetches only the remote one.
	srv, _ := chartRepo(t)
	url := srv.URL + "/charts"
	req := []*chart.Dependency{{Name: "common", Version: "0.1.0", Repository: "file://../common"}, {Name: "db", Version: "~1.2.0", Repository: url}}
	locked := []*chart.Dependency{{Name: "common", Version: "0.1.0", Repository: "file://../common"}, {Name: "db", Version: "1.2.3", Repository: url}}
	files := web("file://../common", "- name: db\n  version: ~1.2.0\n  repository: "+url+"\n")
	files["charts/web/Chart.lock"] = lockFor(t, req, locked)
	r, err = render(files, true)
	if err != nil {
		t.Fatalf("a local and a remote dependency: %v", err)
	}
	var names []string
	for _, o := range r.Objects {
		names = append(names, o.GetName())
	}
	if strings.Join(names, ",") != "shop-db,shop-common" && strings.Join(names, ",") != "shop-common,shop-db" {
		t.Fatalf("rendered %v, want the remote db and the local common", names)
	}
}
