//go:build linux

package realnode_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/NationTech/harmony-agent/internal/releasetest"
	"github.com/NationTech/harmony-agent/internal/testcluster"
	"github.com/NationTech/harmony-agent/launch"
)

// startBuildkitd runs the buildkitd scripts/testenv builds with only the containerd worker, on
// the real node's containerd in the kubelet's namespace (k8s.io), as harmony runs it on k3s's;
// its socket and state in a folder only root can enter. It is stopped at the test's end. It
// returns the daemon's address.
func startBuildkitd(t *testing.T, c *testcluster.Cluster) string {
	t.Helper()
	bin := filepath.Join(testcluster.AssetsDir(), "buildkitd")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("buildkitd is not in %s: run %s (it builds it once)", testcluster.AssetsDir(), testcluster.BuildCommand)
	}
	dir, err := os.MkdirTemp("", "harmony-buildkitd-") // 0700
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "buildkitd.sock")
	config := fmt.Sprintf(`root = %q
[grpc]
  address = [%q]
[otel]
  socketPath = %q
[cdi]
  disabled = true
[worker.oci]
  enabled = false
[worker.containerd]
  enabled = true
  address = %q
  namespace = "k8s.io"
  snapshotter = "overlayfs"
  networkMode = "host"
  gc = true
`, filepath.Join(dir, "root"), "unix://"+sock, filepath.Join(dir, "otel.sock"), c.Node.Containerd)
	if err := os.WriteFile(filepath.Join(dir, "buildkitd.toml"), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "buildkitd.log")
	log, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command(bin, "--config", filepath.Join(dir, "buildkitd.toml"))
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("buildkitd's log:\n%s", lastBytes(b, 4000))
		}
	})
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := os.Stat(sock); err == nil {
			return "unix://" + sock
		}
		select {
		case err := <-exited:
			b, _ := os.ReadFile(logPath)
			t.Fatalf("buildkitd exited: %v\n%s", err, lastBytes(b, 4000))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("buildkitd never listened")
		}
	}
}

func lastBytes(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// nodeStore is the real node's containerd as launch sees an image store.
type nodeStore struct{ n *testcluster.RealNode }

func (s nodeStore) HasImages(ctx context.Context, tags []string) (map[string]bool, error) {
	imgs, err := s.n.Images(ctx)
	if err != nil {
		return nil, err
	}
	have := map[string]bool{}
	for _, t := range tags {
		for _, i := range imgs {
			have[t] = have[t] || i == t
		}
	}
	return have, nil
}

// fileInNodeImage reads a file of an image in the node's containerd, through a read-only
// mount of its snapshot.
func fileInNodeImage(t *testing.T, n *testcluster.RealNode, ref, name string) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	if _, err := n.CtrRun(ctx, nil, "images", "mount", ref, dir); err != nil {
		t.Fatalf("mount %s: %v", ref, err)
	}
	defer func() {
		if _, err := n.CtrRun(ctx, nil, "images", "unmount", dir); err != nil {
			t.Errorf("unmount %s: %v", ref, err)
		}
	}()
	return os.ReadFile(filepath.Join(dir, name))
}

// buildkitProject is launch's two-image fixture (launch/build_docker_test.go twoImages): web, its
// Dockerfile in its context with a .dockerignore; api, its Dockerfile outside its context, a
// target and a build argument. Both FROM scratch with the test's payload program.
func buildkitProject(t *testing.T, m *machine, prefix string) (string, []launch.ImageArtifact) {
	t.Helper()
	root := t.TempDir()
	writeFiles(t, root, map[string]string{
		"web/Dockerfile":          "FROM scratch\nCOPY payload /payload\nCOPY index.html /srv/index.html\nENTRYPOINT [\"/payload\"]\n",
		"web/index.html":          "<h1>web</h1>",
		"web/.dockerignore":       "*.tmp\n",
		"web/scratch.tmp":         "ignored",
		"services/api/main.txt":   "api",
		"docker/api.Dockerfile":   "FROM scratch AS base\nCOPY payload /payload\nENTRYPOINT [\"/payload\"]\nFROM base AS debug\nLABEL stage=debug\nFROM base AS prod\nARG GREETING\nCOPY main.txt /greeting-$GREETING\n",
		"docker/other.Dockerfile": "not sent",
	})
	for _, dir := range []string{"web", "services/api"} {
		m.payload(filepath.Join(root, dir, "payload"))
	}
	return root, []launch.ImageArtifact{
		{Image: prefix + "web", Context: "web"},
		{Image: prefix + "api", Context: "services/api", Dockerfile: "../../docker/api.Dockerfile", Target: "prod", BuildArgs: map[string]string{"GREETING": "hello"}},
	}
}

