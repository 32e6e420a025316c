package bootstrap

import (
	"context"
	"errors"
)

// BuildKitd is how harmony runs buildkitd on the k3s runtime (BuildKitdConfig): its state in
// /var/lib/harmony/buildkit, its socket in /run/harmony/buildkit, its containerd worker on k3s's
// containerd (ContainerdSocket, namespace k8s.io); gid is the group of the users allowed to
// launch, who may connect to it beside root.
func (p Paths) BuildKitd(gid int) BuildKitdConfig {
	return BuildKitdConfig{Root: p.at("/var/lib/harmony/buildkit"), SocketDir: p.at("/run/harmony/buildkit"), Containerd: p.ContainerdSocket(), GID: gid}
}

// BuildKitSocket is the socket of harmony's buildkitd on the k3s runtime.
func (p Paths) BuildKitSocket() string { return p.BuildKitd(0).Socket() }

// K3sImageList says which images k3s's containerd has, once k3s is installed: before that it has
// none. It is the store a BuildKit build on k3s is planned against (launch's ImageLister).
type K3sImageList struct{ K3s *K3s }

// HasImages asks k3s's ctr (through sudo when harmony is not root), as K3sImages does.
func (l K3sImageList) HasImages(ctx context.Context, tags []string) (map[string]bool, error) {
	s, err := l.K3s.Images(ctx, nil)
	if errors.Is(err, ErrNotInstalled) {
		return map[string]bool{}, nil
	}
	if err != nil {
		return nil, err
	}
	return s.HasImages(ctx, tags)
}
