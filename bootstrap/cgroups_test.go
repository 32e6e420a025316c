//go:build unix

package bootstrap_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/NationTech/harmony-agent/bootstrap"
)

// cgroupTree lays out /sys/fs/cgroup (and /proc/cgroups) under root as a host with cgroup
// version v mounts it: 1 (a hierarchy per controller on a tmpfs, as on RHEL 8 or this CI
// machine), 2 (one cgroup2 hierarchy), "hybrid" (v1 plus systemd's cgroup2 at unified/).
func cgroupTree(t *testing.T, root, v string) {
	t.Helper()
	cg := filepath.Join(root, "sys/fs/cgroup")
	switch v {
	case "2":
		must(t, os.MkdirAll(cg, 0o755))
		must(t, os.WriteFile(filepath.Join(cg, "cgroup.controllers"), []byte("cpuset cpu io memory hugetlb pids rdma misc\n"), 0o444))
	case "1", "hybrid":
		for _, c := range []string{"cpu", "cpuacct", "cpuset", "memory", "pids", "devices", "freezer", "systemd"} {
			must(t, os.MkdirAll(filepath.Join(cg, c), 0o755))
		}
		if v == "hybrid" {
			must(t, os.MkdirAll(filepath.Join(cg, "unified"), 0o755))
			must(t, os.WriteFile(filepath.Join(cg, "unified", "cgroup.controllers"), nil, 0o444))
		}
		must(t, os.MkdirAll(filepath.Join(root, "proc"), 0o755))
		must(t, os.WriteFile(filepath.Join(root, "proc/cgroups"), []byte(`#subsys_name	hierarchy	num_cgroups	enabled
cpuset	3	4	1
cpu	1	4	1
cpuacct	2	4	1
memory	4	108	1
devices	5	4	1
freezer	6	4	1
pids	8	4	1
`), 0o444))
	}
}

func TestCgroupVersion(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		layout string
		want   int
	}{{"", 0}, {"1", 1}, {"hybrid", 1}, {"2", 2}} {
		root := t.TempDir()
		cgroupTree(t, root, tt.layout)
		if got := bootstrap.CgroupVersion(root); got != tt.want {
			t.Errorf("layout %q: version %d, want %d", tt.layout, got, tt.want)
		}
	}
}

// On a cgroup v1 host every supervisor starts k3s with the kubelet's fail-cgroupv1=false (the
// kubelet of Kubernetes 1.35 and later refuses cgroup v1 otherwise); on cgroup v2 nothing is
// added.
func TestServiceArgsOnCgroupV1(t *testing.T) {
	t.Parallel()
	const arg = "'--kubelet-arg=fail-cgroupv1=false'"
	for _, tt := range []struct {
		name, marker, unit string
	}{
		{"systemd", "run/systemd/system/", "etc/systemd/system/k3s.service"},
		{"openrc", "sbin/openrc-run", "etc/init.d/k3s"},
	} {
		for _, v := range []string{"1", "2"} {
			t.Run(tt.name+" cgroup v"+v, func(t *testing.T) {
				t.Parallel()
				root := t.TempDir()
				cgroupTree(t, root, v)
				marker := filepath.Join(root, tt.marker)
				if strings.HasSuffix(tt.marker, "/") {
					must(t, os.MkdirAll(marker, 0o755))
				} else {
					must(t, os.MkdirAll(filepath.Dir(marker), 0o755))
					must(t, os.WriteFile(marker, nil, 0o755))
				}
				sup := bootstrap.DetectSupervisor(bootstrap.Paths{Root: root}, &recorder{})
				must(t, sup.Install(context.Background()))
				unit, err := os.ReadFile(filepath.Join(root, tt.unit))
				must(t, err)
				if has := strings.Contains(string(unit), arg); has != (v == "1") {
					t.Fatalf("cgroup v%s: the unit has %s: %v\n%s", v, arg, has, unit)
				}
			})
		}
	}
}

// A unit written before harmony knew about cgroup v1 (or before the nm-cloud-setup guard) is
// brought up to date when k3s is started again, and systemd reloads it.
func TestStartRewritesAnOutdatedUnit(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	cgroupTree(t, root, "1")
	must(t, os.MkdirAll(filepath.Join(root, "run/systemd/system"), 0o755))
	paths := bootstrap.Paths{Root: root}
	must(t, os.MkdirAll(filepath.Dir(paths.SystemdUnit()), 0o755))
	must(t, os.WriteFile(paths.SystemdUnit(), []byte(bootstrap.SystemdUnit()), 0o644))
	r := &recorder{}
	sup := bootstrap.DetectSupervisor(paths, r)
	must(t, sup.Start(context.Background()))
	unit, err := os.ReadFile(paths.SystemdUnit())
	must(t, err)
	if !strings.Contains(string(unit), "fail-cgroupv1=false") {
		t.Fatalf("the unit was not brought up to date:\n%s", unit)
	}
	if got := strings.Join(r.calls, "\n"); got != "systemctl daemon-reload\nsystemctl restart k3s" {
		t.Fatalf("calls:\n%s", got)
	}
}
