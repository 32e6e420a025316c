package releasetest

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

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

func goBuild(out, pkg string, ldflags string) error {
	root, err := ModuleRoot()
	if err != nil {
		return err
	}
	cmd := exec.Command("go", "build", "-ldflags", ldflags, "-o", out, pkg)
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
	m.Serial = int64(serial)
	rel := m.DefaultRelease()
	for i := range m.K3s.Releases {
		if m.K3s.Releases[i].Version.Compare(rel.Version) != 0 {
			continue
		}
		assets := map[string]manifests.Asset{}
		for p, a := range m.K3s.Releases[i].Assets {
			if p == "linux/"+runtime.GOARCH {
				a = manifests.Asset{Name: a.Name, SHA256: Digest(standin)}
				s.Add(manifests.K3sRepo, rel.Version.String(), a.Name, standin)
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
