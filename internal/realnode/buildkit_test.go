//go:build linux

package realnode_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/NationTech/harmony-agent/bootstrap"
	"github.com/NationTech/harmony-agent/internal/releasetest"
	"github.com/NationTech/harmony-agent/internal/testcluster"
	"github.com/NationTech/harmony-agent/launch"
)

// startBuildkitd runs the buildkitd scripts/testenv builds as harmony runs it on k3s
// (bootstrap.BuildKitdConfig: only the containerd worker, in the kubelet's namespace), on the
// real node's containerd, its socket and state in a folder only root can enter. It is stopped at
// the test's end. It returns the daemon's address.
func startBuildkitd(t *testing.T, c *testcluster.Cluster) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "harmony-buildkitd-") // 0700
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return startBuildkitdWith(t, bootstrap.BuildKitdConfig{Root: filepath.Join(dir, "state"), SocketDir: filepath.Join(dir, "run"), Containerd: c.Node.Containerd})
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

// twoImageProject is the two-artifact skaffold fixture as an app: web (its Dockerfile in
// its context) and api (its Dockerfile outside its context, a target and a build argument),
// each a FROM scratch image of the HTTP server, each a Deployment with a readiness probe and a
// Service.
func (m *machine) twoImageProject(name string) string {
	root := filepath.Join(m.t.TempDir(), name)
	m.payload(filepath.Join(root, "web", "server"))
	m.payload(filepath.Join(root, "services", "api", "server"))
	files := map[string]string{
		"skaffold.yaml": "apiVersion: skaffold/v4beta11\nkind: Config\nbuild:\n  artifacts:\n  - {image: " + name + "-web, context: web}\n" +
			"  - image: " + name + "-api\n    context: services/api\n    docker: {dockerfile: ../../docker/api.Dockerfile, target: prod, buildArgs: {PORT: \"8081\"}}\n" +
			"manifests: {rawYaml: [k8s/*.yaml]}\n",
		"web/Dockerfile":        "FROM scratch\nCOPY server /server\nENTRYPOINT [\"/server\", \"--serve\", \":8080\"]\n",
		"web/.dockerignore":     "*.tmp\n",
		"web/notes.tmp":         "not sent",
		"docker/api.Dockerfile": "FROM scratch AS base\nCOPY server /server\nFROM base AS debug\nENTRYPOINT [\"/server\"]\nFROM base AS prod\nARG PORT\nENV PORT=$PORT\nENTRYPOINT [\"/server\", \"--serve\", \":8081\"]\n",
	}
	for _, app := range []struct{ name, port string }{{"web", "8080"}, {"api", "8081"}} {
		files["k8s/"+app.name+".yaml"] = `apiVersion: apps/v1
kind: Deployment
metadata: {name: ` + app.name + `}
spec:
  selector: {matchLabels: {app: ` + app.name + `}}
  template:
    metadata: {labels: {app: ` + app.name + `}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: ` + app.name + `
        image: ` + name + `-` + app.name + `
        ports: [{containerPort: ` + app.port + `}]
        readinessProbe:
          httpGet: {path: /healthz, port: ` + app.port + `}
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {name: ` + app.name + `}
spec:
  selector: {app: ` + app.name + `}
  ports: [{port: ` + app.port + `, targetPort: ` + app.port + `}]
`
	}
	writeFiles(m.t, root, files)
	return root
}

