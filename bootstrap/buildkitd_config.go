package bootstrap

import (
	"fmt"
	"os"
	"path/filepath"
)

// BuildKitdConfig is how harmony runs buildkitd on k3s: only the containerd worker, on k3s's
// containerd in the kubelet's namespace (k8s.io), so what it builds is stored, unpacked (the
// overlayfs snapshotter, k3s's), where the kubelet runs it; its API on one unix socket in
// SocketDir, owned by root and the group GID (the users allowed to launch), mode 0660, in a
// folder of mode 0750: never world-writable, never a TCP port. Its state is under Root (0700).
type BuildKitdConfig struct {
	// Root is its state folder (/var/lib/harmony/buildkit).
	Root string
	// SocketDir holds its sockets (/run/harmony/buildkit).
	SocketDir string
	// Containerd is the containerd socket its worker builds into (k3s's).
	Containerd string
	// GID is the group that may use the socket, beside root.
	GID int
}

// Socket is the daemon's API socket.
func (c BuildKitdConfig) Socket() string { return filepath.Join(c.SocketDir, "buildkitd.sock") }

// TOML is its buildkitd.toml. The trace socket (which buildkitd makes world-writable) is in
// SocketDir too, which only root and GID can enter. RUN steps use the host's network, as k3s's
// own image pulls do.
func (c BuildKitdConfig) TOML() []byte {
	return fmt.Appendf(nil, `# harmony's buildkitd: the containerd worker only, building into k3s's containerd.
root = %q

[grpc]
  address = [%q]
  uid = 0
  gid = %d

[otel]
  socketPath = %q

[cdi]
  disabled = true

[worker.oci]
  enabled = false

[worker.containerd]
  enabled = true
  address = %q
  namespace = "k8s.io"
  snapshotter = "overlayfs"
  networkMode = "host"
  gc = true
`, c.Root, "unix://"+c.Socket(), c.GID, filepath.Join(c.SocketDir, "otel.sock"), c.Containerd)
}

// Prepare makes (or corrects) its folders before it starts: Root 0700 and owned by root,
// SocketDir 0750 owned by root and GID (buildkitd keeps a folder that exists as it is).
func (c BuildKitdConfig) Prepare() error {
	for _, d := range []struct {
		path string
		mode os.FileMode
		gid  int
	}{{c.Root, 0o700, 0}, {c.SocketDir, 0o750, c.GID}} {
		if err := os.MkdirAll(d.path, d.mode); err != nil {
			return err
		}
		if err := os.Chown(d.path, 0, d.gid); err != nil {
			return fmt.Errorf("own %q: %w", d.path, err)
		}
		if err := os.Chmod(d.path, d.mode); err != nil {
			return err
		}
	}
	return nil
}
