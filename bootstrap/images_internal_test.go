package bootstrap

import (
	"context"
	"os/exec"
	"reflect"
	"testing"
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
}
