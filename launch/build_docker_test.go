//go:build linux

package launch_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"

	"github.com/NationTech/harmony-agent/internal/ctrstandin"
	"github.com/NationTech/harmony-agent/internal/dockertest"
	"github.com/NationTech/harmony-agent/internal/hint"
	"github.com/NationTech/harmony-agent/internal/releasetest"
	"github.com/NationTech/harmony-agent/launch"
)

var payloadOnce struct {
	sync.Once
	bin []byte
	err error
}

// payload is the static program the test images carry (launch/testdata/image-payload), built
// with CGO_ENABLED=0 so that FROM scratch images run it and builds need no network.
func payload(t testing.TB) []byte {
	t.Helper()
	payloadOnce.Do(func() {
		root, err := releasetest.ModuleRoot()
		if err != nil {
			payloadOnce.err = err
			return
		}
		dir, err := os.MkdirTemp("", "image-payload-")
		if err != nil {
			payloadOnce.err = err
			return
		}
		defer os.RemoveAll(dir)
		out := filepath.Join(dir, "payload")
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, "./launch/testdata/image-payload")
		cmd.Dir, cmd.Env = root, append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
		if b, err := cmd.CombinedOutput(); err != nil {
			payloadOnce.err = errors.New(err.Error() + "\n" + string(b))
			return
		}
		payloadOnce.bin, payloadOnce.err = os.ReadFile(out)
	})
	if payloadOnce.err != nil {
		t.Fatalf("build the image payload: %v", payloadOnce.err)
	}
	return payloadOnce.bin
}

