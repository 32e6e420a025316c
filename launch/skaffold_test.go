package launch_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/NationTech/harmony-agent/internal/hint"
	"github.com/NationTech/harmony-agent/launch"
)

const skaffoldV4 = `apiVersion: skaffold/v4beta11
kind: Config
metadata: {name: app}
build:
  artifacts:
  - image: frontend
    context: src/frontend
  - image: backend
    context: src/backend
    docker:
      dockerfile: build/Dockerfile
      target: run
      buildArgs: {MODE: prod}
manifests:
  kustomize:
    paths: [kubernetes-manifests]
deploy:
  kubectl: {}
profiles:
- name: raw
  manifests:
    rawYaml: [extra/*]
  patches:
  - {op: remove, path: /manifests/kustomize}
- name: debug
  patches:
  - {op: replace, path: /build/artifacts/0/context, value: src/frontend-debug}
`

const kustomization = "resources: [deploy.yaml]\n"

func skaffoldRepo(t *testing.T, extra map[string]string) string {
	files := map[string]string{
		"skaffold.yaml":                           skaffoldV4,
		"src/frontend/Dockerfile":                 "FROM scratch\n",
		"src/frontend-debug/Dockerfile":           "FROM scratch\n",
		"src/backend/build/Dockerfile":            "FROM scratch\n",
		"kubernetes-manifests/kustomization.yaml": kustomization,
		"kubernetes-manifests/deploy.yaml":        cmDoc("from-kustomize"),
		"extra/one.yaml":                          cmDoc("one"),
		"extra/two.yml":                           cmDoc("two"),
		"k8s/unused.yaml":                         cmDoc("folder"),
	}
	for k, v := range extra {
		if v == "" {
			delete(files, k)
		} else {
			files[k] = v
		}
	}
	return tree(t, files)
}

