//go:build linux

package bootstrap_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/NationTech/harmony-agent/internal/ctrstandin"
	"github.com/NationTech/harmony-agent/internal/dockertest"
	"github.com/NationTech/harmony-agent/internal/releasetest"
)

// TestLaunchBuildsImagesIntoK3s is issue 17 through the real harmony binary on a simulated Linux
// machine: harmony's k3s (the stand-in, serving the real test API server) and the real Docker
// engine. `harmony launch` on a skaffold.yaml (v4beta) project with two FROM scratch artifacts
// builds them, loads them through the pinned k3s's `ctr` (the stand-in records the import) and
// applies Deployments that run the content-tagged images with IfNotPresent; launching again
// builds and loads nothing; --dry-run says cached.
func TestLaunchBuildsImagesIntoK3s(t *testing.T) {
	t.Parallel()
	dc := dockertest.Need(t)
	m := newMachine(t)
	m.mustHarmony("bootstrap")
	prefix := randomName("harmony-test-e2e-") + "-"
	root := imageProject(t, dc, prefix)
	ns := strings.TrimSuffix(strings.TrimPrefix(prefix, "harmony-test-"), "-")
	t.Cleanup(func() { m.harmony("down", root, "-n", ns) })
	records := filepath.Join(filepath.Dir(m.path("run/k3s/containerd/containerd.sock")), "standin-images")

	type report struct {
		Images []struct {
			Image  string `json:"image"`
			Tag    string `json:"tag"`
			State  string `json:"state"`
			Built  bool   `json:"built"`
			Loaded bool   `json:"loaded"`
		} `json:"images"`
	}
	launch := func(args ...string) report {
		t.Helper()
		r := m.mustHarmony(append([]string{"launch", root, "-n", ns, "--no-wait", "-o", "json"}, args...)...)
		var rep report
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
			t.Fatalf("launch -o json: %v\n%s", err, r.stdout)
		}
		return rep
	}

	first := launch()
	if len(first.Images) != 2 || !first.Images[0].Built || !first.Images[0].Loaded || !first.Images[1].Built || !first.Images[1].Loaded {
		t.Fatalf("first launch: %+v", first.Images)
	}
	if imports := ctrstandin.Imports(records); len(imports) != 1 || len(imports[0]) != 2 {
		t.Fatalf("the k3s stand-in recorded the imports %q, want one import of both images", imports)
	}
	for i, name := range []string{"frontend", "backend"} {
		d, err := cluster.Client.AppsV1().Deployments(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		c := d.Spec.Template.Spec.Containers[0]
		// Named under .invalid: a node that lost the image can never pull someone else's.
		if c.Image != first.Images[i].Tag || !strings.HasPrefix(c.Image, "harmony.invalid/"+prefix+name+":harmony-") || c.ImagePullPolicy != "IfNotPresent" {
			t.Errorf("deployment %s runs %s (%s), want %s with IfNotPresent", name, c.Image, c.ImagePullPolicy, first.Images[i].Tag)
		}
		// The engine has the image under that name, and k3s's containerd got it under that name.
		if im, err := dc.ImageInspect(context.Background(), c.Image); err != nil || !slices.Contains(im.RepoTags, c.Image) {
			t.Errorf("the docker engine does not have %s by that name: %v %v", c.Image, im.RepoTags, err)
		}
		if !slices.Contains(ctrstandin.List(records), c.Image) {
			t.Errorf("k3s's containerd lists %q, not %s", ctrstandin.List(records), c.Image)
		}
	}

	start := time.Now()
	again := launch()
	took := time.Since(start)
	for _, im := range again.Images {
		if im.Built || im.Loaded || im.State != "cached" {
			t.Errorf("second launch: %+v", im)
		}
	}
	if n := len(ctrstandin.Imports(records)); n != 1 {
		t.Errorf("a launch with no change imported images (%d imports)", n)
	}
	t.Logf("harmony launch with no change (the whole command: runtime check, discover, render, images, plan, apply): %s", took.Round(time.Millisecond))

	dry := m.mustHarmony("launch", root, "-n", ns, "--dry-run")
	if !regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(prefix+"frontend") + ` +src/frontend +docker +cached `).MatchString(dry.stdout) {
		t.Errorf("dry run:\n%s", dry.stdout)
	}
}

// imageProject writes the fixture, a skaffold.yaml (v4beta) project with two FROM
// scratch artifacts (frontend, backend) copying a static program built here, and kustomize
// manifests using the bare names prefix+"frontend" and prefix+"backend"; the images built from
// it are removed with the test.
func imageProject(t *testing.T, dc *client.Client, prefix string) string {
	t.Helper()
	t.Cleanup(func() {
		ctx := context.Background()
		list, _ := dc.ImageList(ctx, image.ListOptions{})
		for _, im := range list {
			for _, tag := range im.RepoTags {
				if strings.HasPrefix(strings.TrimPrefix(tag, "harmony.invalid/"), prefix) {
					_, _ = dc.ImageRemove(ctx, tag, image.RemoveOptions{Force: true})
				}
			}
		}
	})

	modRoot, err := releasetest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(t.TempDir(), "shop")
	payload := filepath.Join(root, "src", "frontend", "payload")
	if err := os.MkdirAll(filepath.Dir(payload), 0o755); err != nil {
		t.Fatal(err)
	}
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", payload, "./launch/testdata/image-payload")
	build.Dir, build.Env = modRoot, append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the image payload: %v\n%s", err, out)
	}
	deploy := func(name string) string {
		return "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: " + name + "}\nspec:\n  selector: {matchLabels: {app: " + name + "}}\n" +
			"  template:\n    metadata: {labels: {app: " + name + "}}\n    spec:\n      containers: [{name: app, image: " + prefix + name + "}]\n"
	}
	files := map[string]string{
		"skaffold.yaml": "apiVersion: skaffold/v4beta11\nkind: Config\nbuild:\n  artifacts:\n" +
			"  - {image: " + prefix + "frontend, context: src/frontend}\n" +
			"  - {image: " + prefix + "backend, context: src/frontend, docker: {dockerfile: Dockerfile.backend}}\n" +
			"manifests: {kustomize: {paths: [kubernetes-manifests]}}\n",
		"src/frontend/Dockerfile":                 "FROM scratch\nCOPY payload /payload\nENTRYPOINT [\"/payload\"]\n",
		"src/frontend/Dockerfile.backend":         "FROM scratch\nCOPY payload /backend\nENTRYPOINT [\"/backend\"]\n",
		"kubernetes-manifests/kustomization.yaml": "resources: [frontend.yaml, backend.yaml]\n",
		"kubernetes-manifests/frontend.yaml":      deploy("frontend"),
		"kubernetes-manifests/backend.yaml":       deploy("backend"),
	}
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