func randomHex() string {
	b := make([]byte, 5)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// removeImages removes the images named like prefix when the test ends.
func removeImages(t testing.TB, dc *client.Client, prefix string) {
	t.Cleanup(func() {
		ctx := context.Background()
		list, _ := dc.ImageList(ctx, image.ListOptions{All: true})
		for _, im := range list {
			for _, tag := range im.RepoTags {
				if strings.HasPrefix(strings.TrimPrefix(tag, "harmony.invalid/"), prefix) {
					_, _ = dc.ImageRemove(ctx, tag, image.RemoveOptions{Force: true})
				}
			}
		}
	})
}

// twoImages writes a project with two images: web (its Dockerfile in its context) and api (a
// Dockerfile outside its context, a target and a build argument). Their first step is a label
// naming the test: parallel tests (one per builder, the same files) then never share a layer of
// the classic builder's cache, which one test's cleanup would remove while another, between its
// cache hit and its tag, still needs it ("No such image").
func twoImages(t testing.TB, prefix string) (string, []launch.ImageArtifact) {
	t.Helper()
	root := t.TempDir()
	own := "LABEL dev.harmony.test=" + strings.TrimSuffix(prefix, "-") + "\n"
	writeTree(t, root, map[string]string{
		"web/Dockerfile":          "FROM scratch\n" + own + "COPY payload /payload\nCOPY index.html /srv/index.html\nENTRYPOINT [\"/payload\"]\n",
		"web/index.html":          "<h1>web</h1>",
		"web/.dockerignore":       "*.tmp\n",
		"web/scratch.tmp":         "ignored",
		"services/api/main.txt":   "api",
		"docker/api.Dockerfile":   "FROM scratch AS base\n" + own + "COPY payload /payload\nENTRYPOINT [\"/payload\"]\nFROM base AS debug\nLABEL stage=debug\nFROM base AS prod\nARG GREETING\nLABEL stage=prod greeting=$GREETING\n",
		"docker/other.Dockerfile": "not sent",
	})
	for _, dir := range []string{"web", "services/api"} {
		if err := os.WriteFile(filepath.Join(root, dir, "payload"), payload(t), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return root, []launch.ImageArtifact{
		{Image: prefix + "web", Context: "web"},
		{Image: prefix + "api", Context: "services/api", Dockerfile: "../../docker/api.Dockerfile", Target: "prod", BuildArgs: map[string]string{"GREETING": "hello"}},
	}
}

// fileInImage reads one file out of an image (from a container created, never started).
func fileInImage(t *testing.T, dc *client.Client, ref, name string) []byte {
	t.Helper()
	ctx := context.Background()
	c, err := dc.ContainerCreate(ctx, &container.Config{Image: ref}, &container.HostConfig{NetworkMode: "none"}, nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	defer dc.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
	rc, _, err := dc.CopyFromContainer(ctx, c.ID, name)
	if err != nil {
		t.Fatalf("%s in %s: %v", name, ref, err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	if _, err := tr.Next(); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(tr)
	return b
}

// builders are the engine's builders every build test runs with: BuildKit (what this engine
// gets by default) and the classic builder (what DOCKER_BUILDKIT=0 and older engines get).
var builders = []launch.Builder{launch.BuilderBuildKit, launch.BuilderClassic}

// eachBuilder runs f as a parallel subtest per builder.
func eachBuilder(t *testing.T, f func(t *testing.T, b launch.Builder)) {
	t.Helper()
	for _, b := range builders {
		t.Run(string(b), func(t *testing.T) {
			t.Parallel()
			f(t, b)
		})
	}
}

func byImage(imgs []launch.BuiltImage) map[string]launch.BuiltImage {
	m := map[string]launch.BuiltImage{}
	for _, i := range imgs {
		m[i.Artifact.Image] = i
	}
	return m
}

// TestBuildImagesIntoK3dNode builds two FROM scratch images through the real engine, loads them
// into the stand-in k3d node, and then does nothing on a second run; an edit rebuilds one.
func TestBuildImagesIntoK3dNode(t *testing.T) {
	t.Parallel()
	eachBuilder(t, testBuildImagesIntoK3dNode)
}

func testBuildImagesIntoK3dNode(t *testing.T, builder launch.Builder) {
	dc := dockertest.Need(t)
	prefix := "harmony-test-" + randomHex() + "-"
	removeImages(t, dc, prefix)
	root, arts := twoImages(t, prefix)
	node, loader := k3dStandin(t, dc)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	plan, err := launch.PlanImages(ctx, root, arts, dc, loader)
	if err != nil {
		t.Fatal(err)
	}
	for _, im := range plan {
		if im.Built || im.Loaded || !strings.HasPrefix(im.Tag, "harmony.invalid/"+im.Artifact.Image+":harmony-") {
			t.Fatalf("first plan: %+v", im)
		}
	}
	var out bytes.Buffer
	bo := launch.BuildOptions{Docker: dc, Loader: loader, Out: &out, Builder: builder}
	if err := launch.BuildImages(ctx, root, plan, bo); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, want := range []string{"building " + prefix + "web from web", "building " + prefix + "api from services/api",
		"built " + plan[0].Tag, "built " + plan[1].Tag, "loading ", "loaded 2 images"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("progress lacks %q:\n%s", want, out.String())
		}
	}
	if got := fileInImage(t, dc, plan[0].Tag, "/payload"); !bytes.Equal(got, payload(t)) {
		t.Error("the web image does not carry the payload")
	}
	if got := fileInImage(t, dc, plan[0].Tag, "/srv/index.html"); string(got) != "<h1>web</h1>" {
		t.Errorf("index.html in the image: %q", got)
	}
	api, _, err := dc.ImageInspectWithRaw(ctx, plan[1].Tag)
	if err != nil {
		t.Fatal(err)
	}
	if l := api.Config.Labels; l["stage"] != "prod" || l["greeting"] != "hello" {
		t.Errorf("the api image was not built for target prod with GREETING=hello: %v", l)
	}
	imports := dockertest.NodeImports(t, dc, node)
	if len(imports) != 1 || len(imports[0]) != 2 {
		t.Fatalf("imports into the node: %q, want one import of both images", imports)
	}

	// Nothing changed: both built and loaded, nothing done.
	again, err := launch.PlanImages(ctx, root, arts, dc, loader)
	if err != nil {
		t.Fatal(err)
	}
	for i, im := range again {
		if !im.Built || !im.Loaded || im.Tag != plan[i].Tag {
			t.Fatalf("second plan: %+v (first tag %s)", im, plan[i].Tag)
		}
	}
	out.Reset()
	if err := launch.BuildImages(ctx, root, again, bo); err != nil || out.Len() != 0 {
		t.Fatalf("a run with nothing to do: %v\n%s", err, out.String())
	}
	if n := len(dockertest.NodeImports(t, dc, node)); n != 1 {
		t.Fatalf("a run with nothing to do imported (%d imports)", n)
	}

	// An edit in one context rebuilds and reloads that image only.
	writeTree(t, root, map[string]string{"web/index.html": "<h1>web v2</h1>", "web/other.tmp": "still ignored"})
	edited, err := launch.PlanImages(ctx, root, arts, dc, loader)
	if err != nil {
		t.Fatal(err)
	}
	m := byImage(edited)
	if w, a := m[prefix+"web"], m[prefix+"api"]; w.Built || w.Loaded || w.Tag == plan[0].Tag || !a.Built || !a.Loaded {
		t.Fatalf("after editing web: %+v", edited)
	}
	out.Reset()
	if err := launch.BuildImages(ctx, root, edited, bo); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "building "+prefix+"api") || !strings.Contains(out.String(), "building "+prefix+"web") {
		t.Fatalf("after editing web:\n%s", out.String())
	}
	imports = dockertest.NodeImports(t, dc, node)
	if len(imports) != 2 || len(imports[1]) != 1 || !strings.HasSuffix(imports[1][0], m[prefix+"web"].Tag) {
		t.Fatalf("imports after editing web: %q", imports)
	}
}

// TestBuildImagesIntoK3s loads through the installed k3s's ctr (the k3s stand-in records it).
func TestBuildImagesIntoK3s(t *testing.T) {
	t.Parallel()
	eachBuilder(t, testBuildImagesIntoK3s)
}

func testBuildImagesIntoK3s(t *testing.T, builder launch.Builder) {
	dc := dockertest.Need(t)
	prefix := "harmony-test-" + randomHex() + "-"
	removeImages(t, dc, prefix)
	root, arts := twoImages(t, prefix)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	loader, plan, records := planIntoK3sStandin(t, ctx, dc, root, arts)
	bo := launch.BuildOptions{Docker: dc, Loader: loader, Builder: builder}
	if err := launch.BuildImages(ctx, root, plan, bo); err != nil {
		t.Fatal(err)
	}
	store := records
	if imports := ctrstandin.Imports(store); len(imports) != 1 || len(imports[0]) != 2 {
		t.Fatalf("imports into k3s: %q", imports)
	}
	again, err := launch.PlanImages(ctx, root, arts, dc, loader)
	if err != nil {
		t.Fatal(err)
	}
	for _, im := range again {
		if !im.Built || !im.Loaded {
			t.Fatalf("second plan: %+v", im)
		}
	}
	if err := launch.BuildImages(ctx, root, again, bo); err != nil {
		t.Fatal(err)
	}
	if n := len(ctrstandin.Imports(store)); n != 1 {
		t.Fatalf("a run with nothing to do imported (%d imports)", n)
	}
}

// planIntoK3sStandin installs the k3s stand-in in harmony's layout of an installed k3s (the
// stand-in as the pinned binary) and plans arts with its image store; it returns the store, the
// plan and where the stand-in records its imports.
func planIntoK3sStandin(t *testing.T, ctx context.Context, dc client.APIClient, root string, arts []launch.ImageArtifact) (launch.ImageLoader, []launch.BuiltImage, string) {
	t.Helper()
	k, records := dockertest.InstallK3sStandin(t)
	loader, err := k.Images(ctx, dc)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := launch.PlanImages(ctx, root, arts, dc, loader)
	if err != nil {
		t.Fatal(err)
	}
	return loader, plan, records
}

// TestBuildImagesSamePathOnTwoRegistries: web and localhost:5000/web have the same local path,
// harmony.invalid/web. Built from the same inputs they are one image, built once and imported
// once, under the one name; from another context, web gets a tag of its own.
func TestBuildImagesSamePathOnTwoRegistries(t *testing.T) {
	t.Parallel()
	dc := dockertest.Need(t)
	prefix := "harmony-test-" + randomHex() + "-"
	removeImages(t, dc, prefix)
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"a/Dockerfile": "FROM scratch\nCOPY hello /hello\n", "a/hello": "a",
		"b/Dockerfile": "FROM scratch\nCOPY hello /hello\n", "b/hello": "b",
	})
	arts := []launch.ImageArtifact{
		{Image: prefix + "web", Context: "a"},
		{Image: "localhost:5000/" + prefix + "web", Context: "a"},
		{Image: "registry.example/" + prefix + "web", Context: "b"},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	loader, plan, records := planIntoK3sStandin(t, ctx, dc, root, arts)
	name := "harmony.invalid/" + prefix + "web:harmony-"
	if plan[0].Tag != plan[1].Tag || plan[2].Tag == plan[0].Tag || !strings.HasPrefix(plan[0].Tag, name) || !strings.HasPrefix(plan[2].Tag, name) {
		t.Fatalf("tags %s, %s, %s: want the first two alike, all named %s…", plan[0].Tag, plan[1].Tag, plan[2].Tag, name)
	}
	var out bytes.Buffer
	if err := launch.BuildImages(ctx, root, plan, launch.BuildOptions{Docker: dc, Loader: loader, Out: &out}); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	if n := strings.Count(out.String(), "\nbuilt "); n != 2 || !strings.Contains(out.String(), "loaded 2 images") {
		t.Errorf("%d builds, want 2 (one per distinct tag):\n%s", n, out.String())
	}
	for _, im := range plan {
		if !im.Built || !im.Loaded || !tagged(t, dc, im.Tag) {
			t.Errorf("%s: built %t, loaded %t, in the engine %t", im.Artifact.Image, im.Built, im.Loaded, tagged(t, dc, im.Tag))
		}
	}
	if imports := ctrstandin.Imports(records); len(imports) != 1 || len(imports[0]) != 2 || !slices.Contains(imports[0], plan[0].Tag) || !slices.Contains(imports[0], plan[2].Tag) {
		t.Errorf("the k3s stand-in recorded the imports %q, want one import of %s and %s", imports, plan[0].Tag, plan[2].Tag)
	}
	again, err := launch.PlanImages(ctx, root, arts, dc, loader)
	if err != nil {
		t.Fatal(err)
	}
	for _, im := range again {
		if !im.Built || !im.Loaded {
			t.Errorf("second plan, %s: %+v", im.Artifact.Image, im)
		}
	}
}

// buildOne plans and builds one artifact of a project written from files (plus the payload).
func buildOne(t *testing.T, dc *client.Client, b launch.Builder, files map[string]string) ([]launch.BuiltImage, string, error) {
	t.Helper()
	prefix := "harmony-test-" + randomHex() + "-"
	removeImages(t, dc, prefix)
	root := t.TempDir()
	writeTree(t, root, files)
	if err := os.WriteFile(filepath.Join(root, "app", "payload"), payload(t), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	plan, err := launch.PlanImages(ctx, root, []launch.ImageArtifact{{Image: prefix + "app", Context: "app"}}, dc, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err = launch.BuildImages(ctx, root, plan, launch.BuildOptions{Docker: dc, Out: &out, Builder: b})
	return plan, out.String(), err
}

func tagged(t *testing.T, dc *client.Client, tag string) bool {
	_, _, err := dc.ImageInspectWithRaw(context.Background(), tag)
	return err == nil
}

func TestBuildImagesFailures(t *testing.T) {
	t.Parallel()
	dc := dockertest.Need(t)

	t.Run("missing Dockerfile", func(t *testing.T) {
		t.Parallel()
		// Found when planning, before any builder is asked.
		root := t.TempDir()
		writeTree(t, root, map[string]string{"app/main.txt": "x"})
		_, err := launch.PlanImages(context.Background(), root, []launch.ImageArtifact{{Image: "harmony-test-nodockerfile", Context: "app"}}, dc, nil)
		if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), `no Dockerfile at "app/Dockerfile"`) || len(hint.Of(err)) == 0 {
			t.Fatalf("a missing Dockerfile: %v (hints %q)", err, hint.Of(err))
		}
	})

	t.Run("no docker", func(t *testing.T) {
		t.Parallel()
		root := t.TempDir()
		writeTree(t, root, map[string]string{"app/Dockerfile": "FROM scratch\n"})
		plan, err := launch.PlanImages(context.Background(), root, []launch.ImageArtifact{{Image: "harmony-test-nodocker", Context: "app"}}, nil, nil)
		if err != nil || plan[0].Built || plan[0].Loaded || plan[0].Tag == "" {
			t.Fatalf("a plan without docker: %+v %v", plan, err)
		}
		if err := launch.BuildImages(context.Background(), root, plan, launch.BuildOptions{}); !errors.Is(err, launch.ErrNoBuilder) {
			t.Fatalf("building without docker: %v", err)
		}
	})

	eachBuilder(t, func(t *testing.T, builder launch.Builder) {
		testBuildFailures(t, dc, builder)
	})
}

func testBuildFailures(t *testing.T, dc *client.Client, builder launch.Builder) {
	t.Run("failing RUN", func(t *testing.T) {
		t.Parallel()
		plan, out, err := buildOne(t, dc, builder, map[string]string{"app/Dockerfile": "FROM scratch\nCOPY payload /payload\nRUN [\"/payload\", \"--fail\"]\n"})
		if !errors.Is(err, launch.ErrBuild) {
			t.Fatalf("a failing RUN: %v", err)
		}
		msg := err.Error()
		wants := []string{"last lines of the build log", "step 40 of a failing build", "payload: fatal: this step fails on purpose"}
		step := " Step 3/4 : RUN "
		if builder == launch.BuilderBuildKit {
			// BuildKit's error names the failing step.
			wants = append(wants, `[2/2] RUN ["/payload", "--fail"]: `, "exit code: 1")
			step = ` [2/2] RUN ["/payload", "--fail"]`
		} else {
			wants = append(wants, "non-zero code")
		}
		for _, want := range wants {
			if !strings.Contains(msg, want) {
				t.Errorf("the error lacks %q:\n%s", want, msg)
			}
		}
		if strings.Contains(msg, "step 1 of") || strings.Contains(msg, "\x1b") || strings.Contains(msg, "[31m") || strings.Contains(msg, "intermediate container") || strings.Contains(msg, "[internal]") {
			t.Errorf("the error carries more than the log's tail, or terminal escapes:\n%q", msg)
		}
		if len(hint.Of(err)) == 0 || !strings.Contains(out, "failed ") {
			t.Errorf("no hint or no progress line: %v\n%s", hint.Of(err), out)
		}
		if !strings.Contains(out, plan[0].Artifact.Image+":"+step) {
			t.Errorf("the progress does not name the step that ran (%q):\n%s", step, out)
		}
		if tagged(t, dc, plan[0].Tag) {
			t.Error("a failed build was tagged")
		}
	})

	t.Run("endless output", func(t *testing.T) {
		t.Parallel()
		prefix := "harmony-test-" + randomHex() + "-"
		removeImages(t, dc, prefix)
		root := t.TempDir()
		writeTree(t, root, map[string]string{"app/Dockerfile": "FROM scratch\nCOPY payload /payload\nRUN [\"/payload\", \"--spew\"]\n"})
		if err := os.WriteFile(filepath.Join(root, "app", "payload"), payload(t), 0o755); err != nil {
			t.Fatal(err)
		}
		plan, err := launch.PlanImages(context.Background(), root, []launch.ImageArtifact{{Image: prefix + "app", Context: "app"}}, dc, nil)
		if err != nil {
			t.Fatal(err)
		}
		// The classic builder sends all a build prints: harmony stops it at its cap, however long
		// a loaded machine takes to stream 32 MiB (the deadline only ends a build never stopped).
		// BuildKit clips a step's log itself and slows it down: the build then runs until stopped.
		deadline := 30 * time.Second
		if builder == launch.BuilderClassic {
			deadline = 3 * time.Minute
		}
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		done := make(chan error, 1)
		go func() {
			done <- launch.BuildImages(ctx, root, plan, launch.BuildOptions{Docker: dc, Builder: builder})
		}()
		select {
		case err = <-done:
		case <-time.After(4 * time.Minute):
			t.Fatal("a build printing without end was not stopped")
		}
		capped := errors.Is(err, launch.ErrBuild) && strings.Contains(err.Error(), "printed more than 32 MiB")
		if builder == launch.BuilderClassic && !capped || builder == launch.BuilderBuildKit && !capped && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("endless output: %v", err)
		}
		if len(err.Error()) > 64<<10 {
			t.Fatalf("the error is %d bytes long", len(err.Error()))
		}
		if tagged(t, dc, plan[0].Tag) {
			t.Error("a stopped build was tagged")
		}
	})

	t.Run("a build that never ends", func(t *testing.T) {
		t.Parallel()
		prefix := "harmony-test-" + randomHex() + "-"
		removeImages(t, dc, prefix)
		root := t.TempDir()
		writeTree(t, root, map[string]string{"app/Dockerfile": "FROM scratch\nCOPY payload /payload\nRUN [\"/payload\"]\n"})
		if err := os.WriteFile(filepath.Join(root, "app", "payload"), payload(t), 0o755); err != nil {
			t.Fatal(err)
		}
		plan, err := launch.PlanImages(context.Background(), root, []launch.ImageArtifact{{Image: prefix + "app", Context: "app"}}, dc, nil)
		if err != nil {
			t.Fatal(err)
		}
		// The user's Ctrl-C (or a deadline) stops it.
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- launch.BuildImages(ctx, root, plan, launch.BuildOptions{Docker: dc, Builder: builder}) }()
		select {
		case err = <-done:
		case <-time.After(3 * time.Minute):
			t.Fatal("a build that never ends was not stopped by its context")
		}
		if !errors.Is(err, context.DeadlineExceeded) || tagged(t, dc, plan[0].Tag) {
			t.Fatalf("a stopped build: %v", err)
		}
	})

	t.Run("context changed after the plan", func(t *testing.T) {
		t.Parallel()
		prefix := "harmony-test-" + randomHex() + "-"
		removeImages(t, dc, prefix)
		root := t.TempDir()
		writeTree(t, root, map[string]string{"app/Dockerfile": "FROM scratch\nCOPY . /\n", "app/a.txt": "1"})
		ctx := context.Background()
		plan, err := launch.PlanImages(ctx, root, []launch.ImageArtifact{{Image: prefix + "app", Context: "app"}}, dc, nil)
		if err != nil {
			t.Fatal(err)
		}
		writeTree(t, root, map[string]string{"app/a.txt": "2"})
		err = launch.BuildImages(ctx, root, plan, launch.BuildOptions{Docker: dc, Builder: builder})
		if !errors.Is(err, launch.ErrContextChanged) {
			t.Fatalf("a context changed after the plan: %v", err)
		}
		if tagged(t, dc, plan[0].Tag) {
			t.Error("an image built from other files than its tag says was tagged")
		}
	})
}

// BenchmarkImagesNoChange measures the image step of a no-change re-launch of a two-image
// project (the stand-in k3d node as the runtime): both contexts hashed, the engine and the
// runtime asked, nothing built or loaded (scripts/bench images).
func BenchmarkImagesNoChange(b *testing.B) {
	dc := dockertest.Need(b)
	prefix := "harmony-bench-" + randomHex() + "-"
	removeImages(b, dc, prefix)
	root, arts := twoImages(b, prefix)
	node, loader := k3dStandin(b, dc)
	ctx := context.Background()
	plan, err := launch.PlanImages(ctx, root, arts, dc, loader)
	if err != nil {
		b.Fatal(err)
	}
	if err := launch.BuildImages(ctx, root, plan, launch.BuildOptions{Docker: dc, Loader: loader}); err != nil {
		b.Fatal(err)
	}
	var out bytes.Buffer
	for b.Loop() {
		plan, err := launch.PlanImages(ctx, root, arts, dc, loader)
		if err != nil {
			b.Fatal(err)
		}
		if err := launch.BuildImages(ctx, root, plan, launch.BuildOptions{Docker: dc, Loader: loader, Out: &out}); err != nil {
			b.Fatal(err)
		}
		if out.Len() != 0 {
			b.Fatalf("a no-change run did something:\n%s", out.String())
		}
	}
	b.ReportMetric(float64(len(dockertest.NodeImports(b, dc, node))-1), "imports-after-first")
}

// BenchmarkRelaunchImagesNoChange measures a no-change re-launch of the two-artifact
// fixture (skaffold.yaml, kustomize), as the CLI runs it without the process start: resolve,
// discover, render, PrepareImages (contexts hashed, engine and runtime asked: the stand-in k3d
// node), server-side dry run and apply on the test API server. Nothing may be built or loaded
// (scripts/bench images).
func BenchmarkRelaunchImagesNoChange(b *testing.B) {
	dc := dockertest.Need(b)
	prefix := "harmony-bench-" + randomHex() + "-"
	removeImages(b, dc, prefix)
	root := imageRepo(b, prefix, nil)
	node, loader := k3dStandin(b, dc)
	l := newImageLaunch(b, root, dc, loader)
	if _, _, err := l.run(false); err != nil {
		b.Fatal(err)
	}
	builds := 0
	for b.Loop() {
		imgs, rep, err := l.run(false)
		if err != nil {
			b.Fatal(err)
		}
		for _, s := range imgs {
			if s.Built || s.Loaded || s.State != launch.ImageCached {
				builds++
				b.Errorf("a no-change re-launch did work on %s: %+v", s.Image, s)
			}
		}
		for _, s := range rep.Plan {
			if s.Action != launch.Unchanged {
				b.Fatalf("%s: %s on a no-change re-launch", s.Ref, s.Action)
			}
		}
	}
	b.ReportMetric(float64(builds), "builds")
	b.ReportMetric(float64(len(dockertest.NodeImports(b, dc, node))-1), "imports-after-first")
}

// TestBuildImagesUsesBuildKit builds a Dockerfile only BuildKit understands (RUN --mount): with
// the builder chosen for this engine (BuildKit: a Linux engine of API 1.39 or later), with
// BuildKit asked for, and not with the classic builder (asked for, or DOCKER_BUILDKIT=0).
// Not parallel: it sets DOCKER_BUILDKIT.
func TestBuildImagesUsesBuildKit(t *testing.T) {
	dc := dockertest.Need(t)
	mount := map[string]string{
		"app/Dockerfile": "FROM scratch\nRUN --mount=type=bind,target=/ctx [\"/ctx/payload\", \"--copy\", \"/ctx/index.html\", \"/index.html\"]\nCMD [\"/index.html\"]\n",
		"app/index.html": "<h1>mounted</h1>",
	}
	for _, tc := range []struct {
		name, env string
		builder   launch.Builder
		buildkit  bool
	}{
		{"chosen", "", launch.BuilderAuto, true},
		{"DOCKER_BUILDKIT=1", "1", launch.BuilderAuto, true},
		{"asked for", "0", launch.BuilderBuildKit, true}, // the option wins over the environment
		{"DOCKER_BUILDKIT=0", "0", launch.BuilderAuto, false},
		{"classic asked for", "1", launch.BuilderClassic, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(launch.BuildKitEnv, tc.env)
			plan, out, err := buildOne(t, dc, tc.builder, mount)
			if !tc.buildkit {
				if !errors.Is(err, launch.ErrBuild) || !strings.Contains(err.Error(), "requires BuildKit") || tagged(t, dc, plan[0].Tag) {
					t.Fatalf("a RUN --mount build with the classic builder: %v\n%s", err, out)
				}
				return
			}
			if err != nil {
				t.Fatalf("a RUN --mount build: %v\n%s", err, out)
			}
			if got := fileInImage(t, dc, plan[0].Tag, "/index.html"); string(got) != "<h1>mounted</h1>" {
				t.Errorf("/index.html in the image: %q", got)
			}
		})
	}

	t.Run("DOCKER_BUILDKIT=maybe", func(t *testing.T) {
		t.Setenv(launch.BuildKitEnv, "maybe")
		_, _, err := buildOne(t, dc, launch.BuilderAuto, mount)
		if err == nil || !strings.Contains(err.Error(), `DOCKER_BUILDKIT "maybe"`) || len(hint.Of(err)) == 0 {
			t.Fatalf("DOCKER_BUILDKIT=maybe: %v (hints %q)", err, hint.Of(err))
		}
	})
}

