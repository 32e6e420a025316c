package launch_test

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/NationTech/harmony-agent/internal/hint"
	"github.com/NationTech/harmony-agent/launch"
)

// An app is a repository plus a path: the folder given when it holds something deployable,
// else the nearest such folder above it; the usual manifests folders (and what is in them)
// belong to the app above them.
func TestResolveFindsOneProjectFromAnyFolder(t *testing.T) {
	t.Parallel()
	cm := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n"
	tests := []struct {
		name     string
		files    map[string]string
		from     string // folder launch is pointed at, relative to the tree
		wantRoot string
		wantNS   string
		wantApp  string // the app's path in the repository; "" is "."
	}{
		{"an app folder in a repository", map[string]string{"shop/.git/HEAD": "x", "shop/svc/api/x.go": "", "shop/svc/api/harmony.yaml": "manifests: [x]\n"},
			"shop/svc/api", "shop", "shop-svc-api", "svc/api"},
		{"below an app folder", map[string]string{"shop/.git/HEAD": "x", "shop/svc/api/src/x.go": "", "shop/svc/api/k8s/a.yaml": cm},
			"shop/svc/api/src", "shop", "shop-svc-api", "svc/api"},
		{"a usual folder belongs to the app above", map[string]string{"shop/.git/HEAD": "x", "shop/svc/api/k8s/a.yaml": cm},
			"shop/svc/api/k8s", "shop", "shop-svc-api", "svc/api"},
		{"git worktree (.git file)", map[string]string{"Web_App/.git": "gitdir: /elsewhere\n", "Web_App/deploy/a.yaml": cm},
			"Web_App/deploy", "Web_App", "web-app", ""},
		{"folder holding harmony.yaml", map[string]string{"mono/harmony.yaml": "manifests: [k8s]\nnamespace: Store\n", "mono/k8s/a.yaml": cm},
			"mono/k8s", "mono", "", ""},
		{"harmony.yaml namespace", map[string]string{"mono/harmony.yaml": "manifests: [k8s]\nnamespace: store\n", "mono/k8s/a.yaml": cm},
			"mono/k8s", "mono", "store", ""},
		{"the folder given", map[string]string{"plain/k8s/a.yaml": cm},
			"plain/k8s", "plain/k8s", "k8s", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			base := repo(t, "tree", tt.files)
			p, err := launch.Resolve(launch.Selection{Dir: filepath.Join(base, tt.from)})
			if tt.wantNS == "" {
				if err == nil || !strings.Contains(err.Error(), `namespace "Store"`) {
					t.Fatalf("want an invalid namespace refused, got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			wantApp := tt.wantApp
			if wantApp == "" {
				wantApp = "."
			}
			if p.Root != filepath.Join(base, tt.wantRoot) || p.Namespace != tt.wantNS || p.AppPath != wantApp {
				t.Fatalf("root %s namespace %s app %s, want %s %s %s", p.Root, p.Namespace, p.AppPath, tt.wantRoot, tt.wantNS, wantApp)
			}
			app, err := launch.Resolve(launch.Selection{Dir: p.App})
			if err != nil || app.InventoryID != p.InventoryID {
				t.Fatalf("from the app's folder: %v %v, want the same inventory id %s", app, err, p.InventoryID)
			}
			if wantApp != "." {
				root, err := launch.Resolve(launch.Selection{Dir: p.Root})
				if err != nil || root.InventoryID == p.InventoryID || root.Namespace == p.Namespace {
					t.Fatalf("the repository's own app shares the app's identity: %v %v", root, err)
				}
			}
		})
	}
}

var label = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

func TestInventoryIDIsUniqueToTheProject(t *testing.T) {
	t.Parallel()
	a := repo(t, "app", map[string]string{".git/HEAD": "x"})
	b := repo(t, "app", map[string]string{".git/HEAD": "x"}) // same name, elsewhere
	long := repo(t, strings.Repeat("very-long-name-", 8), map[string]string{".git/HEAD": "x"})
	ids := map[string]string{}
	for _, sel := range []launch.Selection{{Dir: a}, {Dir: b}, {Dir: a, Namespace: "other"}, {Dir: long}} {
		p, err := launch.Resolve(sel)
		if err != nil {
			t.Fatal(err)
		}
		if !label.MatchString(p.InventoryID) || !strings.HasPrefix(p.InventoryID, p.Name[:min(len(p.Name), 10)]) {
			t.Errorf("inventory id %q: not a label value starting with the project's name", p.InventoryID)
		}
		key := sel.Dir + " -n " + sel.Namespace
		for k, id := range ids {
			if id == p.InventoryID {
				t.Errorf("%s and %s share inventory id %s", k, key, id)
			}
		}
		ids[key] = p.InventoryID
	}
}

func TestResolveManifestsChoice(t *testing.T) {
	t.Parallel()
	base := repo(t, "shop", map[string]string{".git/HEAD": "x", "k8s/dev/a.yaml": "", "src/x.go": ""})
	outside := repo(t, "other", map[string]string{"a.yaml": ""})
	for _, tt := range []struct {
		dir, f, want string
	}{
		{"", "k8s/dev", "k8s/dev"},
		{"src", "k8s/dev", "k8s/dev"}, // relative to the root
		{"k8s", "dev", "k8s/dev"},     // relative to the folder
		{"k8s", "dev/a.yaml", "k8s/dev/a.yaml"},
	} {
		p, err := launch.Resolve(launch.Selection{Dir: filepath.Join(base, tt.dir), Manifests: []string{tt.f}})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Manifests) != 1 || p.Manifests[0] != filepath.Join(base, tt.want) {
			t.Errorf("from %q, -f %s: %v, want %s", tt.dir, tt.f, p.Manifests, tt.want)
		}
	}
	for _, f := range []string{"../other/a.yaml", filepath.Join(outside, "a.yaml")} {
		_, err := launch.Resolve(launch.Selection{Dir: base, Manifests: []string{f}})
		if err == nil || !strings.Contains(err.Error(), "outside the project") || len(hint.Of(err)) == 0 {
			t.Errorf("-f %s: %v, want it refused as outside the project", f, err)
		}
	}
	if _, err := launch.Resolve(launch.Selection{Dir: filepath.Join(base, "k8s/dev/a.yaml")}); err == nil {
		t.Error("a file as the folder was accepted")
	}
}
