package bootstrap_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/NationTech/harmony-agent/bootstrap"
)

// harmony's buildkitd on k3s: k3s's containerd, the kubelet's namespace, one unix socket under
// /run/harmony/buildkit owned by root and the launching users' group, never TCP.
func TestBuildKitdConfig(t *testing.T) {
	t.Parallel()
	p := bootstrap.Paths{Root: "/"}
	c := p.BuildKitd(1234)
	if c.Socket() != "/run/harmony/buildkit/buildkitd.sock" || p.BuildKitSocket() != c.Socket() || c.Root != "/var/lib/harmony/buildkit" {
		t.Errorf("layout: %+v, socket %s", c, c.Socket())
	}
	toml := string(c.TOML())
	for _, want := range []string{
		`address = ["unix:///run/harmony/buildkit/buildkitd.sock"]`, "gid = 1234", "uid = 0",
		`socketPath = "/run/harmony/buildkit/otel.sock"`,
		"[worker.oci]\n  enabled = false", `address = "/run/k3s/containerd/containerd.sock"`, `namespace = "k8s.io"`,
	} {
		if !strings.Contains(toml, want) {
			t.Errorf("buildkitd.toml lacks %q:\n%s", want, toml)
		}
	}
	if strings.Contains(toml, "tcp://") || strings.Contains(toml, "debugAddress") {
		t.Errorf("buildkitd.toml listens beyond its socket:\n%s", toml)
	}
	if got := (bootstrap.Paths{Root: "/tmp/r"}).BuildKitd(0).Socket(); got != filepath.Join("/tmp/r", "run/harmony/buildkit/buildkitd.sock") {
		t.Errorf("under HARMONY_ROOT: %s", got)
	}
}