// refusingEngine is a stand-in for an engine without BuildKit: a proxy to the real engine
// that refuses BuildKit builds as such an engine does (400, invalid parameter) and counts them.
func refusingEngine(t *testing.T, dc *client.Client) (*client.Client, *atomic.Int32) {
	t.Helper()
	u, err := url.Parse(dc.DaemonHost())
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{}
	switch u.Scheme {
	case "unix":
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", u.Path)
		}
	case "tcp":
		u.Scheme = "http"
	default:
		t.Fatalf("a docker engine at %s: the test proxies only unix and tcp", dc.DaemonHost())
	}
	target := &url.URL{Scheme: "http", Host: "docker"}
	if u.Scheme == "http" {
		target.Host = u.Host
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.Transport = tr
	var refused atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/build") && r.URL.Query().Get("version") == "2" {
			refused.Add(1)
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"message":"buildkit not supported by this stand-in engine"}`)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	c, err := client.NewClientWithOpts(client.WithHost("tcp://"+srv.Listener.Addr().String()), client.WithAPIVersionNegotiation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, &refused
}

// TestBuildImagesBuildKitRefused: an engine that refuses BuildKit gets the classic builder, once
// per launch and visibly, when the choice was harmony's; asked for, BuildKit's refusal is the
// error.
func TestBuildImagesBuildKitRefused(t *testing.T) {
	dc := dockertest.Need(t)
	t.Setenv(launch.BuildKitEnv, "")
	engine, refused := refusingEngine(t, dc)
	prefix := "harmony-test-" + randomHex() + "-"
	removeImages(t, dc, prefix)
	root, arts := twoImages(t, prefix)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	plan, err := launch.PlanImages(ctx, root, arts, engine, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err = launch.BuildImages(ctx, root, plan, launch.BuildOptions{Docker: engine, Out: &out, Builder: launch.BuilderBuildKit})
	if !errors.Is(err, launch.ErrBuild) || !strings.Contains(err.Error(), "buildkit not supported by this stand-in engine") || plan[0].Built || plan[1].Built {
		t.Fatalf("BuildKit asked for, refused: %v\n%s", err, out.String())
	}

	out.Reset()
	before := refused.Load()
	if err := launch.BuildImages(ctx, root, plan, launch.BuildOptions{Docker: engine, Out: &out}); err != nil {
		t.Fatalf("BuildKit chosen, refused: %v\n%s", err, out.String())
	}
	if n := strings.Count(out.String(), "building with the classic builder"); n != 1 {
		t.Errorf("the fallback is said %d times, want once:\n%s", n, out.String())
	}
	if n := refused.Load() - before; n < 1 || n > 2 {
		t.Errorf("%d BuildKit builds were refused, want 1 or 2 (the two builds may start together)", n)
	}
	for _, im := range plan {
		if !im.Built || !tagged(t, dc, im.Tag) {
			t.Errorf("%s was not built with the classic builder: %+v", im.Artifact.Image, im)
		}
	}
}

// BenchmarkBuildImage measures one image's build after an edit of its context, per builder: the
// two-image fixture's web image with a new index.html each time (its payload layer cached),
// built and tagged, not loaded (scripts/bench images).
func BenchmarkBuildImage(b *testing.B) {
	dc := dockertest.Need(b)
	for _, builder := range builders {
		b.Run(string(builder), func(b *testing.B) {
			prefix := "harmony-bench-" + randomHex() + "-"
			removeImages(b, dc, prefix)
			root, arts := twoImages(b, prefix)
			ctx := context.Background()
			n := 0
			for b.Loop() {
				b.StopTimer()
				n++
				writeTree(b, root, map[string]string{"web/index.html": fmt.Sprintf("<h1>edit %d %s</h1>", n, randomHex())})
				plan, err := launch.PlanImages(ctx, root, arts[:1], dc, nil)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				if err := launch.BuildImages(ctx, root, plan, launch.BuildOptions{Docker: dc, Builder: builder}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
