package releasetest

import (
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/NationTech/harmony-agent/manifests"
)

// ModuleRoot returns the repository root (where go.mod is), from a test's working directory.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", os.ErrNotExist
		}
		dir = parent
	}
}

// goBuild builds pkg as the release does (CGO off, -trimpath, GOFLAGS' tags), so it reuses the
// packages the snapshot stage compiled for this platform and only links.
func goBuild(out, pkg string, ldflags string) error {
	root, err := ModuleRoot()
	if err != nil {
		return err
	}
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", ldflags, "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return &buildError{pkg: pkg, out: string(b), err: err}
	}
	return nil
}

type buildError struct {
	pkg, out string
	err      error
}

func (b *buildError) Error() string { return "go build " + b.pkg + ": " + b.err.Error() + "\n" + b.out }

// BuildHarmony builds the harmony binary into dir, trusting only the given test keys (as a
// release build trusts the release key), and returns its path.
func BuildHarmony(dir string, trustedKeys ...string) (string, error) {
	out := filepath.Join(dir, "harmony")
	ldflags := "-X github.com/NationTech/harmony-agent/internal/buildinfo.Version=0.0.0-test -X github.com/NationTech/harmony-agent/internal/buildinfo.TrustedKeys=" + strings.Join(trustedKeys, ",")
	return out, goBuild(out, "./cmd/harmony", ldflags)
}

// BuildK3sStandin builds the k3s test stand-in (bootstrap/testdata/k3s-standin) into dir.
func BuildK3sStandin(dir string) (string, error) {
	out := filepath.Join(dir, "k3s-standin")
	return out, goBuild(out, "./bootstrap/testdata/k3s-standin", "-s -w")
}

// K3sRelease publishes on srv a runtime manifest whose default k3s release is the stand-in
// binary (for this machine's architecture), signed with sign, in harmony's release tag (which
// becomes the latest), plus the stand-in itself. It returns the manifest.
func (s *Server) K3sRelease(tag string, sign func([]byte) []byte, standin []byte, serial int) ([]byte, error) {
	m, err := manifests.Load()
	if err != nil {
		return nil, err
	}
	return s.K3sReleases(tag, sign, serial, map[string][]byte{m.K3s.Default.String(): standin})
}

// StandinVersion returns the stand-in's bytes made distinct for version (a trailer after the
// executable, which the program ignores), so each pinned version has its own digest.
func StandinVersion(standin []byte, version string) []byte {
	return append(append([]byte(nil), standin...), []byte("\nk3s-standin "+version+"\n")...)
}

// K3sReleases publishes on srv a signed runtime manifest (with the given serial) pinning each
// version of standins to its bytes for this machine's architecture, and serves those bytes as
// the k3s release assets. A version missing from the embedded manifest is added, modelled on the
// default release. The manifest goes in harmony's release tag, which becomes the latest; the
// manifest's bytes are returned.
func (s *Server) K3sReleases(tag string, sign func([]byte) []byte, serial int, standins map[string][]byte) ([]byte, error) {
	return s.K3sReleasesExpiring(tag, sign, serial, time.Time{}, standins)
}

// K3sReleasesExpiring is K3sReleases with the manifest's signed expiry set to expires (zero
// keeps the embedded manifest's), e.g. in the past to serve a frozen manifest.
func (s *Server) K3sReleasesExpiring(tag string, sign func([]byte) []byte, serial int, expires time.Time, standins map[string][]byte) ([]byte, error) {
	m, err := manifests.Load()
	if err != nil {
		return nil, err
	}
	m.Serial = int64(serial)
	if !expires.IsZero() {
		m.Expires = expires
	}
	model := m.DefaultRelease()
	for version, bin := range standins {
		v, err := manifests.ParseVersion(version)
		if err != nil {
			return nil, err
		}
		i := slices.IndexFunc(m.K3s.Releases, func(r manifests.Release) bool { return r.Version.Compare(v) == 0 })
		if i < 0 {
			r := model
			r.Version = v
			r.Image = manifests.Image{Ref: "rancher/k3s:" + v.ImageTag(), Unknown: "test stand-in release"}
			r.Assets = maps.Clone(model.Assets)
			m.K3s.Releases = append(m.K3s.Releases, r)
			i = len(m.K3s.Releases) - 1
		}
		assets := map[string]manifests.Asset{}
		for p, a := range m.K3s.Releases[i].Assets {
			if p == "linux/"+runtime.GOARCH {
				a = manifests.Asset{Name: a.Name, SHA256: Digest(bin), Size: int64(len(bin))}
				s.Add(manifests.K3sRepo, version, a.Name, bin)
			}
			assets[p] = a
		}
		m.K3s.Releases[i].Assets = assets
	}
	data, err := m.Marshal()
	if err != nil {
		return nil, err
	}
	s.Add(HarmonyRepo, tag, manifests.RemoteName, data)
	s.Add(HarmonyRepo, tag, manifests.RemoteSignature, sign(data))
	s.SetLatest(HarmonyRepo, tag)
	return data, nil
}