func TestSkaffoldManifestsAndArtifacts(t *testing.T) {
	root := skaffoldRepo(t, nil)
	src, err := launch.Discover(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{filepath.Join(root, "kubernetes-manifests")}; !reflect.DeepEqual(src.Kustomizations, want) || len(src.Files) != 0 {
		t.Errorf("kustomizations %v files %v, want %v (skaffold.yaml preferred over the k8s/ folder)", src.Kustomizations, src.Files, want)
	}
	if !strings.Contains(src.Reason, "skaffold.yaml") {
		t.Errorf("reason %q does not name skaffold.yaml", src.Reason)
	}
	want := []launch.ImageArtifact{
		{Image: "frontend", Context: "src/frontend"},
		{Image: "backend", Context: "src/backend", Dockerfile: "build/Dockerfile", Target: "run", BuildArgs: map[string]string{"MODE": "prod"}},
	}
	if !reflect.DeepEqual(src.Images, want) {
		t.Errorf("images %+v, want %+v", src.Images, want)
	}
}

func TestSkaffoldProfiles(t *testing.T) {
	root := skaffoldRepo(t, nil)
	p, err := launch.Resolve(launch.Selection{Dir: root, Profile: "raw"})
	if err != nil {
		t.Fatal(err)
	}
	src, err := p.Discover()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{filepath.Join(root, "extra/one.yaml"), filepath.Join(root, "extra/two.yml")}; !reflect.DeepEqual(src.Files, want) || len(src.Kustomizations) != 0 {
		t.Errorf("profile raw: files %v kustomizations %v, want %v and none", src.Files, src.Kustomizations, want)
	}
	if !strings.Contains(src.Reason, "profile raw") {
		t.Errorf("reason %q does not name the profile", src.Reason)
	}
	p.Profile = "debug"
	if src, err = p.Discover(); err != nil {
		t.Fatal(err)
	}
	if src.Images[0].Context != "src/frontend-debug" {
		t.Errorf("profile debug's patch: context %q", src.Images[0].Context)
	}
	p.Profile = "nope"
	_, err = p.Discover()
	if !errors.Is(err, launch.ErrUnknownProfile) || !strings.Contains(errText(err), "debug, raw") {
		t.Errorf("unknown profile: %v (hints: %q), want ErrUnknownProfile naming debug, raw", err, errText(err))
	}
}

func TestSkaffoldRequires(t *testing.T) {
	root := tree(t, map[string]string{
		"skaffold.yaml":              "apiVersion: skaffold/v4beta6\nkind: Config\nrequires:\n- path: services/api\n  configs: [api]\n---\napiVersion: skaffold/v4beta6\nkind: Config\nmetadata: {name: web}\nbuild: {artifacts: [{image: web, context: web}]}\nmanifests: {rawYaml: [web.yaml]}\n",
		"services/api/skaffold.yaml": "apiVersion: skaffold/v2beta29\nkind: Config\nmetadata: {name: api}\nbuild: {artifacts: [{image: api}]}\ndeploy: {kubectl: {manifests: [k8s/*.yaml]}}\n---\napiVersion: skaffold/v2beta29\nkind: Config\nmetadata: {name: other}\nbuild: {artifacts: [{image: other, jib: {}}]}\n",
		"services/api/Dockerfile":    "FROM scratch\n",
		"services/api/k8s/api.yaml":  cmDoc("api"),
		"web/Dockerfile":             "FROM scratch\n",
		"web.yaml":                   cmDoc("web"),
	})
	src, err := launch.Discover(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{filepath.Join(root, "services/api/k8s/api.yaml"), filepath.Join(root, "web.yaml")}; !reflect.DeepEqual(src.Files, want) {
		t.Errorf("files %v, want %v", src.Files, want)
	}
	if want := []launch.ImageArtifact{{Image: "api", Context: "services/api"}, {Image: "web", Context: "web"}}; !reflect.DeepEqual(src.Images, want) {
		t.Errorf("images %+v, want %+v (config other, not required, is not read)", src.Images, want)
	}
}

// A repository's skaffold.yaml never makes harmony read outside the repository.
func TestSkaffoldStaysInsideTheProject(t *testing.T) {
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "skaffold.yaml"), []byte("apiVersion: skaffold/v4beta6\nkind: Config\nmanifests: {rawYaml: [secret.yaml]}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "secret.yaml"), []byte(cmDoc("secret")), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outside, "Dockerfile"), []byte("FROM scratch\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	head := "apiVersion: skaffold/v4beta6\nkind: Config\n"
	for name, c := range map[string]struct {
		skaffold string
		links    map[string]string
	}{
		"requires ../../etc":    {skaffold: head + "requires: [{path: ../../etc}]\n"},
		"requires absolute":     {skaffold: head + "requires: [{path: " + outside + "}]\n"},
		"requires through link": {skaffold: head + "requires: [{path: ext}]\n", links: map[string]string{"ext": outside}},
		"rawYaml glob ..":       {skaffold: head + "manifests: {rawYaml: ['../*/secret.yaml']}\n"},
		"rawYaml through link":  {skaffold: head + "manifests: {rawYaml: ['ext/*.yaml']}\n", links: map[string]string{"ext": outside}},
		"rawYaml file link":     {skaffold: head + "manifests: {rawYaml: ['k8s/*.yaml']}\n", links: map[string]string{"k8s/s.yaml": filepath.Join(outside, "secret.yaml")}},
		"context ..":            {skaffold: head + "build: {artifacts: [{image: a, context: ../..}]}\n"},
		"context symlinked out": {skaffold: head + "build: {artifacts: [{image: a, context: src/a}]}\n", links: map[string]string{"src/a": outside}},
		"dockerfile ..":         {skaffold: head + "build: {artifacts: [{image: a, context: src, docker: {dockerfile: ../../Dockerfile}}]}\n"},
		"dockerfile link":       {skaffold: head + "build: {artifacts: [{image: a, context: src, docker: {dockerfile: D}}]}\n", links: map[string]string{"src/D": filepath.Join(outside, "Dockerfile")}},
		"kustomize path ..":     {skaffold: head + "manifests: {kustomize: {paths: [../x]}}\n"},
		"chartPath ..":          {skaffold: head + "manifests: {helm: {releases: [{name: r, chartPath: ../chart}]}}\n"},
	} {
		t.Run(name, func(t *testing.T) {
			root := tree(t, map[string]string{"skaffold.yaml": c.skaffold, "src/x": "", "k8s/ok.yaml": cmDoc("ok")})
			for link, target := range c.links {
				if err := os.MkdirAll(filepath.Dir(filepath.Join(root, link)), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
					t.Fatal(err)
				}
			}
			src, err := launch.Discover(root, nil)
			if !errors.Is(err, launch.ErrOutside) {
				t.Fatalf("got %v (source %+v), want ErrOutside", err, src)
			}
		})
	}
}

func TestSkaffoldUnsupported(t *testing.T) {
	head := "apiVersion: skaffold/v4beta6\nkind: Config\nmanifests: {rawYaml: [k8s/*.yaml]}\n"
	for name, c := range map[string]struct{ skaffold, names string }{
		"jib":          {head + "build: {artifacts: [{image: a, context: src}, {image: java, jib: {}}]}\n", `artifact "java": builder jib`},
		"ko":           {head + "build: {artifacts: [{image: gosvc, ko: {}}]}\n", `artifact "gosvc": builder ko`},
		"bazel":        {head + "build: {artifacts: [{image: b, bazel: {target: //x}}]}\n", "builder bazel"},
		"buildpacks":   {head + "build: {artifacts: [{image: b, buildpacks: {builder: x}}]}\n", "builder buildpacks"},
		"custom":       {head + "build: {artifacts: [{image: b, custom: {buildCommand: ./b.sh}}]}\n", "builder custom"},
		"kaniko":       {head + "build: {artifacts: [{image: b, kaniko: {}}]}\n", "builder kaniko"},
		"cluster":      {head + "build: {artifacts: [{image: a, context: src}], cluster: {}}\n", "build.cluster"},
		"remote chart": {head + "deploy: {helm: {releases: [{name: r, remoteChart: x/y}]}}\n", `helm release "r": a remote chart`},
		"git requires": {head + "requires: [{git: {repo: x}}]\n", "remote config"},
		"old schema":   {"apiVersion: skaffold/v1\nkind: Config\n", `apiVersion "skaffold/v1"`},
	} {
		t.Run(name, func(t *testing.T) {
			root := tree(t, map[string]string{"skaffold.yaml": c.skaffold, "src/Dockerfile": "FROM scratch\n", "k8s/ok.yaml": cmDoc("ok")})
			_, err := launch.Discover(root, nil)
			if !errors.Is(err, launch.ErrUnsupported) || !strings.Contains(err.Error(), c.names) {
				t.Fatalf("got %v, want ErrUnsupported naming %q", err, c.names)
			}
		})
	}
}

func TestHarmonyYAMLImages(t *testing.T) {
	root := tree(t, map[string]string{
		"harmony.yaml":            "images:\n- image: frontend\n  context: src/frontend\n  buildArgs: {A: b}\n- {image: api, context: api, dockerfile: Dockerfile.prod, target: final}\n",
		"src/frontend/Dockerfile": "FROM scratch\n",
		"api/Dockerfile.prod":     "FROM scratch\n",
		"manifests/app.yaml":      cmDoc("app"),
		// harmony.yaml's images replace skaffold.yaml's artifacts; its manifests are still used.
		"skaffold.yaml": "apiVersion: skaffold/v4beta6\nkind: Config\nbuild: {artifacts: [{image: other, context: api}]}\nmanifests: {rawYaml: [manifests/*.yaml]}\n",
	})
	src, err := launch.Discover(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []launch.ImageArtifact{
		{Image: "frontend", Context: "src/frontend", BuildArgs: map[string]string{"A": "b"}},
		{Image: "api", Context: "api", Dockerfile: "Dockerfile.prod", Target: "final"},
	}
	if !reflect.DeepEqual(src.Images, want) {
		t.Errorf("images %+v, want %+v", src.Images, want)
	}
	if len(src.Files) != 1 || !strings.Contains(src.Reason, "skaffold.yaml") {
		t.Errorf("files %v reason %q", src.Files, src.Reason)
	}
	for name, y := range map[string]string{
		"tagged name":           "images: [{image: 'frontend:v1', context: src/frontend}]\n",
		"missing context":       "images: [{image: frontend, context: nowhere}]\n",
		"outside":               "images: [{image: frontend, context: ../x}]\n",
		"twice":                 "images: [{image: frontend, context: src/frontend}, {image: frontend, context: api}]\n",
		"twice, spelt two ways": "images: [{image: frontend, context: src/frontend}, {image: library/frontend, context: api}]\n",
		"unknown field":         "images: [{image: frontend, context: src/frontend, builder: jib}]\n",
	} {
		if err := os.WriteFile(filepath.Join(root, "harmony.yaml"), []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := launch.Discover(root, nil); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// errText is an error with its hints.
func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error() + "\n" + strings.Join(hint.Of(err), "\n")
}

// Hostile repository: a profile's JSON patches copy part of the config into itself, doubling it
// each time (a "patch bomb"); the required config's profile is active without any --profile,
// through requires.activeProfiles. The growth is refused instead of filling memory.
func TestSkaffoldPatchBombRefused(t *testing.T) {
	var ops strings.Builder
	for i := range 16 {
		fmt.Fprintf(&ops, "  - {op: copy, from: /build/x, path: /build/x/k%d}\n", i)
	}
	root := tree(t, map[string]string{
		"skaffold.yaml":     "apiVersion: skaffold/v4beta6\nkind: Config\nrequires: [{path: sub, activeProfiles: [{name: boom}]}]\n",
		"sub/skaffold.yaml": "apiVersion: skaffold/v4beta6\nkind: Config\nbuild: {x: {pad: " + strings.Repeat("a", 1024) + "}}\nmanifests: {rawYaml: [k8s/*.yaml]}\nprofiles:\n- name: boom\n  patches:\n" + ops.String(),
		"sub/k8s/ok.yaml":   cmDoc("ok"),
	})
	src, err := launch.Discover(root, nil)
	if !errors.Is(err, launch.ErrTooLarge) {
		t.Fatalf("got %v (source %+v), want ErrTooLarge", err, src)
	}
}

// A chart's setValueTemplates naming the project's images get the bare image name, which launch
// rewrites to the built image; any other template is refused.
func TestSkaffoldHelmImageTemplates(t *testing.T) {
	chart := map[string]string{
		"charts/shop/Chart.yaml":                "apiVersion: v2\nname: shop\nversion: 0.1.0\n",
		"charts/shop/values.yaml":               "image: {repository: x, tag: y}\n",
		"charts/shop/templates/deployment.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: shop}\nspec:\n  selector: {matchLabels: {app: shop}}\n  template:\n    metadata: {labels: {app: shop}}\n    spec:\n      containers: [{name: app, image: \"{{ .Values.image.repository }}:{{ .Values.image.tag }}\"}]\n",
		"src/Dockerfile":                        "FROM scratch\n",
	}
	head := "apiVersion: skaffold/v4beta11\nkind: Config\nbuild: {artifacts: [{image: shop-web, context: src}]}\nmanifests:\n  helm:\n    releases:\n    - name: shop\n      chartPath: charts/shop\n      setValues: {replicas: 2}\n      setValueTemplates:\n"
	chart["skaffold.yaml"] = head + "        image.repository: \"{{.IMAGE_REPO_shop_web}}\"\n        image.tag: \"{{.IMAGE_TAG_shop_web}}@{{.IMAGE_DIGEST_shop_web}}\"\n"
	root := tree(t, chart)
	src, err := launch.Discover(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"replicas": float64(2), "image": map[string]any{"repository": "shop-web", "tag": "latest"}}
	if src.Chart == nil || !reflect.DeepEqual(src.Chart.Set, want) {
		t.Fatalf("chart %+v, want set %v", src.Chart, want)
	}
	for name, tmpl := range map[string]string{
		"environment": "        image.tag: \"{{.BUILD_ID}}\"\n",
		"other image": "        image.repository: \"{{.IMAGE_REPO_nothere}}\"\n",
	} {
		if err := os.WriteFile(filepath.Join(root, "skaffold.yaml"), []byte(head+tmpl), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := launch.Discover(root, nil); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// A harmony.yaml that lists only images leaves the manifests to discovery.
func TestHarmonyYAMLImagesOnly(t *testing.T) {
	root := tree(t, map[string]string{
		"harmony.yaml":   "images: [{image: web}]\n",
		"Dockerfile":     "FROM scratch\n",
		"k8s/app.yaml":   cmDoc("app"),
		"docs/notes.txt": "not a manifest",
	})
	src, err := launch.Discover(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(src.Files) != 1 || src.Reason != "the k8s/ folder" {
		t.Errorf("files %v reason %q, want the k8s/ folder", src.Files, src.Reason)
	}
	if want := []launch.ImageArtifact{{Image: "web", Context: "."}}; !reflect.DeepEqual(src.Images, want) {
		t.Errorf("images %+v, want %+v", src.Images, want)
	}
}

// A config may require configs of its own file by name (requires: [{configs: [app]}], no
// path), as a widely used multi-service demo does: both configs' artifacts and manifests are
// taken, each config once, whichever comes first in the file.
func TestSkaffoldRequiresSameFile(t *testing.T) {
	app := "apiVersion: skaffold/v4beta10\nkind: Config\nmetadata: {name: app}\nbuild: {artifacts: [{image: web, context: src/web}]}\nmanifests: {kustomize: {paths: [kubernetes-manifests]}}\n"
	load := "apiVersion: skaffold/v4beta10\nkind: Config\nmetadata: {name: loadgenerator}\nrequires: [{configs: [app]}]\nbuild: {artifacts: [{image: loadgenerator, context: src/loadgenerator}]}\nmanifests: {rawYaml: [load.yaml]}\n"
	files := map[string]string{
		"src/web/Dockerfile":                      "FROM scratch\n",
		"src/loadgenerator/Dockerfile":            "FROM scratch\n",
		"kubernetes-manifests/kustomization.yaml": kustomization,
		"kubernetes-manifests/deploy.yaml":        cmDoc("web"),
		"load.yaml":                               cmDoc("load"),
		"sub/skaffold.yaml":                       "apiVersion: skaffold/v4beta10\nkind: Config\nrequires: [{path: ..}]\n",
	}
	for name, sk := range map[string]string{"required config first": app + "---\n" + load, "required config last": load + "---\n" + app} {
		t.Run(name, func(t *testing.T) {
			files["skaffold.yaml"] = sk
			root := tree(t, files)
			src, err := launch.Discover(root, nil)
			if err != nil {
				t.Fatal(errText(err))
			}
			if want := []string{filepath.Join(root, "kubernetes-manifests")}; !reflect.DeepEqual(src.Kustomizations, want) {
				t.Errorf("kustomizations %v, want %v", src.Kustomizations, want)
			}
			if want := []string{filepath.Join(root, "load.yaml")}; !reflect.DeepEqual(src.Files, want) {
				t.Errorf("files %v, want %v", src.Files, want)
			}
			want := []launch.ImageArtifact{{Image: "web", Context: "src/web"}, {Image: "loadgenerator", Context: "src/loadgenerator"}}
			if !reflect.DeepEqual(src.Images, want) {
				t.Errorf("images %+v, want %+v (the required config's first, each once)", src.Images, want)
			}
		})
	}
	for name, c := range map[string]struct{ skaffold, want string }{
		"unknown name": {app + "---\n" + strings.Replace(load, "configs: [app]", "configs: [ap]", 1),
			`skaffold.yaml:7 (config loadgenerator): requires config "ap" of skaffold.yaml, which defines only: app, loadgenerator`},
		"cycle": {strings.Replace(app, "build:", "requires: [{configs: [loadgenerator]}]\nbuild:", 1) + "---\n" + load,
			`skaffold.yaml:8 (config loadgenerator): requires config "app" again: a cycle (app → loadgenerator → app)`},
		"itself": {strings.Replace(app, "build:", "requires: [{configs: [app]}]\nbuild:", 1),
			`skaffold.yaml:1 (config app): requires config "app" again: a cycle (app → app)`},
		"cycle through files": {"apiVersion: skaffold/v4beta10\nkind: Config\nrequires: [{path: sub}]\n",
			"sub/skaffold.yaml:1: requires the config at skaffold.yaml:1 again: a cycle (skaffold.yaml:1 → sub/skaffold.yaml:1 → skaffold.yaml:1)"},
		"neither path nor configs": {strings.Replace(app, "build:", "requires: [{activeProfiles: [{name: x}]}]\nbuild:", 1),
			"requires: an entry with neither a path nor configs"},
	} {
		t.Run(name, func(t *testing.T) {
			files["skaffold.yaml"] = c.skaffold
			root := tree(t, files)
			_, err := launch.Discover(root, nil)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error saying %q", err, c.want)
			}
		})
	}
}

// docker.buildArgs values written as numbers or booleans are strings, spelt as written, as
// Skaffold reads them (NODE_VERSION: 18.10 is "18.10", not 18.1), in the config, a profile and
// a profile's patch alike; a mapping or a list is refused, naming the argument.
func TestSkaffoldBuildArgScalars(t *testing.T) {
	sk := `apiVersion: skaffold/v4beta11
kind: Config
build:
  artifacts:
  - image: web
    docker:
      buildArgs: {DEBUG: 1, ON: true, NODE_VERSION: 18.10, BIG: 12345678901234567890, OCT: 0755, NAME: web, EMPTY: null}
manifests: {rawYaml: [k8s/*.yaml]}
profiles:
- name: dev
  build:
    artifacts:
    - image: web
      docker:
        buildArgs: {DEBUG: 0, VERBOSE: false}
  patches:
  - {op: add, path: /build/artifacts/0/docker/buildArgs/LEVEL, value: 3.0}
`
	root := tree(t, map[string]string{"skaffold.yaml": sk, "Dockerfile": "FROM scratch\n", "k8s/app.yaml": cmDoc("app")})
	src, err := launch.Discover(root, nil)
	if err != nil {
		t.Fatal(errText(err))
	}
	want := map[string]string{"DEBUG": "1", "ON": "true", "NODE_VERSION": "18.10", "BIG": "12345678901234567890", "OCT": "0755", "NAME": "web", "EMPTY": ""}
	if len(src.Images) != 1 || !reflect.DeepEqual(src.Images[0].BuildArgs, want) {
		t.Errorf("images %+v, want build args %v", src.Images, want)
	}
	p, err := launch.Resolve(launch.Selection{Dir: root, Profile: "dev"})
	if err != nil {
		t.Fatal(err)
	}
	if src, err = p.Discover(); err != nil {
		t.Fatal(errText(err))
	}
	if want := map[string]string{"DEBUG": "0", "VERBOSE": "false", "LEVEL": "3.0"}; len(src.Images) != 1 || !reflect.DeepEqual(src.Images[0].BuildArgs, want) {
		t.Errorf("profile dev: images %+v, want build args %v", src.Images, want)
	}
	for name, v := range map[string]string{"mapping": "{a: b}", "list": "[a, b]"} {
		bad := strings.Replace(sk, "NAME: web", "NAME: "+v, 1)
		if err := os.WriteFile(filepath.Join(root, "skaffold.yaml"), []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := launch.Discover(root, nil)
		if err == nil || !strings.Contains(err.Error(), "buildArgs NAME") {
			t.Errorf("%s: got %v, want an error naming buildArgs NAME", name, err)
		}
	}
}

// A folder whose Skaffold configs all have other names (skaffold-gradle.yaml) and no
// skaffold.yaml is refused, naming them, before anything is applied: launching its manifests
// alone would start images nothing built. The hints say how to launch it. A harmony.yaml, -f
// or a skaffold.yaml beside them is what the user chose, and is launched.
func TestSkaffoldVariantsRefused(t *testing.T) {
	variant := "apiVersion: skaffold/v4beta11\nkind: Config\nbuild: {artifacts: [{image: web}]}\nmanifests: {rawYaml: [k8s/*.yaml]}\n"
	files := map[string]string{
		"skaffold-gradle.yaml": variant,
		"skaffold-maven.yml":   variant,
		"skaffold-notes.yaml":  "just: data\n", // not a Skaffold config
		"Dockerfile":           "FROM scratch\n",
		"k8s/app.yaml":         cmDoc("app"),
	}
	root := tree(t, files)
	p, err := launch.Resolve(launch.Selection{Dir: root})
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Discover()
	text := errText(err)
	if !errors.Is(err, launch.ErrUnsupported) || !strings.Contains(err.Error(), "skaffold-gradle.yaml, skaffold-maven.yml but no skaffold.yaml") || strings.Contains(err.Error(), "notes") {
		t.Fatalf("got %q, want ErrUnsupported naming skaffold-gradle.yaml and skaffold-maven.yml", text)
	}
	for _, want := range []string{
		"cp " + filepath.Join(root, "skaffold-gradle.yaml") + " " + filepath.Join(root, "skaffold.yaml"),
		"harmony launch " + root + "\n",
		"harmony launch " + root + " -f PATH",
		"images:",
	} {
		if !strings.Contains(text+"\n", want) {
			t.Errorf("hints %q do not say %q", text, want)
		}
	}
	for name, extra := range map[string]map[string]string{
		"skaffold.yaml beside them": {"skaffold.yaml": variant},
		"harmony.yaml":              {"harmony.yaml": "manifests: [k8s]\nimages: [{image: web}]\n"},
	} {
		for k, v := range extra {
			files[k] = v
		}
		if _, err := launch.Discover(tree(t, files), nil); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		for k := range extra {
			delete(files, k)
		}
	}
	if _, err := launch.Discover(root, []string{filepath.Join(root, "k8s")}); err != nil {
		t.Errorf("-f: %v", err)
	}
}

// Skaffold's lifecycle hooks and its test: and verify: phases are not run: each kind is named
// on one line (launch prints them under its first line), for the part of skaffold.yaml the
// launch uses: its images' hooks and tests, its manifests' hooks and verify.
func TestSkaffoldHooksAndTestsNamed(t *testing.T) {
	sk := `apiVersion: skaffold/v4beta11
kind: Config
metadata: {name: app}
build:
  artifacts:
  - image: web
    hooks: {before: []}
  - image: api
    context: api
    hooks:
      before: [{command: [sh, -c, ./gen.sh]}]
    sync:
      hooks: {after: [{container: {command: [x]}}]}
manifests:
  rawYaml: [k8s/*.yaml]
  hooks: {before: [{host: {command: [make, manifests]}}]}
deploy:
  kubectl:
    hooks: {after: [{host: {command: [./smoke.sh]}}]}
test:
- image: web
  structureTests: [./test/*]
verify:
- name: smoke
  container: {name: c, image: alpine}
`
	files := map[string]string{"skaffold.yaml": sk, "Dockerfile": "FROM scratch\n", "api/Dockerfile": "FROM scratch\n", "k8s/app.yaml": cmDoc("app")}
	for name, c := range map[string]struct {
		extra map[string]string
		want  []string
	}{
		"all of it": {nil, []string{
			"skaffold.yaml: harmony does not run Skaffold's lifecycle hooks (build.artifacts[1].hooks, build.artifacts[1].sync.hooks, manifests.hooks, deploy.kubectl.hooks); they were skipped",
			"skaffold.yaml: harmony does not run Skaffold's test: and verify: phases; they were skipped",
		}},
		"its images only": {map[string]string{"harmony.yaml": "manifests: [k8s]\n"}, []string{
			"skaffold.yaml: harmony does not run Skaffold's lifecycle hooks (build.artifacts[1].hooks, build.artifacts[1].sync.hooks); they were skipped",
			"skaffold.yaml: harmony does not run Skaffold's test: phase; it was skipped",
		}},
		"several configs": {map[string]string{"skaffold.yaml": sk + "---\napiVersion: skaffold/v4beta11\nkind: Config\nmetadata: {name: more}\nrequires: [{configs: [app]}]\ndeploy: {helm: {hooks: {before: [{host: {command: [x]}}]}}}\ntest: [{image: web, custom: [{command: ./t.sh}]}]\n"}, []string{
			"skaffold.yaml: harmony does not run Skaffold's lifecycle hooks (build.artifacts[1].hooks of config app, build.artifacts[1].sync.hooks of config app, manifests.hooks of config app, deploy.kubectl.hooks of config app, deploy.helm.hooks of config more); they were skipped",
			"skaffold.yaml: harmony does not run Skaffold's test: and verify: phases (test of config app, verify of config app, test of config more); they were skipped",
		}},
		"none": {map[string]string{"skaffold.yaml": "apiVersion: skaffold/v4beta11\nkind: Config\nbuild: {artifacts: [{image: web, hooks: {}}]}\nmanifests: {rawYaml: [k8s/*.yaml]}\ntest: []\n"}, nil},
	} {
		t.Run(name, func(t *testing.T) {
			fs := map[string]string{}
			for k, v := range files {
				fs[k] = v
			}
			for k, v := range c.extra {
				fs[k] = v
			}
			src, err := launch.Discover(tree(t, fs), nil)
			if err != nil {
				t.Fatal(errText(err))
			}
			if !reflect.DeepEqual(src.Warnings, c.want) {
				t.Errorf("warnings\n%q\nwant\n%q", src.Warnings, c.want)
			}
		})
	}
}

// A Skaffold config is not a Kubernetes manifest: a scan for manifests (a skaffold.yaml that
// names none, a harmony.yaml listing images only) passes it by.
func TestSkaffoldConfigIsNotAManifest(t *testing.T) {
	for name, files := range map[string]map[string]string{
		"skaffold.yaml naming no manifests": {"skaffold.yaml": "apiVersion: skaffold/v4beta11\nkind: Config\nbuild: {artifacts: [{image: web}]}\n"},
		"harmony.yaml images only":          {"harmony.yaml": "images: [{image: web}]\n", "skaffold-gradle.yaml": "apiVersion: skaffold/v4beta11\nkind: Config\n"},
	} {
		t.Run(name, func(t *testing.T) {
			files["Dockerfile"] = "FROM scratch\n"
			files["app.yaml"] = cmDoc("app")
			root := tree(t, files)
			src, err := launch.Discover(root, nil)
			if err != nil {
				t.Fatal(errText(err))
			}
			if want := []string{filepath.Join(root, "app.yaml")}; !reflect.DeepEqual(src.Files, want) {
				t.Errorf("files %v, want %v", src.Files, want)
			}
		})
	}
}

// A Skaffold config named as manifests (-f skaffold-dev.yaml, harmony.yaml's manifests) is
// refused by name before anything is applied, with the cp that makes it the skaffold.yaml
// harmony reads: applied as objects it failed as a kind the cluster lacks, hinting at a CRD.
func TestSkaffoldConfigNamedAsManifests(t *testing.T) {
	cfg := "apiVersion: skaffold/v4beta11\nkind: Config\nbuild: {artifacts: [{image: web}]}\nmanifests: {rawYaml: [k8s/*.yaml]}\n"
	root := tree(t, map[string]string{
		"skaffold-dev.yaml": cfg,
		"skaffold.yaml":     cfg,
		"k8s/app.yaml":      cmDoc("app"),
	})
	_, err := launch.Discover(root, []string{filepath.Join(root, "skaffold-dev.yaml")})
	text := errText(err)
	for _, want := range []string{`"skaffold-dev.yaml" is a Skaffold config, not Kubernetes manifests`, "cp ", "skaffold.yaml"} {
		if !strings.Contains(text, want) {
			t.Errorf("-f skaffold-dev.yaml: got %q, want it to say %q", text, want)
		}
	}
	_, err = launch.Discover(root, []string{filepath.Join(root, "skaffold.yaml")})
	if text := errText(err); !strings.Contains(text, "launch without -f") {
		t.Errorf("-f skaffold.yaml: got %q, want the hint to launch without -f", text)
	}
	if _, err := launch.Discover(root, []string{filepath.Join(root, "k8s/app.yaml")}); err != nil {
		t.Errorf("-f k8s/app.yaml: %v", errText(err))
	}
}
