//go:build unix

package bootstrap

import (
	"path/filepath"
	"testing"
)

// TestActingFor: harmony, root through sudo, writes a kubeconfig as root only in root's own
// home; anywhere else it acts for the user who ran sudo (privilege confusion).
func TestActingFor(t *testing.T) {
	t.Parallel()
	alice := &User{UID: 1000, GID: 1000, Home: filepath.FromSlash("/home/alice")}
	tests := []struct {
		rootHome, path string
		asRoot         bool
	}{
		{"/root", "/root/.kube/config", true},
		{"/root", "/home/alice/.kube/config", false},
		{"/root", "/root", false},
		{"/root", "/rootkit/.kube/config", false},
		{"/", "/home/alice/.kube/config", false}, // root's home is "/" in some containers
		{"/", "/etc/rancher/k3s/k3s.yaml", false},
		{"/home", "/home/alice/.kube/config", false}, // a root home above the user's
		{"", "/root/.kube/config", false},
	}
	for _, tt := range tests {
		got := actingFor(alice, filepath.FromSlash(tt.rootHome), filepath.FromSlash(tt.path))
		if (got == nil) != tt.asRoot {
			t.Errorf("root home %q, kubeconfig %q: acting for %+v", tt.rootHome, tt.path, got)
		}
	}
}
