package launch_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/distribution/reference"

	"github.com/NationTech/harmony-agent/launch"
)

// writeTree writes files (slash-separated names) under dir.
func writeTree(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func digest(t *testing.T, root string, a launch.ImageArtifact) string {
	t.Helper()
	d, err := launch.ContextDigest(root, a)
	if err != nil {
		t.Fatalf("digest of %+v: %v", a, err)
	}
	return d
}

func TestContextDigestFollowsContentNotTime(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"src/web/Dockerfile":     "FROM scratch\nCOPY . /\n",
		"src/web/main.txt":       "one",
		"src/web/static/app.css": "body{}",
		"src/api/Dockerfile":     "FROM scratch\n",
	})
	web := launch.ImageArtifact{Image: "web", Context: "src/web"}
	base := digest(t, root, web)
	if len(base) != 64 || digest(t, root, web) != base {
		t.Fatalf("digest %q is not a stable SHA-256", base)
	}
	tag, err := launch.ImageTag(web, base)
	if err != nil || tag != "harmony.invalid/web:harmony-"+base[:16] {
		t.Fatalf("tag %q, %v", tag, err)
	}
	if _, err := launch.ImageTag(launch.ImageArtifact{Image: "Not/Valid"}, base); err == nil {
		t.Fatal("an invalid image name was accepted")
	}

	// Times and a sibling context do not count.
	old := time.Now().Add(-48 * time.Hour)
	_ = os.Chtimes(filepath.Join(root, "src/web/main.txt"), old, old)
	writeTree(t, root, map[string]string{"src/api/main.go": "package main", "README.md": "x"})
	if d := digest(t, root, web); d != base {
		t.Fatal("the digest changed with a modification time or a file outside the context")
	}

	changes := []struct {
		name string
		do   func()
		art  launch.ImageArtifact
	}{
		{"a file's content", func() { writeTree(t, root, map[string]string{"src/web/main.txt": "two"}) }, web},
		{"a new file", func() { writeTree(t, root, map[string]string{"src/web/static/new.js": ""}) }, web},
		{"a renamed file", func() {
			_ = os.Rename(filepath.Join(root, "src/web/static/new.js"), filepath.Join(root, "src/web/static/old.js"))
		}, web},
		{"a file's mode", func() { _ = os.Chmod(filepath.Join(root, "src/web/main.txt"), 0o755) }, web},
		{"a symbolic link", func() { _ = os.Symlink("main.txt", filepath.Join(root, "src/web/link")) }, web},
		{"the Dockerfile", func() { writeTree(t, root, map[string]string{"src/web/Dockerfile": "FROM scratch\nCOPY main.txt /\n"}) }, web},
		{"the target", func() {}, launch.ImageArtifact{Image: "web", Context: "src/web", Target: "prod"}},
		{"a build argument", func() {}, launch.ImageArtifact{Image: "web", Context: "src/web", Target: "prod", BuildArgs: map[string]string{"V": "1"}}},
		{"a build argument's value", func() {}, launch.ImageArtifact{Image: "web", Context: "src/web", Target: "prod", BuildArgs: map[string]string{"V": "2"}}},
		// Arguments are not joined into "k=v" strings: these two are different builds.
		{"an argument holding '='", func() {}, launch.ImageArtifact{Image: "web", Context: "src/web", Target: "prod", BuildArgs: map[string]string{"A": "x=y"}}},
		{"an argument named with '='", func() {}, launch.ImageArtifact{Image: "web", Context: "src/web", Target: "prod", BuildArgs: map[string]string{"A=x": "y"}}},
	}
	seen := map[string]string{base: "the start"}
	for _, c := range changes {
		c.do()
		d := digest(t, root, c.art)
		if prev, ok := seen[d]; ok {
			t.Errorf("changing %s left the digest of %s", c.name, prev)
		}
		seen[d] = c.name
	}
}

