//go:build linux

// The image tests run the k3s node stand-in (a Linux program) in the Docker engine.

package launch_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/distribution/reference"
	"github.com/docker/docker/client"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/NationTech/harmony-agent/bootstrap"
	"github.com/NationTech/harmony-agent/internal/ctrstandin"
	"github.com/NationTech/harmony-agent/internal/dockertest"
	"github.com/NationTech/harmony-agent/internal/testcluster"
	"github.com/NationTech/harmony-agent/launch"
)

// imageRepo writes the fixture repository: a skaffold.yaml (v4beta) with two artifacts
// whose Dockerfiles are FROM scratch plus COPY of a static program the test builds (no network),
// and kustomize manifests using the bare image names. prefix makes the names unique to a test.
func imageRepo(t testing.TB, prefix string, extra map[string]string) string {
	t.Helper()
	deploy := func(name, image string) string {
		return `apiVersion: apps/v1
kind: Deployment
metadata: {name: ` + name + `}
spec:
  selector: {matchLabels: {app: ` + name + `}}
  template:
    metadata: {labels: {app: ` + name + `}}
    spec:
      initContainers: [{name: init, image: "` + image + `:latest"}]
      containers:
      - {name: app, image: ` + image + `}
      - {name: sidecar, image: "busybox:1.36", imagePullPolicy: Always}
`
	}
	files := map[string]string{
		"skaffold.yaml": `apiVersion: skaffold/v4beta11
kind: Config
metadata: {name: shop}
build:
  artifacts:
  - image: ` + prefix + `frontend
    context: src/frontend
  - image: ` + prefix + `backend
    context: src/backend
    docker: {dockerfile: Dockerfile.run, buildArgs: {MODE: prod}}
manifests:
  kustomize: {paths: [kubernetes-manifests]}
deploy:
  kubectl: {}
`,
		"src/frontend/Dockerfile":                 "FROM scratch\nCOPY payload /payload\nCOPY index.html /srv/index.html\nENTRYPOINT [\"/payload\"]\n",
		"src/frontend/index.html":                 "<h1>shop</h1>",
		"src/backend/Dockerfile.run":              "FROM scratch\nARG MODE\nCOPY payload /payload\nLABEL mode=$MODE\nENTRYPOINT [\"/payload\"]\n",
		"kubernetes-manifests/kustomization.yaml": "resources: [frontend.yaml, backend.yaml]\n",
		"kubernetes-manifests/frontend.yaml":      deploy("frontend", prefix+"frontend"),
		"kubernetes-manifests/backend.yaml":       deploy("backend", prefix+"backend"),
	}
	for k, v := range extra {
		if v == "" {
			delete(files, k)
		} else {
			files[k] = v
		}
	}
	// A first step naming the test: tests with the same files never share an image or a layer
	// of the classic builder's cache, which one test's cleanup (a forced removal) would take
	// from another between its cache hit and its tag ("unable to find image").
	for k, v := range files {
		if rest, ok := strings.CutPrefix(v, "FROM scratch\n"); ok && strings.Contains(k, "Dockerfile") {
			files[k] = "FROM scratch\nLABEL harmony.test=\"" + prefix + t.Name() + "\"\n" + rest
		}
	}
	root := filepath.Join(t.TempDir(), "shop")
	writeTree(t, root, files)
	for _, dir := range []string{"src/frontend", "src/backend"} {
		if err := os.WriteFile(filepath.Join(root, dir, "payload"), payload(t), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// imageLaunch is one launch as the CLI runs it: discover, render, prepare the images, launch.
type imageLaunch struct {
	t      testing.TB
	root   string
	ns     string
	eng    *launch.Engine
	docker client.APIClient
	loader launch.ImageLoader
}

func newImageLaunch(t testing.TB, root string, docker client.APIClient, loader launch.ImageLoader) *imageLaunch {
	c := testcluster.Need(t, cluster)
	eng, err := launch.NewEngine(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	ns := "img-" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
	if len(ns) > 50 {
		ns = ns[:50]
	}
	ns = launch.Namespace(ns)
	t.Cleanup(func() {
		_ = c.Client.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	})
	return &imageLaunch{t: t, root: root, ns: ns, eng: eng, docker: docker, loader: loader}
}

func (l *imageLaunch) run(dryRun bool) ([]launch.ImageState, *launch.Report, error) {
	l.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	proj, err := launch.Resolve(launch.Selection{Dir: l.root, Namespace: l.ns})
	if err != nil {
		return nil, nil, err
	}
	src, err := proj.Discover()
	if err != nil {
		return nil, nil, err
	}
	objs, err := launch.Render(ctx, src, launch.RenderOptions{})
	if err != nil {
		return nil, nil, err
	}
	var out strings.Builder
	imgs, err := launch.PrepareImages(ctx, src, objs, launch.ImageOptions{Docker: l.docker, Loader: l.loader, DryRun: dryRun, Out: &out})
	if err != nil {
		return imgs, nil, err
	}
	rep, err := l.eng.Launch(ctx, proj, objs, launch.Options{DryRun: dryRun, NoWait: true, Out: &out})
	return imgs, rep, err
}

// containers lists the applied Deployment's containers: name → image and pull policy.
func (l *imageLaunch) containers(name string) map[string][2]string {
	l.t.Helper()
	d, err := cluster.Client.AppsV1().Deployments(l.ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		l.t.Fatal(err)
	}
	out := map[string][2]string{}
	for _, c := range append(d.Spec.Template.Spec.InitContainers, d.Spec.Template.Spec.Containers...) {
		out[c.Name] = [2]string{c.Image, string(c.ImagePullPolicy)}
	}
	return out
}

func (l *imageLaunch) nothingApplied() {
	l.t.Helper()
	if _, err := cluster.Client.CoreV1().Namespaces().Get(context.Background(), l.ns, metav1.GetOptions{}); err == nil {
		l.t.Errorf("namespace %s was created: something was applied", l.ns)
	}
}

func states(imgs []launch.ImageState) map[string]launch.ImageState {
	m := map[string]launch.ImageState{}
	for _, s := range imgs {
		m[s.Image] = s
	}
	return m
}

// TestLaunchBuildsSkaffoldImages is the fixture against the real engine, the k3d node
// stand-in (its ctr records imports) and the test API server: images built, tagged by content,
// loaded, substituted with IfNotPresent; a second launch builds and loads nothing; editing one
// context rebuilds only that image.
func TestLaunchBuildsSkaffoldImages(t *testing.T) {
	t.Parallel()
	dc := dockertest.Need(t)
	testcluster.Need(t, cluster)
	prefix := "harmony-test-" + randomHex() + "-"
	removeImages(t, dc, prefix)
	root := imageRepo(t, prefix, nil)
	node, loader := k3dStandin(t, dc)
	l := newImageLaunch(t, root, dc, loader)
	fe, be := prefix+"frontend", prefix+"backend"

	// A dry run first: both would be built; nothing is built, loaded or applied.
	imgs, rep, err := l.run(true)
	if err != nil {
		t.Fatal(err)
	}
	if s := states(imgs); s[fe].State != launch.ImageWouldBuild || s[be].State != launch.ImageWouldBuild || s[fe].Context != "src/frontend" {
		t.Fatalf("dry run: %+v", imgs)
	}
	if rep == nil {
		t.Fatal("no report")
	}
	if tagged(t, dc, imgs[0].Tag) || len(dockertest.NodeImports(t, dc, node)) != 0 {
		t.Fatal("a dry run built or loaded an image")
	}
	l.nothingApplied()

	imgs, _, err = l.run(false)
	if err != nil {
		t.Fatal(err)
	}
	s := states(imgs)
	for _, name := range []string{fe, be} {
		if !s[name].Built || !s[name].Loaded || s[name].Containers != 2 || !strings.HasPrefix(s[name].Tag, "harmony.invalid/"+name+":harmony-") {
			t.Errorf("first launch, %s: %+v", name, s[name])
		}
		if !tagged(t, dc, s[name].Tag) {
			t.Errorf("the engine has no %s", s[name].Tag)
		}
	}
	imports := dockertest.NodeImports(t, dc, node)
	if len(imports) != 1 || len(imports[0]) != 2 {
		t.Fatalf("the node recorded the imports %q, want one import of both images", imports)
	}
	for _, d := range []struct{ name, image string }{{"frontend", fe}, {"backend", be}} {
		got := l.containers(d.name)
		tag := s[d.image].Tag
		if got["app"] != [2]string{tag, "IfNotPresent"} || got["init"] != [2]string{tag, "IfNotPresent"} {
			t.Errorf("deployment %s: app %v init %v, want %s with IfNotPresent", d.name, got["app"], got["init"], tag)
		}
		// A node that lost the image can only fail to pull it: its registry host never resolves.
		if n, err := reference.ParseNormalizedNamed(got["app"][0]); err != nil || !strings.HasSuffix(reference.Domain(n), ".invalid") {
			t.Errorf("deployment %s runs %s: its registry host is not under .invalid (%v)", d.name, got["app"][0], err)
		}
		if got["sidecar"] != [2]string{"busybox:1.36", "Always"} {
			t.Errorf("deployment %s: the sidecar was changed: %v", d.name, got["sidecar"])
		}
	}

	// No change: nothing built, nothing loaded, every object unchanged.
	start := time.Now()
	imgs, rep, err = l.run(false)
	took := time.Since(start)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range imgs {
		if st.Built || st.Loaded || st.State != launch.ImageCached {
			t.Errorf("second launch, %s: %+v", st.Image, st)
		}
	}
	if n := len(dockertest.NodeImports(t, dc, node)); n != 1 {
		t.Errorf("a launch with no change loaded images (%d imports)", n)
	}
	for _, step := range rep.Plan {
		if step.Action != launch.Unchanged {
			t.Errorf("second launch: %s %s", step.Action, step.Ref)
		}
	}
	t.Logf("a launch with no change took %s (zero builds, zero loads)", took.Round(time.Millisecond))

	// Editing one context rebuilds, and loads, only that image.
	if err := os.WriteFile(filepath.Join(root, "src/frontend/index.html"), []byte("<h1>shop v2</h1>"), 0o644); err != nil {
		t.Fatal(err)
	}
	imgs, _, err = l.run(false)
	if err != nil {
		t.Fatal(err)
	}
	s2 := states(imgs)
	if !s2[fe].Built || s2[fe].Tag == s[fe].Tag || s2[be].Built || s2[be].Tag != s[be].Tag {
		t.Errorf("after editing the frontend: %+v", imgs)
	}
	imports = dockertest.NodeImports(t, dc, node)
	if len(imports) != 2 || len(imports[1]) != 1 || !strings.HasSuffix(imports[1][0], s2[fe].Tag) {
		t.Errorf("after editing the frontend the node recorded %q, want a second import of the frontend only", imports)
	}
	if got := l.containers("frontend")["app"][0]; got != s2[fe].Tag {
		t.Errorf("deployment frontend runs %s, want %s", got, s2[fe].Tag)
	}
}

// k3dStandin starts a one-node stand-in k3d cluster (its ctr records imports, unless a fault is
// given) and returns the node and the cluster's image store.
func k3dStandin(t testing.TB, dc *client.Client, fault ...dockertest.NodeFault) (string, *bootstrap.K3dImages) {
	t.Helper()
	cl := dockertest.StandinCluster(t, dc, fault...)
	return cl.Nodes[0], &bootstrap.K3dImages{Docker: dc, Cluster: cl.Name}
}

// k3sImages installs the k3s stand-in in harmony's layout under a fresh HARMONY_ROOT and returns
// its image store (the stand-in's `k3s ctr` records imports) and where the records are.
func k3sImages(t *testing.T, dc client.APIClient) (launch.ImageLoader, string) {
	t.Helper()
	k, records := dockertest.InstallK3sStandin(t)
	store, err := bootstrap.ImageStoreOf(context.Background(), k, dc)
	if err != nil {
		t.Fatal(err)
	}
	return store, records
}

// TestLaunchBuildsHarmonyYAMLImages is the fixture without Skaffold (harmony.yaml lists the
// images), loaded into k3s: the k3s stand-in's `k3s ctr images import` records them.
func TestLaunchBuildsHarmonyYAMLImages(t *testing.T) {
	t.Parallel()
	dc := dockertest.Need(t)
	testcluster.Need(t, cluster)
	prefix := "harmony-test-" + randomHex() + "-"
	removeImages(t, dc, prefix)
	root := imageRepo(t, prefix, map[string]string{
		"skaffold.yaml": "",
		"harmony.yaml": "manifests: [kubernetes-manifests]\nimages:\n- {image: " + prefix + "frontend, context: src/frontend}\n" +
			"- {image: " + prefix + "backend, context: src/backend, dockerfile: Dockerfile.run, buildArgs: {MODE: prod}}\n",
	})
	loader, records := k3sImages(t, dc)
	l := newImageLaunch(t, root, dc, loader)
	imgs, _, err := l.run(false)
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 2 || !imgs[0].Built || !imgs[1].Built || !imgs[0].Loaded || !imgs[1].Loaded {
		t.Fatalf("images %+v", imgs)
	}
	if imports := ctrstandin.Imports(records); len(imports) != 1 || len(imports[0]) != 2 {
		t.Errorf("the k3s stand-in recorded %q, want one import of both images", imports)
	}
	if got := l.containers("backend")["app"]; got != [2]string{states(imgs)[prefix+"backend"].Tag, "IfNotPresent"} {
		t.Errorf("deployment backend: %v", got)
	}
	if imgs, _, err = l.run(false); err != nil {
		t.Fatal(err)
	}
	if imgs[0].Built || imgs[0].Loaded || imgs[1].Built || imgs[1].Loaded || len(ctrstandin.Imports(records)) != 1 {
		t.Errorf("a second launch built or loaded: %+v, %d imports", imgs, len(ctrstandin.Imports(records)))
	}
}

// TestLaunchImageFailuresApplyNothing: an unsupported builder, a failing RUN, a missing
// Dockerfile, a missing engine and a k3d node refusing the import each stop the launch before
// anything is applied.
func TestLaunchImageFailuresApplyNothing(t *testing.T) {
	t.Parallel()
	testcluster.Need(t, cluster)
	prefix := "harmony-test-" + randomHex() + "-"
	t.Run("unsupported builder", func(t *testing.T) {
		root := imageRepo(t, prefix, map[string]string{"skaffold.yaml": "apiVersion: skaffold/v4beta11\nkind: Config\nbuild:\n  artifacts:\n  - {image: " + prefix + "frontend, context: src/frontend}\n  - {image: " + prefix + "backend, jib: {project: api}}\nmanifests: {kustomize: {paths: [kubernetes-manifests]}}\n"})
		l := newImageLaunch(t, root, nil, nil)
		_, _, err := l.run(false)
		if !errors.Is(err, launch.ErrUnsupported) || !strings.Contains(err.Error(), `artifact "`+prefix+`backend": builder jib`) {
			t.Fatalf("got %v, want ErrUnsupported naming the artifact and its builder", err)
		}
		l.nothingApplied()
	})
	t.Run("no engine", func(t *testing.T) {
		root := imageRepo(t, prefix, nil)
		l := newImageLaunch(t, root, nil, nil)
		_, _, err := l.run(false)
		if !errors.Is(err, launch.ErrNoBuilder) || !strings.Contains(err.Error(), prefix+"frontend (from src/frontend)") {
			t.Fatalf("got %v, want ErrNoBuilder naming the images and their contexts", err)
		}
		l.nothingApplied()
		// A dry run works without an engine: it says the builder is missing.
		imgs, rep, err := l.run(true)
		if err != nil {
			t.Fatal(err)
		}
		if len(imgs) != 2 || imgs[0].State != launch.ImageNoBuilder || imgs[0].Tag == "" || rep == nil {
			t.Errorf("dry run without an engine: %+v", imgs)
		}
	})
	dc := dockertest.Need(t)
	removeImages(t, dc, prefix)
	for name, c := range map[string]struct {
		files map[string]string
		fault dockertest.NodeFault
		want  string
	}{
		"failing RUN":        {files: map[string]string{"src/backend/Dockerfile.run": "FROM scratch\nCOPY payload /payload\nRUN [\"/payload\", \"--fail\"]\n"}, want: "this step fails on purpose"},
		"missing Dockerfile": {files: map[string]string{"src/frontend/Dockerfile": ""}, want: "Dockerfile"},
		"node refuses":       {fault: dockertest.RefusesImports, want: dockertest.FailMessage},
	} {
		t.Run(name, func(t *testing.T) {
			root := imageRepo(t, prefix, c.files)
			node, loader := k3dStandin(t, dc, c.fault)
			l := newImageLaunch(t, root, dc, loader) // run's deadline: a hanging load fails the test
			_, _, err := l.run(false)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want an error with %q", err, c.want)
			}
			l.nothingApplied()
			if n := len(dockertest.NodeImports(t, dc, node)); n != 0 {
				t.Errorf("%d imports after a failure", n)
			}
		})
	}
}
