//go:build unix

package launch_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/NationTech/harmony-agent/launch"
)

func mkfifo(p string) error { return syscall.Mkfifo(p, 0o644) }

// TestContextDigestHostileRepo: a repository cannot make harmony read outside it, block on a
// FIFO, or read without end.
func TestContextDigestHostileRepo(t *testing.T) {
	t.Parallel()
	outside := t.TempDir()
	writeTree(t, outside, map[string]string{"secret": "outside the project", "Dockerfile": "FROM scratch\n"})
	root := t.TempDir()
	writeTree(t, root, map[string]string{
		"ok/Dockerfile":      "FROM scratch\nCOPY . /\n",
		"linkdf/x":           "",
		"fifodf/x":           "",
		"fifoctx/Dockerfile": "FROM scratch\n",
		"fifoign/Dockerfile": "FROM scratch\n",
		"huge/Dockerfile":    "FROM scratch\n",
		"bigdf/x":            "",
	})
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.Symlink(outside, filepath.Join(root, "ctxlink")))
	must(os.Symlink(filepath.Join(outside, "Dockerfile"), filepath.Join(root, "linkdf", "Dockerfile")))
	must(os.Symlink("../../../../../../../../.."+outside+"/Dockerfile", filepath.Join(root, "ok", "Dockerfile.rel")))
	must(mkfifo(filepath.Join(root, "fifodf", "Dockerfile")))
	must(mkfifo(filepath.Join(root, "fifoctx", "pipe")))
	must(mkfifo(filepath.Join(root, "fifoign", ".dockerignore")))
	must(os.WriteFile(filepath.Join(root, "bigdf", "Dockerfile"), make([]byte, launch.MaxDockerfileSize+1), 0o644))
	f, err := os.Create(filepath.Join(root, "huge", "disk.img"))
	must(err)
	must(f.Truncate(launch.MaxContextSize + 1)) // sparse: refused before a byte is read
	f.Close()
	// A link in the context to a secret outside is sent as a link: the secret is never read.
	must(os.Symlink(filepath.Join(outside, "secret"), filepath.Join(root, "ok", "secret")))

	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, c := range []struct {
			art  launch.ImageArtifact
			want error
		}{
			{launch.ImageArtifact{Image: "a", Context: "ctxlink"}, launch.ErrOutside},
			{launch.ImageArtifact{Image: "a", Context: ".."}, launch.ErrOutside},
			{launch.ImageArtifact{Image: "a", Context: outside}, launch.ErrOutside},
			{launch.ImageArtifact{Image: "a", Context: "linkdf"}, launch.ErrOutside},
			{launch.ImageArtifact{Image: "a", Context: "ok", Dockerfile: "Dockerfile.rel"}, launch.ErrOutside},
			{launch.ImageArtifact{Image: "a", Context: "ok", Dockerfile: "../../Dockerfile"}, launch.ErrOutside},
			{launch.ImageArtifact{Image: "a", Context: "fifodf"}, launch.ErrNotRegular},
			{launch.ImageArtifact{Image: "a", Context: "fifoign"}, launch.ErrNotRegular},
			{launch.ImageArtifact{Image: "a", Context: "bigdf"}, launch.ErrTooLarge},
			{launch.ImageArtifact{Image: "a", Context: "huge"}, launch.ErrTooLarge},
			{launch.ImageArtifact{Image: "a", Context: "missing"}, os.ErrNotExist},
			{launch.ImageArtifact{Image: "a", Context: "ok", Dockerfile: "Nope"}, os.ErrNotExist},
		} {
			_, err := launch.ContextDigest(root, c.art)
			if !errors.Is(err, c.want) {
				t.Errorf("%+v: %v, want %v", c.art, err, c.want)
			}
		}
		// A FIFO in the context is listed, never opened.
		digest(t, root, launch.ImageArtifact{Image: "a", Context: "fifoctx"})
		ok := launch.ImageArtifact{Image: "a", Context: "ok"}
		before := digest(t, root, ok)
		writeTree(t, outside, map[string]string{"secret": "changed outside the project"})
		if digest(t, root, ok) != before {
			t.Error("the digest depends on a file outside the project")
		}
	}()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("hashing a hostile repository hung")
	}
	if _, err := launch.ContextDigest(root, launch.ImageArtifact{Image: "a", Context: "huge"}); err == nil || !strings.Contains(err.Error(), ".dockerignore") && !strings.Contains(err.Error(), "2 GiB") {
		t.Errorf("the huge context's error does not say the limit: %v", err)
	}
}