// TestBuildKitOnContainerd builds the two-image fixture with buildkitd's containerd worker on the
// real node's containerd, with no Docker engine anywhere: both images land in the kubelet's
// namespace under harmony's tags, built as their Dockerfiles say (target, build argument,
// .dockerignore); a second build builds nothing; an edit rebuilds one image; a failing RUN fails
// with its log's tail and leaves no image.
func TestBuildKitOnContainerd(t *testing.T) {
	c := testcluster.Need(t, cluster)
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
	addr := startBuildkitd(t, c)
	mod, err := releasetest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	m := &machine{t: t, c: c, root: mod}
	store := nodeStore{c.Node}
	bk := &launch.BuildKitd{Address: addr, Store: store}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	root, arts := buildkitProject(t, m, "bk-")

	build := func(what string) ([]launch.BuiltImage, string) {
		t.Helper()
		plan, err := launch.PlanBuildKit(ctx, root, arts, store)
		if err != nil {
			t.Fatalf("%s: plan: %v", what, err)
		}
		var out bytes.Buffer
		if err := launch.BuildImages(ctx, root, plan, launch.BuildOptions{BuildKit: bk, Out: &out}); err != nil {
			t.Fatalf("%s: %v\n%s", what, err, out.String())
		}
		t.Logf("%s:\n%s", what, out.String())
		for _, b := range plan {
			if !b.Built || !b.Loaded {
				t.Errorf("%s: %s is not marked built and loaded: %+v", what, b.Artifact.Image, b)
			}
		}
		return plan, out.String()
	}

	plan, out := build("first build")
	imgs, err := c.Node.Images(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range plan {
		if !strings.Contains(out, "building "+b.Artifact.Image) || !strings.Contains(out, "built "+b.Tag) {
			t.Errorf("no progress lines for %s:\n%s", b.Artifact.Image, out)
		}
		if !strings.Contains(strings.Join(imgs, "\n")+"\n", b.Tag+"\n") {
			t.Errorf("%s is not in the node's containerd (k8s.io): %q", b.Tag, imgs)
		}
	}
	if strings.Contains(out, "loading") {
		t.Errorf("BuildKit's images were loaded again:\n%s", out)
	}
	if b, err := fileInNodeImage(t, c.Node, plan[0].Tag, "srv/index.html"); err != nil || string(b) != "<h1>web</h1>" {
		t.Errorf("web's index.html: %q, %v", b, err)
	}
	if _, err := fileInNodeImage(t, c.Node, plan[0].Tag, "scratch.tmp"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("web has the file .dockerignore excludes: %v", err)
	}
	if b, err := fileInNodeImage(t, c.Node, plan[1].Tag, "greeting-hello"); err != nil || string(b) != "api" {
		t.Errorf("api's target prod with GREETING=hello: %q, %v", b, err)
	}

	_, out = build("second build")
	if strings.Contains(out, "building") {
		t.Errorf("an unchanged project was built again:\n%s", out)
	}

	writeFiles(t, root, map[string]string{"web/index.html": "<h1>web, edited</h1>"})
	plan2, out := build("build after an edit")
	if !strings.Contains(out, "building "+arts[0].Image+" ") || strings.Contains(out, "building "+arts[1].Image+" ") {
		t.Errorf("an edit of web rebuilt other than web:\n%s", out)
	}
	if plan2[0].Tag == plan[0].Tag || plan2[1].Tag != plan[1].Tag {
		t.Errorf("tags after the edit: %s %s, before: %s %s", plan2[0].Tag, plan2[1].Tag, plan[0].Tag, plan[1].Tag)
	}
	if b, err := fileInNodeImage(t, c.Node, plan2[0].Tag, "srv/index.html"); err != nil || string(b) != "<h1>web, edited</h1>" {
		t.Errorf("the rebuilt web's index.html: %q, %v", b, err)
	}

	// A launch's images step with this builder: no Docker engine and no loader needed, the
	// images already where they run.
	states, err := launch.PrepareImages(ctx, &launch.Source{Root: root, Images: arts}, nil, launch.ImageOptions{BuildKit: bk})
	if err != nil {
		t.Fatalf("prepare the images with BuildKit: %v", err)
	}
	for _, st := range states {
		if st.Builder != launch.BuilderBuildKitd || st.State != launch.ImageCached || st.Built || st.Loaded {
			t.Errorf("%s: %+v, want cached by buildkitd", st.Image, st)
		}
	}

	t.Run("failing RUN", func(t *testing.T) {
		fail := []launch.ImageArtifact{{Image: "bk-fail", Context: "web", Dockerfile: "../fail.Dockerfile"}}
		writeFiles(t, root, map[string]string{"fail.Dockerfile": "FROM scratch\nCOPY payload /payload\nRUN [\"/payload\", \"--fail\"]\n"})
		plan, err := launch.PlanBuildKit(ctx, root, fail, store)
		if err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		err = launch.BuildImages(ctx, root, plan, launch.BuildOptions{BuildKit: bk, Out: &out})
		if !errors.Is(err, launch.ErrBuild) {
			t.Fatalf("a failing RUN: %v\n%s", err, out.String())
		}
		msg := err.Error()
		t.Logf("%s\n%s", out.String(), msg)
		for _, want := range []string{`[2/2] RUN ["/payload", "--fail"]`, "exit code: 1", "last lines of the build log", "step 40 of a failing build", "payload: fatal: this step fails on purpose"} {
			if !strings.Contains(msg, want) {
				t.Errorf("the error lacks %q:\n%s", want, msg)
			}
		}
		if strings.Contains(msg, "step 1 of") || strings.Contains(msg, "\x1b") || strings.Contains(msg, "rpc error") {
			t.Errorf("the error carries more than the log's tail, terminal escapes or gRPC's wrapping:\n%q", msg)
		}
		if !strings.Contains(out.String(), `bk-fail: [2/2] RUN ["/payload", "--fail"]`) || !strings.Contains(out.String(), "failed bk-fail") {
			t.Errorf("the progress does not name the failing step:\n%s", out.String())
		}
		if have, _ := store.HasImages(ctx, []string{plan[0].Tag}); have[plan[0].Tag] {
			t.Error("a failed build left an image in the node's containerd")
		}
	})
}
