package launch_test

import (
	"errors"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/NationTech/harmony-agent/internal/hint"
	"github.com/NationTech/harmony-agent/launch"
)

// renderKustomization renders the kustomization in dir (root-relative) of a project at root,
// collecting the warnings rendering gives.
func renderKustomization(t *testing.T, root, dir string) ([]launch.Object, []string, error) {
	t.Helper()
	var mu sync.Mutex
	var warnings []string
	src := &launch.Source{Root: root, Kustomizations: []string{filepath.Join(root, filepath.FromSlash(dir))}}
	objs, err := launch.Render(t.Context(), src, launch.RenderOptions{Warn: func(w string) {
		mu.Lock()
		defer mu.Unlock()
		warnings = append(warnings, w)
	}})
	return objs, warnings, err
}

// kustomize's Helm chart inflation (helmCharts:) runs the helm program and fetches charts:
// harmony refuses it by name, saying how to launch the chart instead.
func TestKustomizeHelmChartsAreRefused(t *testing.T) {
	t.Parallel()
	chart := map[string]string{
		"Chart.yaml":               "apiVersion: v2\nname: web\nversion: 0.1.0\n",
		"templates/configmap.yaml": cmDoc("web"),
	}
	withChart := func(dir string, files map[string]string) map[string]string {
		for name, body := range chart {
			files[dir+"/"+name] = body
		}
		return files
	}
	tests := []struct {
		name      string
		files     map[string]string
		dir       string
		file      string   // the kustomization the error names
		wantHints []string // each in the hints
	}{
		{"a chart from a chart repository", map[string]string{
			"deploy/kustomization.yaml": "helmCharts:\n- name: minecraft\n  repo: https://charts.example.invalid/minecraft\n  version: 3.1.3\n  releaseName: moria\n  valuesInline: {a: [1, {b: c}]}\n",
		}, "deploy", "deploy/kustomization.yaml", []string{"--repo", "chart:"}},
		{"a chart of the repository", withChart("deploy/charts/web", map[string]string{
			"deploy/kustomization.yaml": "resources: [cm.yaml]\nhelmCharts:\n- name: web\n  releaseName: web\n",
			"deploy/cm.yaml":            cmDoc("plain"),
		}), "deploy", "deploy/kustomization.yaml", []string{"harmony launch -f deploy/charts/web", "chart: deploy/charts/web"}},
		{"helmGlobals.chartHome", withChart("helm/web", map[string]string{
			"deploy/kustomization.yaml": "helmGlobals: {chartHome: ../helm}\nhelmCharts:\n- name: web\n",
		}), "deploy", "deploy/kustomization.yaml", []string{"harmony launch -f helm/web"}},
		{"a base's chart", withChart("base/charts/web", map[string]string{
			"overlay/kustomization.yaml": "resources: [../base]\n",
			"base/kustomization.yaml":    "helmCharts:\n- name: web\n",
		}), "overlay", "base/kustomization.yaml", []string{"harmony launch -f base/charts/web"}},
		{"the old helmChartInflationGenerator field", map[string]string{
			"kustomization.yaml": "helmChartInflationGenerator:\n- chartName: minecraft\n  chartRepoUrl: https://charts.example.invalid/minecraft\n",
		}, ".", "kustomization.yaml", []string{"chart:"}},
		{"a HelmChartInflationGenerator generator", map[string]string{
			"kustomization.yaml": "generators: [inflate.yaml]\n",
			"inflate.yaml":       "apiVersion: builtin\nkind: HelmChartInflationGenerator\nmetadata: {name: web}\nname: web\n",
		}, ".", "kustomization.yaml", []string{"chart:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root := tree(t, tt.files)
			objs, _, err := renderKustomization(t, root, tt.dir)
			if !errors.Is(err, launch.ErrKustomizeHelm) {
				t.Fatalf("rendered %d objects, error %v; want ErrKustomizeHelm", len(objs), err)
			}
			if !strings.Contains(err.Error(), tt.file) || !strings.Contains(err.Error(), "helmCharts") {
				t.Errorf("error %q does not name %s and helmCharts", err, tt.file)
			}
			hints := strings.Join(hint.Of(err), "\n")
			t.Logf("refused: %v\n%s", err, hints)
			for _, w := range tt.wantHints {
				if !strings.Contains(hints, w) {
					t.Errorf("hints do not say %q:\n%s", w, hints)
				}
			}
		})
	}
}

