// Tests of the packages the release pipeline makes beside the archives: .deb/.rpm/.apk (nfpm),
// the Homebrew cask and the Scoop manifest, checked on the snapshot release scripts/test builds.
package install_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/NationTech/harmony-agent/installer"
)

// checksums returns the snapshot's checksums.txt as a map.
func checksums(t *testing.T, dist string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dist, "checksums.txt"))
	if err != nil {
		t.Fatal(err)
	}
	sums, err := installer.ParseChecksums(b)
	if err != nil {
		t.Fatal(err)
	}
	return sums
}

func TestPackagesAreCoveredByChecksums(t *testing.T) {
	s := needSnapshot(t)
	sums := checksums(t, s.Dist)
	for _, name := range []string{
		"harmony_" + s.Version + "_amd64.deb", "harmony_" + s.Version + "_arm64.deb",
		// .goreleaser.yaml names every package with Go's architecture names.
		"harmony_" + s.Version + "_amd64.rpm", "harmony_" + s.Version + "_arm64.rpm",
		"harmony_" + s.Version + "_amd64.apk", "harmony_" + s.Version + "_arm64.apk",
	} {
		if _, err := os.Stat(filepath.Join(s.Dist, name)); err != nil {
			t.Errorf("package %s: %v", name, err)
			continue
		}
		if _, ok := sums[name]; !ok {
			t.Errorf("checksums.txt does not list %s", name)
		}
	}
}

// The .deb unpacks into a throwaway root as dpkg would install it, and the binary runs there.
func TestDebInstallsAndRuns(t *testing.T) {
	s := needSnapshot(t)
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skip("the amd64 .deb runs on linux/amd64 only")
	}
	root := t.TempDir()
	deb := filepath.Join(s.Dist, "harmony_"+s.Version+"_amd64.deb")
	if out, err := exec.Command("dpkg-deb", "--extract", deb, root).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb --extract: %v\n%s", err, out)
	}
	out, err := exec.Command("dpkg-deb", "--field", deb, "Package", "Version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Package: harmony") {
		t.Fatalf("dpkg-deb --field: %v\n%s", err, out)
	}
	bin := filepath.Join(root, "usr", "bin", "harmony")
	got, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil || !strings.Contains(string(got), "harmony "+s.Version) {
		t.Fatalf("%s version: %v\n%s", bin, err, got)
	}
}

// The cask and the Scoop manifest point at the release's archives with their published digests.
func TestCaskAndScoopManifest(t *testing.T) {
	s := needSnapshot(t)
	sums := checksums(t, s.Dist)

	cask, err := os.ReadFile(filepath.Join(s.Dist, "homebrew", "Casks", "harmony.rb"))
	if err != nil {
		t.Fatal(err)
	}
	urls := regexp.MustCompile(`url "([^"]+)"`).FindAllStringSubmatch(string(cask), -1)
	digests := regexp.MustCompile(`sha256 "([0-9a-f]{64})"`).FindAllStringSubmatch(string(cask), -1)
	if len(urls) == 0 || len(urls) != len(digests) {
		t.Fatalf("cask: %d urls and %d digests:\n%s", len(urls), len(digests), cask)
	}
	for i, u := range urls {
		// The cask names its archives with Homebrew's #{version}.
		checkAsset(t, "cask", releaseTag(t, s), strings.ReplaceAll(u[1], "#{version}", s.Version), digests[i][1], sums)
	}

	b, err := os.ReadFile(filepath.Join(s.Dist, "scoop", "harmony.json"))
	if err != nil {
		t.Fatal(err)
	}
	var scoop struct {
		Version      string
		Architecture map[string]struct {
			URL  string
			Hash string
			Bin  any
		}
	}
	if err := json.Unmarshal(b, &scoop); err != nil {
		t.Fatalf("scoop manifest: %v", err)
	}
	if scoop.Version != s.Version || len(scoop.Architecture) == 0 {
		t.Fatalf("scoop manifest: version %q, %d architectures:\n%s", scoop.Version, len(scoop.Architecture), b)
	}
	for arch, a := range scoop.Architecture {
		checkAsset(t, "scoop "+arch, releaseTag(t, s), a.URL, a.Hash, sums)
		if !strings.HasSuffix(a.URL, ".zip") || fmt.Sprint(a.Bin) != "[harmony.exe]" && fmt.Sprint(a.Bin) != "harmony.exe" {
			t.Errorf("scoop %s: url %q, bin %v", arch, a.URL, a.Bin)
		}
	}
}

// checkAsset requires url to be the release tag's download address of an archive that
// checksums.txt lists with digest.
// releaseTag is the tag goreleaser wrote into the release's links: "v"+version for a release,
// v0.0.0 for a snapshot (metadata.json says which).
func releaseTag(t *testing.T, s snapshot) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.Dist, "metadata.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct{ Tag string }
	if err := json.Unmarshal(b, &m); err != nil || m.Tag == "" {
		t.Fatalf("metadata.json: tag %q, %v", m.Tag, err)
	}
	return m.Tag
}

func checkAsset(t *testing.T, what, tag, url, digest string, sums map[string]string) {
	t.Helper()
	name := url[strings.LastIndex(url, "/")+1:]
	if !strings.HasSuffix(url, "/NationTech/harmony-agent/releases/download/"+tag+"/"+name) {
		t.Errorf("%s: url %q is not an asset of release %s", what, url, tag)
	}
	if want, ok := sums[name]; !ok || want != digest {
		t.Errorf("%s: %s has sha256 %s, checksums.txt lists %q", what, name, digest, want)
	}
}