// TestRealNodeBuildKitLaunch is the test with harmony itself: installed by install.sh,
// bootstrapped on k3s (the stand-in serving the real node), no Docker engine reachable
// (DOCKER_HOST names a missing socket), BUILDKIT_HOST naming a buildkitd whose containerd worker
// builds into the real node's containerd. The two-image project launches: both images are in
// the node's k8s.io namespace under harmony's names, nothing is loaded, the pods run on the real
// node and answer; a second launch builds nothing; an edit rebuilds one image; a failing RUN
// shows its log's tail and applies nothing.
func TestRealNodeBuildKitLaunch(t *testing.T) {
	m := newMachine(t)
	addr := startBuildkitd(t, m.c)
	m.env = append(m.env, "DOCKER_HOST=unix:///nonexistent/docker.sock", "BUILDKIT_HOST="+addr)
	project := m.twoImageProject("bkapp")
	ns := "bkapp"

	out, code := m.run(project, m.bin, "launch", "--dry-run")
	if code != 0 || !regexp.MustCompile(`(?m)^bkapp-web +web +buildkitd +would build `).MatchString(out) || !regexp.MustCompile(`(?m)^bkapp-api +services/api +buildkitd +would build `).MatchString(out) {
		t.Fatalf("launch --dry-run (exit %d) does not say buildkitd builds both images:\n%s", code, out)
	}

	start := time.Now()
	out, code = m.run(project, m.bin, "launch")
	if code != 0 {
		t.Fatalf("harmony launch (exit %d):\n%s\nkubelet:\n%s", code, out, m.c.LogTail("kubelet", 20))
	}
	t.Logf("harmony launch (%s):\n%s", time.Since(start).Round(time.Millisecond), out)
	if strings.Contains(out, "loading ") || strings.Contains(out, "docker engine") || strings.Contains(out, "Docker") {
		t.Errorf("the launch loaded images or spoke of Docker:\n%s", out)
	}
	images, err := m.c.Node.Images(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	pods := m.pods(ns)
	if len(pods) != 2 {
		t.Fatalf("want two pods in %s, got %d", ns, len(pods))
	}
	for _, p := range pods {
		img := p.Spec.Containers[0].Image
		if !strings.HasPrefix(img, "harmony.invalid/bkapp-") || !slices.Contains(images, img) {
			t.Errorf("pod %s runs %s, which the node's containerd (k8s.io) does not list: %q", p.Name, img, images)
		}
		if p.Spec.NodeName != m.c.Node.Name || p.Status.Phase != corev1.PodRunning {
			t.Errorf("pod %s: node %q, phase %s", p.Name, p.Spec.NodeName, p.Status.Phase)
		}
		port := "8080"
		if p.Labels["app"] == "api" {
			port = "8081"
		}
		body, err := get(t, "http://"+p.Status.PodIP+":"+port+"/")
		if err != nil || body != "payload: hello from "+p.Name+"\n" {
			t.Errorf("GET %s's pod: %q, %v", p.Labels["app"], body, err)
		}
	}

	again, code := m.run(project, m.bin, "launch")
	if code != 0 || strings.Contains(again, "building ") || !strings.Contains(again, "0 created, 0 updated, 4 unchanged") {
		t.Fatalf("launch again with no change (exit %d) built or changed something:\n%s", code, again)
	}

	writeFiles(t, project, map[string]string{"web/Dockerfile": "FROM scratch\nCOPY server /server\nLABEL edited=yes\nENTRYPOINT [\"/server\", \"--serve\", \":8080\"]\n"})
	edited, code := m.run(project, m.bin, "launch")
	if code != 0 || !strings.Contains(edited, "building bkapp-web ") || strings.Contains(edited, "building bkapp-api ") {
		t.Fatalf("launch after an edit of web (exit %d) did not rebuild web alone:\n%s", code, edited)
	}

	deployed := func() map[string]string {
		list, err := m.c.Client.AppsV1().Deployments(ns).List(context.Background(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		imgs := map[string]string{}
		for _, d := range list.Items {
			imgs[d.Name] = d.Spec.Template.Spec.Containers[0].Image
		}
		return imgs
	}
	before := deployed()
	writeFiles(t, project, map[string]string{"docker/api.Dockerfile": "FROM scratch AS prod\nCOPY server /server\nRUN [\"/server\", \"--fail\"]\n"})
	failed, code := m.run(project, m.bin, "launch")
	if code == 0 || !strings.Contains(failed, "payload: fatal: this step fails on purpose") || !strings.Contains(failed, `RUN ["/server", "--fail"]`) || !strings.Contains(failed, "nothing was applied") {
		t.Fatalf("a failing RUN (exit %d) does not show its log's tail or does not say nothing was applied:\n%s", code, failed)
	}
	if after := deployed(); len(after) != 2 || after["web"] != before["web"] || after["api"] != before["api"] {
		t.Errorf("a failed build changed the deployments' images: %v, before %v", after, before)
	}
}