// A kustomization whose base lies outside the repository is refused naming the kustomization,
// the entry and what to do; kustomize's error chain is not what the user reads.
func TestKustomizeBaseOutsideTheProject(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		files    map[string]string
		dir      string
		file     string
		entry    string
		wantHint string
	}{
		{"a git repository's overlay", map[string]string{
			".git/HEAD":                     "ref: refs/heads/main\n",
			"deploy/dev/kustomization.yaml": "resources: [../../../shared/base]\n",
		}, "deploy/dev", "deploy/dev/kustomization.yaml", "../../../shared/base", "copy"},
		{"a base's component", map[string]string{
			".git/HEAD":               "ref: refs/heads/main\n",
			"dev/kustomization.yaml":  "resources: [../base]\n",
			"base/kustomization.yaml": "resources: [cm.yaml]\ncomponents: [../../shared/base]\n",
			"base/cm.yaml":            cmDoc("a"),
		}, "dev", "base/kustomization.yaml", "../../shared/base", "copy"},
		{"a patch file", map[string]string{
			".git/HEAD":          "ref: refs/heads/main\n",
			"kustomization.yaml": "resources: [cm.yaml]\npatches:\n- path: ../shared/patch.yaml\n",
			"cm.yaml":            cmDoc("a"),
		}, ".", "kustomization.yaml", "../shared/patch.yaml", "copy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root := tree(t, tt.files)
			shared := filepath.Join(filepath.Dir(root), "shared")
			for name, body := range map[string]string{"base/kustomization.yaml": "resources: [cm.yaml]\n", "base/cm.yaml": cmDoc("b"), "patch.yaml": cmDoc("a")} {
				p := filepath.Join(shared, filepath.FromSlash(name))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			objs, _, err := renderKustomization(t, root, tt.dir)
			if !errors.Is(err, launch.ErrOutside) {
				t.Fatalf("rendered %d objects, error %v; want ErrOutside", len(objs), err)
			}
			msg := err.Error()
			t.Logf("refused: %v\n%s", err, strings.Join(hint.Of(err), "\n"))
			for _, w := range []string{tt.file, tt.entry, "outside"} {
				if !strings.Contains(msg, w) {
					t.Errorf("error does not say %q:\n%s", w, msg)
				}
			}
			if strings.Contains(msg, "accumulat") {
				t.Errorf("kustomize's error chain reached the user:\n%s", msg)
			}
			if hints := strings.Join(hint.Of(err), "\n"); !strings.Contains(hints, tt.wantHint) || !strings.Contains(hints, root) {
				t.Errorf("hints do not say %q and name the repository %s:\n%s", tt.wantHint, root, hints)
			}
		})
	}

	// Without git or harmony.yaml, the project is the folder launched: launching an overlay
	// from its own folder leaves its base outside. The hint names the folder holding both.
	t.Run("an overlay launched from its own folder", func(t *testing.T) {
		t.Parallel()
		repo := tree(t, map[string]string{
			"k8s/overlays/dev/kustomization.yaml": "resources: [../../base]\n",
			"k8s/base/kustomization.yaml":         "resources: [cm.yaml]\n",
			"k8s/base/cm.yaml":                    cmDoc("a"),
		})
		dev := filepath.Join(repo, "k8s", "overlays", "dev")
		objs, err := discoverAndRender(t, dev, launch.RenderOptions{})
		if !errors.Is(err, launch.ErrOutside) {
			t.Fatalf("rendered %d objects, error %v; want ErrOutside", len(objs), err)
		}
		if !strings.Contains(err.Error(), "../../base") {
			t.Errorf("error does not name the entry: %v", err)
		}
		hints := strings.Join(hint.Of(err), "\n")
		t.Logf("refused: %v\n%s", err, hints)
		if !strings.Contains(hints, filepath.Join(repo, "k8s")) || !strings.Contains(hints, "harmony.yaml there saying manifests: [overlays/dev]") {
			t.Errorf("hints do not name %s and a harmony.yaml naming overlays/dev:\n%s", filepath.Join(repo, "k8s"), hints)
		}
	})

	// A symbolic link out of the project is refused by the confined view inside kustomize:
	// the error is still recognisable and says which path.
	t.Run("a link out of the project", func(t *testing.T) {
		t.Parallel()
		root := tree(t, map[string]string{".git/HEAD": "ref: refs/heads/main\n", "kustomization.yaml": "resources: [base]\n"})
		shared := filepath.Join(filepath.Dir(root), "shared")
		if err := os.MkdirAll(shared, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(shared, "kustomization.yaml"), []byte("resources: []\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(shared, filepath.Join(root, "base")); err != nil {
			t.Skip(err)
		}
		objs, _, err := renderKustomization(t, root, ".")
		if !errors.Is(err, launch.ErrOutside) {
			t.Fatalf("rendered %d objects, error %v; want ErrOutside", len(objs), err)
		}
		t.Logf("refused: %v\n%s", err, strings.Join(hint.Of(err), "\n"))
		if msg := err.Error(); !strings.Contains(msg, `"base"`) || strings.Contains(msg, "accumulat") {
			t.Errorf("error does not name the link plainly:\n%s", msg)
		}
		if len(hint.Of(err)) == 0 {
			t.Error("no hint")
		}
	})
}

