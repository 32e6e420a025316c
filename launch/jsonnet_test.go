package launch_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/NationTech/harmony-agent/internal/hint"
	"github.com/NationTech/harmony-agent/launch"
)

// jsonnetCM is a Jsonnet ConfigMap named by the expression name.
func jsonnetCM(name string) string {
	return "{apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: " + name + "}}"
}

// renderJsonnet discovers root (as launch does) and renders it.
func renderJsonnet(t *testing.T, root string) ([]launch.Object, error) {
	t.Helper()
	proj, err := launch.Resolve(launch.Selection{Dir: root})
	if err != nil {
		t.Fatal(err)
	}
	src, err := proj.Discover()
	if err != nil {
		t.Fatal(err)
	}
	return launch.Render(t.Context(), src, launch.RenderOptions{})
}

func names(objs []launch.Object) string {
	var out []string
	for _, o := range objs {
		out = append(out, o.GetName())
	}
	return strings.Join(out, ",")
}

// Issue 31: a Jsonnet app is rendered with go-jsonnet: harmony.yaml's jsonnet block gives its
// top-level arguments, external variables and library folders; an import of a library inside the
// repository is read.
func TestJsonnetRender(t *testing.T) {
	t.Parallel()
	root := tree(t, map[string]string{
		"harmony.yaml": "jsonnet:\n  tlas: {env: dev, replicas: '2'}\n  extVars: {team: web}\n  tlaCode: {debug: 'true'}\n  libs: [vendor]\n",
		"deploy/main.jsonnet": "local cm = import 'lib/cm.libsonnet';\nlocal k = import 'k.libsonnet';\n" +
			"function(env, replicas, debug=false) [cm.cm('app-' + env + '-' + replicas), k.cm(std.extVar('team')), if debug then cm.cm('debug')]\n",
		"deploy/lib/cm.libsonnet": "{ cm(name):: " + jsonnetCM("name") + " }\n",
		"vendor/k.libsonnet":      "{ cm(name):: " + jsonnetCM("'vendored-' + name") + " }\n",
		"deploy/notes.json":       `{"note": "data for the programs, not a manifest"}`,
	})
	objs, err := renderJsonnet(t, root)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(objs); got != "app-dev-2,vendored-web,debug" {
		t.Fatalf("rendered %s", got)
	}
	if objs[0].Origin != filepath.Join("deploy", "main.jsonnet") {
		t.Fatalf("origin %q, want the program's file", objs[0].Origin)
	}
}

// A program's value: one object, a map of objects (nested, as kubecfg and Argo CD read it), an
// array (nested arrays flattened, nulls dropped) or a List.
func TestJsonnetOutputs(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"one object":     jsonnetCM("'one'"),
		"map of objects": "{ web: { config: " + jsonnetCM("'b'") + ", other: " + jsonnetCM("'c'") + " }, a: " + jsonnetCM("'a'") + " }",
		"nested arrays":  "[[" + jsonnetCM("'a'") + ", null], [[" + jsonnetCM("'b'") + "]]]",
		"a List":         "{apiVersion: 'v1', kind: 'List', items: [" + jsonnetCM("'a'") + ", " + jsonnetCM("'b'") + "]}",
		"nothing":        "[]",
	}
	wants := map[string]string{"one object": "one", "map of objects": "a,b,c", "nested arrays": "a,b", "a List": "a,b", "nothing": ""}
	for name, program := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			root := tree(t, map[string]string{"app.jsonnet": program})
			objs, err := renderJsonnet(t, root)
			if err != nil {
				t.Fatal(err)
			}
			if got := names(objs); got != wants[name] {
				t.Fatalf("rendered %q, want %q", got, wants[name])
			}
		})
	}
}

func TestJsonnetRefusesWhatIsNotObjects(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"a string":            `"hello"`,
		"a number in a list":  "[" + jsonnetCM("'a'") + ", 5]",
		"null":                "null",
		"a string in a map":   "{ a: " + jsonnetCM("'a'") + ", b: 'text' }",
		"an object with kind": "{kind: 'ConfigMap', metadata: {name: 'x'}}",
	}
	wantMsg := map[string]string{
		"a string":            "app.jsonnet: the program's value is a string",
		"a number in a list":  "app.jsonnet: [1] is a number",
		"null":                "app.jsonnet: the program's value is null",
		"a string in a map":   "app.jsonnet: .b is a string",
		"an object with kind": "missing apiVersion",
	}
	for name, program := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			root := tree(t, map[string]string{"app.jsonnet": program})
			_, err := renderJsonnet(t, root)
			if !errors.Is(err, launch.ErrBadManifest) || !strings.Contains(err.Error(), wantMsg[name]) {
				t.Fatalf("error %v, want ErrBadManifest saying %q", err, wantMsg[name])
			}
		})
	}
}

