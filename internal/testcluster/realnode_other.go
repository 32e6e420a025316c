//go:build !linux

package testcluster

import "errors"

// RealNode is the real node of a cluster started with the RealNode option (Linux only).
type RealNode struct {
	Name, IP, Containerd, Ctr string
}

func (c *Cluster) startRealNode(string) error {
	return errors.New("a real node runs on Linux only")
}

func (n *RealNode) stop(*Cluster) {}

func (n *RealNode) kill() {}
