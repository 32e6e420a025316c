package pin_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/NationTech/harmony-agent/installer"
	"github.com/NationTech/harmony-agent/internal/pin"
	"github.com/NationTech/harmony-agent/internal/releasetest"
	"github.com/NationTech/harmony-agent/manifests"
)

const newTag = "v1.36.5+k3s1"

// upstream serves a k3s release with real files and their checksum files, as k3s publishes them
// (the arm checksum file is missing, as when a mirror did not copy it), and a k3d release.
func upstream(t *testing.T) (*releasetest.Server, map[string]string) {
	srv := releasetest.New(t)
	digests := map[string]string{}
	for _, arch := range []struct{ sums, bin, airgap string }{
		{"amd64", "k3s", "k3s-airgap-images-amd64.tar.zst"},
		{"arm64", "k3s-arm64", "k3s-airgap-images-arm64.tar.zst"},
	} {
		files := map[string][]byte{
			arch.bin:    []byte("k3s binary for " + arch.sums),
			arch.airgap: []byte("images for " + arch.sums),
		}
		for name, data := range files {
			srv.Add(manifests.K3sRepo, newTag, name, data)
			digests[name] = releasetest.Digest(data)
		}
		srv.Add(manifests.K3sRepo, newTag, "sha256sum-"+arch.sums+".txt", releasetest.Checksums(files))
	}
	k3d := map[string][]byte{}
	for _, name := range []string{"k3d-linux-amd64", "k3d-linux-arm64", "k3d-darwin-amd64", "k3d-darwin-arm64", "k3d-windows-amd64.exe"} {
		k3d[name] = []byte(name)
		digests[name] = releasetest.Digest(k3d[name])
		if name != "k3d-darwin-amd64" { // a file the mirror lacks: its size cannot be measured
			srv.Add(manifests.K3dRepo, "v5.9.1", name, k3d[name])
		}
	}
	srv.Add(manifests.K3dRepo, "v5.9.1", "checksums.txt", releasetest.Checksums(k3d))
	return srv, digests
}

func copyManifest(t *testing.T) string {
	p := filepath.Join(t.TempDir(), "runtimes.yaml")
	if err := os.WriteFile(p, manifests.Embedded(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPinWritesVerifiedDigestsAndBumpsSerial(t *testing.T) {
	t.Parallel()
	srv, digests := upstream(t)
	path := copyManifest(t)
	var out bytes.Buffer
	err := pin.Run(context.Background(), pin.Options{
		Manifest: path, K3s: newTag, K3d: "v5.9.1", Mirror: srv.URL,
		Fetcher: installer.NewFetcher(t.TempDir()), Out: &out,
		Now: func() time.Time { return time.Date(2027, 3, 1, 15, 4, 5, 0, time.UTC) },
	})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	m, err := manifests.Parse(raw)
	if err != nil {
		t.Fatalf("the loader refuses the pinned manifest: %v", err)
	}
	before, _ := manifests.Load()
	if m.Serial != before.Serial+1 || m.K3s.Default.String() != newTag || m.K3d.Version != "v5.9.1" {
		t.Fatalf("serial %d, default %s, k3d %s", m.Serial, m.K3s.Default, m.K3d.Version)
	}
	// Freeze: a new pin vouches for being current for manifests.Validity from the pin.
	if want := time.Date(2027, 8, 28, 0, 0, 0, 0, time.UTC); !m.Expires.Equal(want) {
		t.Fatalf("expires %v, want %v", m.Expires, want)
	}
	rel, err := m.Release(newTag)
	if err != nil {
		t.Fatal(err)
	}
	for platform, name := range map[string]string{"linux/amd64": "k3s", "linux/arm64": "k3s-arm64"} {
		if rel.Assets[platform].SHA256 != digests[name] {
			t.Errorf("%s: %q, want the digest from the checksum file", platform, rel.Assets[platform].SHA256)
		}
		// Endless data: the size is measured on the verified download and pinned with the digest.
		if a := rel.Assets[platform]; a.Size != int64(len("k3s binary for "+strings.TrimPrefix(platform, "linux/"))) || a.MaxSize != 0 {
			t.Errorf("%s: size %d, maxSize %d, want the measured size", platform, a.Size, a.MaxSize)
		}
	}
	if a := rel.Airgap["linux/arm64"]; a.Size != int64(len("images for arm64")) {
		t.Errorf("air-gap bundle size %d, want the measured size", a.Size)
	}
	if a := rel.Assets["linux/arm"]; a.SHA256 != "" || !strings.Contains(a.Unknown, "sha256sum-arm.txt could not be read") {
		t.Errorf("armhf without a checksum file: %+v, want unknown with the reason", a)
	}
	if rel.Image.Digest != "" || rel.Image.Unknown == "" {
		t.Errorf("image digest invented: %+v", rel.Image)
	}
	if a := m.K3d.Assets["darwin/arm64"]; a.SHA256 != digests["k3d-darwin-arm64"] || a.Size != int64(len("k3d-darwin-arm64")) {
		t.Errorf("k3d darwin/arm64: %+v", a)
	}
	if a := m.K3d.Assets["darwin/amd64"]; a.SHA256 != "" || !strings.Contains(a.Unknown, "size not measured") {
		t.Errorf("k3d darwin/amd64, missing from the mirror: %+v, want unknown with the reason", a)
	}
	// Older pins are kept.
	if _, err := m.Release("v1.36.4+k3s1"); err != nil {
		t.Error(err)
	}
	if !strings.Contains(out.String(), "linux/arm k3s-armhf: unknown") {
		t.Errorf("summary does not name the unknown digests:\n%s", out.String())
	}
}

func TestPinRefusesWhenNothingVerifies(t *testing.T) {
	t.Parallel()
	srv := releasetest.New(t) // the release does not exist on this mirror
	path := copyManifest(t)
	err := pin.Run(context.Background(), pin.Options{Manifest: path, K3s: "v1.36.9+k3s1", Mirror: srv.URL, Fetcher: installer.NewFetcher(t.TempDir())})
	if err == nil || !strings.Contains(err.Error(), "nothing written") {
		t.Fatalf("error %v", err)
	}
	if raw, _ := os.ReadFile(path); !bytes.Equal(raw, manifests.Embedded()) {
		t.Fatal("the manifest changed after a refused pin")
	}
}

func TestPinRuntimeScript(t *testing.T) {
	t.Parallel()
	srv, digests := upstream(t)
	path := copyManifest(t)
	cmd := exec.Command("../../scripts/pin-runtime", "--manifest", path, newTag)
	cmd.Env = append(os.Environ(), installer.MirrorEnv+"="+srv.URL)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	raw, _ := os.ReadFile(path)
	if !bytes.Contains(raw, []byte(digests["k3s-arm64"])) {
		t.Fatalf("script output lacks the pinned digest:\n%s", raw)
	}
	if _, err := manifests.Parse(raw); err != nil {
		t.Fatal(err)
	}
}
