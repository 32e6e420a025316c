// Package realnode holds the tests that see a launched project really run: harmony, installed
// from the snapshot release, on the test control plane with a real node (kubelet, containerd 2,
// runc and the CNI plugins; internal/testcluster's WithRealNode). Tests only.
package realnode
