package bootstrap

import (
	"context"
	"errors"
)

// BuildKitSocket is the socket of harmony's buildkitd on the k3s runtime: its containerd worker
// builds into k3s's containerd (ContainerdSocket, namespace k8s.io). Only root and the group of
// the users allowed to launch may connect to it.
func (p Paths) BuildKitSocket() string { return p.at("/run/harmony/buildkit/buildkitd.sock") }

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