func TestContextDigestHonoursDockerignore(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"app/Dockerfile":            "FROM scratch\nCOPY . /\n",
		"app/main.txt":              "main",
		"app/.dockerignore":         "# build output and secrets\nnode_modules\n*.log\n.git\nDockerfile\nsecrets/**\n!secrets/public.pem\n",
		"app/node_modules/x/y.js":   "1",
		"app/secrets/key.pem":       "private",
		"app/secrets/public.pem":    "public",
		"app/sub/Dockerfile.unused": "x",
	})
	a := launch.ImageArtifact{Image: "app", Context: "app"}
	base := digest(t, root, a)
	for name, data := range map[string]string{
		"app/node_modules/x/y.js":  "2",
		"app/node_modules/new.js":  "3",
		"app/debug.log":            "noise",
		"app/.git/HEAD":            "ref: refs/heads/main",
		"app/secrets/key.pem":      "rotated",
		"app/secrets/more/key.pem": "more",
	} {
		writeTree(t, root, map[string]string{name: data})
		if d := digest(t, root, a); d != base {
			t.Errorf("an ignored file (%s) changed the digest", name)
		}
	}
	// What .dockerignore lets through counts, and so do the Dockerfile and .dockerignore
	// themselves, even when listed (Docker always sends them).
	for name, data := range map[string]string{
		"app/secrets/public.pem": "new public key",
		"app/Dockerfile":         "FROM scratch\nCOPY main.txt /\n",
		"app/.dockerignore":      "node_modules\n*.log\n.git\nDockerfile\nsecrets/**\n!secrets/public.pem\n",
		"app/sub/kept.txt":       "kept",
		"app/sub/trace.log":      "*.log matches at the context's root only, as in Docker",
	} {
		writeTree(t, root, map[string]string{name: data})
		d := digest(t, root, a)
		if d == base {
			t.Errorf("a file that is sent (%s) did not change the digest", name)
		}
		base = d
	}
}

// TestImageTagNeverResolves: every image harmony builds is named under the reserved .invalid
// top-level domain (RFC 6761), so a node that lost the loaded image can only fail to pull it,
// never fetch an image someone published under that name. The name is the artifact's path
// without its registry host, valid for every name an artifact may have.
func TestImageTagNeverResolves(t *testing.T) {
	t.Parallel()
	d := strings.Repeat("0123456789abcdef", 4)
	long := strings.Repeat("a", 200) + "/" + strings.Repeat("b", 54) // a 255-character path
	for _, c := range []struct{ image, want string }{
		{"frontend", "frontend"},
		{"library/frontend", "frontend"}, // the same repository as frontend
		{"acme/frontend", "acme/frontend"},
		{"registry.example/team/web", "team/web"},
		{"registry.example/library/web", "library/web"},
		{"localhost:5000/web", "web"},
		{"localhost/web", "web"},
		{"Registry.Example:443/a/b/c", "a/b/c"},
		{"[::1]:5000/web", "web"},
		{"[2001:db8::1]/team/web", "team/web"},
		{"harmony.invalid/web", "web"},
		{"registry.example/a__b/c-d.e_f--g", "a__b/c-d.e_f--g"},
		{"registry.example/" + long, long},
	} {
		if _, err := reference.ParseNormalizedNamed(c.image); err != nil {
			t.Fatalf("%s is not an image name an artifact may have: %v", c.image, err)
		}
		got, err := launch.ImageTag(launch.ImageArtifact{Image: c.image}, d)
		if want := "harmony.invalid/" + c.want + ":harmony-0123456789abcdef"; err != nil || got != want {
			t.Errorf("ImageTag(%s) = %q, %v; want %s", c.image, got, err, want)
			continue
		}
		n, err := reference.ParseNormalizedNamed(got)
		if err != nil || reference.Domain(n) != "harmony.invalid" || n.String() != got {
			t.Errorf("ImageTag(%s) = %s: not a fully qualified reference under .invalid (%v)", c.image, got, err)
		}
	}
}
