package ctrstandin_test

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/NationTech/harmony-agent/internal/ctrstandin"
)

// saveStream is a minimal `docker save` stream of one image tagged tag.
func saveStream(t *testing.T, tag string) []byte {
	t.Helper()
	manifest, _ := json.Marshal([]map[string]any{{"Config": "config.json", "RepoTags": []string{tag}, "Layers": []string{"layer.tar"}}})
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, data := range map[string][]byte{"manifest.json": manifest, "config.json": []byte("{}"), "layer.tar": nil} {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(data))}); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write(data)
	}
	_ = tw.Close()
	return buf.Bytes()
}

// TestNamespaces: like k3s's ctr, the stand-in imports into k8s.io without -n (k3d's argv) and
// with -n k8s.io (harmony's); any other namespace is refused, and nothing is recorded.
func TestNamespaces(t *testing.T) {
	for _, c := range []struct {
		args []string
		ok   bool
	}{
		{[]string{"image", "import", "--all-platforms", "-"}, true},
		{[]string{"-n", "k8s.io", "images", "import", "--all-platforms", "-"}, true},
		{[]string{"--address", "/run/k3s/containerd/containerd.sock", "-n", "k8s.io", "images", "import", "-"}, true},
		{[]string{"-n", "default", "image", "import", "--all-platforms", "-"}, false},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			dir := t.TempDir()
			var out, errOut bytes.Buffer
			code := ctrstandin.Main(c.args, bytes.NewReader(saveStream(t, "frontend:x")), &out, &errOut, func(string) string { return dir })
			imports := ctrstandin.Imports(dir)
			if c.ok != (code == 0) {
				t.Fatalf("exit %d: %s", code, errOut.String())
			}
			if c.ok && (len(imports) != 1 || imports[0][0] != "docker.io/library/frontend:x") {
				t.Fatalf("recorded %q", imports)
			}
			if !c.ok && (len(imports) != 0 || !strings.Contains(errOut.String(), "k8s.io")) {
				t.Fatalf("refused import recorded %q, said %q", imports, errOut.String())
			}
		})
	}
}