// import, importstr and importbin read inside the repository only: an absolute path, a ..
// leaving it and a library folder outside it are refused, naming what was refused.
func TestJsonnetImportsStayInsideTheProject(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		files map[string]string
		want  string
	}{
		"import ../outside": {map[string]string{"app.jsonnet": "import '../outside.libsonnet'"},
			`import "../outside.libsonnet"`},
		"importstr /etc/passwd": {map[string]string{"app.jsonnet": "{apiVersion: 'v1', kind: 'ConfigMap', metadata: {name: 'x'}, data: {p: importstr '/etc/passwd'}}"},
			`import "/etc/passwd"`},
		"importbin from a library": {map[string]string{"app.jsonnet": "(import 'lib/x.libsonnet')", "lib/x.libsonnet": "importbin '../../outside.libsonnet'"},
			`import "../../outside.libsonnet"`},
		"a library folder outside": {map[string]string{"harmony.yaml": "jsonnet: {libs: [../]}\n", "app.jsonnet": "import 'outside.libsonnet'"},
			`jsonnet.libs`},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			root := tree(t, tt.files)
			writeOutside(t, root)
			objs, err := renderJsonnet(t, root)
			if !errors.Is(err, launch.ErrOutside) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "outside the project") {
				t.Fatalf("rendered %d objects, error %v; want ErrOutside naming %q", len(objs), err, tt.want)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Fatalf("the error shows the file outside: %v", err)
			}
		})
	}
}

// An import that is nowhere says where it was looked for, and how to name a library folder.
func TestJsonnetImportNotFound(t *testing.T) {
	t.Parallel()
	root := tree(t, map[string]string{"app.jsonnet": "import 'k.libsonnet'"})
	_, err := renderJsonnet(t, root)
	if !errors.Is(err, launch.ErrBadManifest) || !strings.Contains(err.Error(), `import "k.libsonnet"`) ||
		!strings.Contains(strings.Join(hint.Of(err), "\n"), "libs: [") {
		t.Fatalf("error %v (hints %q)", err, hint.Of(err))
	}
}

// A program that recurses without end stops at go-jsonnet's stack limit with the render-limit
// error (nothing is applied), never a crash.
func TestJsonnetRecursionIsARenderLimit(t *testing.T) {
	t.Parallel()
	for _, program := range []string{
		"local f(n) = f(n + 1) + 1; f(0)",
		"local f(n) = [f(n + 1)]; f(0)",
		"local f(n) = { a: f(n + 1) }; f(0)",
	} {
		root := tree(t, map[string]string{"app.jsonnet": program})
		_, err := renderJsonnet(t, root)
		if !errors.Is(err, launch.ErrRenderLimit) || !strings.Contains(err.Error(), "app.jsonnet") {
			t.Fatalf("%s: error %v, want the render limit naming the file", program, err)
		}
	}
}