// kustomize's own warnings (deprecated fields, written to stderr; the log package's lines)
// come back as warnings naming the kustomization, once each, and nothing reaches stderr.
// Not parallel: it reads the process's stderr.
func TestKustomizeWarnings(t *testing.T) {
	root := tree(t, map[string]string{
		"kustomization.yaml": "resources: [dev, prod]\n",
		"dev/kustomization.yaml": "bases: [../base]\ncommonLabels: {env: dev}\nnamePrefix: dev-\n" +
			"vars:\n- name: UNUSED\n  objref: {kind: ConfigMap, name: a, apiVersion: v1}\n  fieldref: {fieldpath: metadata.name}\n",
		"prod/kustomization.yaml": "resources: [../base]\nnamePrefix: prod-\n",
		"base/kustomization.yaml": "resources: [cm.yaml]\npatchesStrategicMerge: [patch.yaml]\n",
		"base/cm.yaml":            cmDoc("a"),
		"base/patch.yaml":         "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {k: v}\n",
	})
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := os.Stderr
	os.Stderr = w
	logOut, logFlags := log.Writer(), log.Flags()
	_, warnings, rerr := renderKustomization(t, root, ".")
	os.Stderr = stderr
	w.Close()
	leaked, _ := io.ReadAll(r)
	r.Close()
	if rerr != nil {
		t.Fatal(rerr)
	}
	if len(leaked) > 0 {
		t.Errorf("kustomize wrote to stderr:\n%s", leaked)
	}
	if log.Writer() != logOut || log.Flags() != logFlags {
		t.Error("the log package's output or flags were not restored")
	}
	all := strings.Join(warnings, "\n")
	t.Logf("warnings:\n%s", all)
	for _, want := range []string{"dev/kustomization.yaml", "bases", "commonLabels", "base/kustomization.yaml", "patchesStrategicMerge", "vars", "UNUSED"} {
		if !strings.Contains(all, want) {
			t.Errorf("warnings do not say %q", want)
		}
	}
	if n := strings.Count(all, "base/kustomization.yaml: deprecated"); n != 1 {
		t.Errorf("the base's deprecated fields are said %d times (it is built twice), want once", n)
	}
	if strings.Contains(all, "# Warning") {
		t.Error("kustomize's own words were passed on as they are")
	}
}
