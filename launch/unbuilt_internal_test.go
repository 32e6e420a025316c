package launch

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A manifest's bare image name (no registry, no tag, no digest) that names a folder of the
// repository holding a Dockerfile is an image the repository builds: when nothing builds it
// (skaffold.yaml's or harmony.yaml's images), the launch warns before anything is applied.
func TestUnbuiltImages(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	for name, body := range map[string]string{
		"src/frontend/Dockerfile":       "FROM scratch\n",
		"src/cartService/Dockerfile":    "FROM scratch\n",
		"src/api/Dockerfile":            "FROM scratch\n",
		"node_modules/lib/Dockerfile":   "FROM scratch\n",
		".github/worker/Dockerfile":     "FROM scratch\n",
		"docs/redis/README.md":          "no Dockerfile here\n",
		"services/payments/Dockerfile/": "",
	} {
		p := filepath.Join(root, filepath.FromSlash(name))
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil { // a folder named Dockerfile
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	objs, err := decode("app.yaml", []byte(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  template:
    spec:
      initContainers: [{name: init, image: cartservice}]
      containers:
      - {name: server, image: frontend}
      - {name: cart, image: cartservice}
      - {name: pinned, image: "frontend:v1"}
      - {name: proxy, image: nginx}
      - {name: cache, image: redis}
      - {name: lib, image: lib}
      - {name: worker, image: worker}
      - {name: payments, image: payments}
      - {name: api, image: api}
      - {name: other, image: acme/frontend}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly}
spec:
  schedule: "@daily"
  jobTemplate:
    spec:
      template:
        spec:
          containers: [{name: job, image: frontend}]
`))
	if err != nil {
		t.Fatal(err)
	}
	built := []ImageArtifact{{Image: "api", Context: "src/api"}}
	got := unbuiltImages(root, built, objs)
	var names []string
	for _, u := range got {
		names = append(names, u.Image+"="+u.Context+"="+strings.Join(u.Containers, "; "))
	}
	want := []string{
		"cartservice=src/cartService=deployment/web: init, cart",
		"frontend=src/frontend=deployment/web: server; cronjob/nightly: job",
	}
	if strings.Join(names, "\n") != strings.Join(want, "\n") {
		t.Fatalf("unbuilt images:\n%s\nwant:\n%s", strings.Join(names, "\n"), strings.Join(want, "\n"))
	}
	line := unbuiltWarning(got)
	for _, w := range []string{"cartservice", "frontend", "deployment/web: server", "src/frontend", "harmony.yaml", "images:"} {
		if !strings.Contains(line, w) {
			t.Errorf("warning does not say %q:\n%s", w, line)
		}
	}
	if strings.Contains(line, "\n") {
		t.Errorf("warning is not one line:\n%s", line)
	}
	if got := unbuiltImages(root, append(built, ImageArtifact{Image: "frontend"}, ImageArtifact{Image: "library/cartservice"}), objs); len(got) != 0 {
		t.Errorf("images the project builds are warned about: %+v", got)
	}
}
