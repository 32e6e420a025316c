package bootstrap

import (
	"strings"
	"testing"
)

// The log reading names the cause a user can act on: the kubelet's refusal of cgroup v1 is not
// "cgroups are not available", and a missing memory cgroup is named as such.
func TestLikelyCause(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ log, want string }{
		{`E0101 run.go:72] "command failed" err="failed to run Kubelet: invalid configuration: kubelet is configured to not run on a host using cgroup v1. cgroup v1 support is unsupported and will be removed in a future release"`,
			"cgroup v1"},
		{`level=fatal msg="starting kubernetes: preparing server: failed to find memory cgroup (v2)"`, "memory cgroup"},
		{`level=error msg="listen tcp 127.0.0.1:6443: bind: address already in use"`, "port"},
	} {
		got := likelyCause(tt.log)
		if !strings.Contains(got, tt.want) {
			t.Errorf("cause of %q: %q, want it to name %q", tt.log, got, tt.want)
		}
	}
	if got := likelyCause("kubelet is configured to not run on a host using cgroup v1"); strings.Contains(got, "run it privileged") {
		t.Errorf("cgroup v1 blamed on a missing privilege: %q", got)
	}
	if got := likelyCause("kubelet is configured to not run on a host using cgroup v1"); !strings.Contains(got, "systemd.unified_cgroup_hierarchy=1") {
		t.Errorf("the cgroup v1 cause does not say how to move to cgroup v2: %q", got)
	}
}
