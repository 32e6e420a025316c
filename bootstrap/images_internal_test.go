package bootstrap

import (
	"context"
	"errors"
	"io"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
)

// TestK3sImagesRunThePinnedK3sThroughSudo: as a user, the installed k3s's ctr runs through sudo
// (containerd's socket is root's), with the versioned binary's absolute path, never a PATH
// lookup, and the user is told first.
func TestK3sImagesRunThePinnedK3sThroughSudo(t *testing.T) {
	bin := "/var/lib/harmony/k3s/v1.36.4+k3s1/k3s"
	store := &K3sImages{Paths: Paths{Root: "/"}, binary: bin}
	cmd, sudo, err := store.command(context.Background(), importArgs...)
	if _, lerr := exec.LookPath("sudo"); lerr != nil {
		if err == nil {
			t.Fatal("without sudo, a user's import did not fail")
		}
		return
	}
	if err != nil || !sudo {
		t.Fatalf("a user's import: sudo %v, %v", sudo, err)
	}
	want := []string{"--", bin, "ctr", "--address", "/run/k3s/containerd/containerd.sock", "-n", "k8s.io", "images", "import", "--all-platforms", "-"}
	if !reflect.DeepEqual(cmd.Args[1:], want) {
		t.Fatalf("sudo arguments %q, want %q", cmd.Args[1:], want)
	}

	store.direct = true
	cmd, sudo, err = store.command(context.Background(), "images", "ls", "-q")
	if err != nil || sudo || cmd.Path != bin || !reflect.DeepEqual(cmd.Args[1:], []string{"ctr", "--address", "/run/k3s/containerd/containerd.sock", "-n", "k8s.io", "images", "ls", "-q"}) {
		t.Fatalf("as root: %q sudo %v %v", cmd.Args, sudo, err)
	}
}

// TestImageOutputsAreBounded: what a runtime's ctr prints is kept within its caps.
func TestImageOutputsAreBounded(t *testing.T) {
	tail := &tailBuffer{max: 10}
	for _, s := range []string{"0123", "456789abc", "def", "ghijklmnopqrstuvwxyz"} {
		if n, err := tail.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("write %q: %d %v", s, n, err)
		}
	}
	if tail.String() != "qrstuvwxyz" {
		t.Fatalf("tail %q", tail.String())
	}
	list := &listBuffer{}
	line := []byte("docker.io/library/x:harmony-0123456789abcdef\n")
	var err error
	for written := 0; err == nil && written <= maxImageList+len(line); written += len(line) {
		_, err = list.Write(line)
	}
	if err == nil || list.Len() > maxImageList {
		t.Fatalf("an image list over %d bytes: %v (%d kept)", maxImageList, err, list.Len())
	}
	if got := present([]string{"x:harmony-0123456789abcdef", "y:1", "docker.io/library/x:harmony-0123456789abcdef"}, string(line)); !got["x:harmony-0123456789abcdef"] || got["y:1"] || !got["docker.io/library/x:harmony-0123456789abcdef"] {
		t.Fatalf("present: %v", got)
	}
	// launch's names are fully qualified already (harmony.invalid): listed as they are, and never
	// found as an image of the same path from another registry.
	own := "harmony.invalid/x:harmony-0123456789abcdef"
	if got := present([]string{own}, own+"\n"); !got[own] {
		t.Fatalf("present: %v", got)
	}
	if got := present([]string{own}, string(line)+"registry.example/x:harmony-0123456789abcdef\n"); got[own] {
		t.Fatalf("present: %v", got)
	}
}

// TestImageStreamEndsAfterItsLastBytes: a read returning the stream's last bytes with io.EOF
// must not yet say the stream has ended (k3d has still to write those bytes into the nodes'
// pipes, and the end closes them); the next read does. A read error cancels the import.
func TestImageStreamEndsAfterItsLastBytes(t *testing.T) {
	rt := &k3dImportRuntime{ended: make(chan struct{}), cancel: func() {}}
	s := &imageStream{ReadCloser: io.NopCloser(iotest.DataErrReader(strings.NewReader("archive"))), rt: rt}
	ended := func() bool {
		select {
		case <-rt.ended:
			return true
		default:
			return false
		}
	}
	b, err := io.ReadAll(io.LimitReader(s, 7))
	if string(b) != "archive" || err != nil || ended() {
		t.Fatalf("after the last bytes: %q, %v, ended %v", b, err, ended())
	}
	if n, err := s.Read(make([]byte, 8)); n != 0 || err != io.EOF || !ended() {
		t.Fatalf("after the end: %d, %v, ended %v", n, err, ended())
	}

	cancelled := false
	rt = &k3dImportRuntime{ended: make(chan struct{}), cancel: func() { cancelled = true }}
	s = &imageStream{ReadCloser: io.NopCloser(iotest.ErrReader(errors.New("engine gone"))), rt: rt}
	if _, err := s.Read(make([]byte, 8)); err == nil || !cancelled || rt.firstFailure() == nil || ended() {
		t.Fatalf("a failed read: %v, cancelled %v, failure %v", err, cancelled, rt.firstFailure())
	}
}