// Discovery: a folder of .jsonnet files is launched (its .libsonnet libraries are not entry
// points, nor its .json data); -f names a program or its folder; a mix is ambiguous, listing
// every candidate with its command.
func TestDiscoverJsonnet(t *testing.T) {
	t.Parallel()
	lib := "{ x: 1 }\n"
	tests := []struct {
		name    string
		files   map[string]string
		f       []string
		want    []string
		wantErr error
		hints   []string
	}{
		{name: "usual folder", files: map[string]string{"deploy/main.jsonnet": jsonnetCM("'a'"), "deploy/lib.libsonnet": lib, "deploy/jsonnetfile.json": "{}"},
			want: []string{"deploy/main.jsonnet"}},
		{name: "root", files: map[string]string{"main.jsonnet": jsonnetCM("'a'"), "other.jsonnet": jsonnetCM("'b'"), "lib/k.libsonnet": lib, "vendor/x/main.jsonnet": "{}"},
			want: []string{"main.jsonnet", "other.jsonnet"}},
		{name: "a folder elsewhere", files: map[string]string{"jsonnet/app.jsonnet": jsonnetCM("'a'"), "jsonnet/lib/k.libsonnet": lib, "README.md": "hi"},
			want: []string{"jsonnet/app.jsonnet"}},
		{name: "-f a program", files: map[string]string{"ops/a.jsonnet": jsonnetCM("'a'"), "ops/b.jsonnet": jsonnetCM("'b'")}, f: []string{"ops/b.jsonnet"},
			want: []string{"ops/b.jsonnet"}},
		{name: "-f its folder", files: map[string]string{"ops/a.jsonnet": jsonnetCM("'a'"), "ops/x.libsonnet": lib}, f: []string{"ops"},
			want: []string{"ops/a.jsonnet"}},
		{name: "harmony.yaml names it", files: map[string]string{"harmony.yaml": "manifests: [ops/b.jsonnet]\n", "ops/a.jsonnet": "{}", "ops/b.jsonnet": jsonnetCM("'b'")},
			want: []string{"ops/b.jsonnet"}},
		{name: "two environments", files: map[string]string{"environments/dev/main.jsonnet": "{}", "environments/prod/main.jsonnet": "{}", "lib/k.libsonnet": lib},
			wantErr: launch.ErrAmbiguous, hints: []string{" -f environments/dev", " -f environments/prod"}},
		{name: "two apps", files: map[string]string{"ops/a/main.jsonnet": "{}", "ops/b/main.jsonnet": "{}"},
			wantErr: launch.ErrAmbiguous, hints: []string{"/ops/a", "/ops/b"}},
		{name: "jsonnet and a kustomization", files: map[string]string{"environments/dev/main.jsonnet": "{}", "kustomize/kustomization.yaml": "resources: [a.yaml]\n", "kustomize/a.yaml": cmDoc("a")},
			wantErr: launch.ErrAmbiguous, hints: []string{" -f environments/dev", " -f kustomize"}},
		{name: "jsonnet and a chart", files: map[string]string{"jsonnet/main.jsonnet": "{}", "charts/c/Chart.yaml": "apiVersion: v2\nname: c\nversion: 0.1.0\n"},
			wantErr: launch.ErrAmbiguous, hints: []string{"/jsonnet", " -f charts/c"}},
		{name: "jsonnet and a usual folder", files: map[string]string{"main.jsonnet": "{}", "k8s/a.yaml": cmDoc("a")},
			wantErr: launch.ErrAmbiguous, hints: []string{" -f .", " -f k8s", "Jsonnet programs and other manifests"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root := tree(t, tt.files)
			proj, err := launch.Resolve(launch.Selection{Dir: root, Manifests: tt.f})
			if err != nil {
				t.Fatal(err)
			}
			src, err := proj.Discover()
			if tt.wantErr != nil {
				hints := strings.Join(append(hint.Of(err), fmt.Sprint(err)), "\n")
				for _, h := range tt.hints {
					if !errors.Is(err, tt.wantErr) || !strings.Contains(hints, h) {
						t.Fatalf("error %v (hints %q), want %v with a hint %q", err, hints, tt.wantErr, h)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range src.Jsonnet {
				r, _ := filepath.Rel(root, p)
				got = append(got, filepath.ToSlash(r))
			}
			if !slices.Equal(got, tt.want) || len(src.Files) > 0 || len(src.Kustomizations) > 0 {
				t.Fatalf("jsonnet %v, files %v, kustomizations %v; want jsonnet %v", got, src.Files, src.Kustomizations, tt.want)
			}
			if src.Reason == "" {
				t.Fatal("no reason given")
			}
		})
	}
}

// writeOutside writes a file beside the project, outside it, that no import may read.
func writeOutside(t *testing.T, root string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(filepath.Dir(root), "outside.libsonnet"), []byte("'s3cr3t-token'\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A program's error names the program, and the place in a library it imports; a missing
// top-level argument or external variable says where to give it.
func TestJsonnetErrorsSayWhere(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		files      map[string]string
		want, hint string
	}{
		"error in a library": {map[string]string{"app.jsonnet": "(import 'lib/x.libsonnet').f()", "lib/x.libsonnet": "{ f():: error 'boom' }"},
			"jsonnet app.jsonnet: lib/x.libsonnet:1:9-21: boom", ""},
		"syntax":             {map[string]string{"app.jsonnet": "{ a: \n"}, "jsonnet app.jsonnet:2:1 Unexpected end of file", ""},
		"a missing argument": {map[string]string{"app.jsonnet": "function(env) {}"}, "Missing argument: env", "jsonnet: {tlas: {env: VALUE}}"},
		"a missing variable": {map[string]string{"app.jsonnet": "std.extVar('team')"}, "app.jsonnet:1:1-19: Undefined external variable: team", "jsonnet: {extVars: {team: VALUE}}"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := renderJsonnet(t, tree(t, tt.files))
			if !errors.Is(err, launch.ErrBadManifest) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(strings.Join(hint.Of(err), "\n"), tt.hint) {
				t.Fatalf("error %v (hints %q), want it saying %q and a hint %q", err, hint.Of(err), tt.want, tt.hint)
			}
		})
	}
}
