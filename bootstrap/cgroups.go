package bootstrap

import "path/filepath"

// CgroupV1KubeletArg is the k3s server flag that lets the kubelet run on a cgroup v1 host: since
// Kubernetes 1.35 the kubelet refuses to start there unless told (failCgroupV1), and k3s
// inherits the default.
const CgroupV1KubeletArg = "--kubelet-arg=fail-cgroupv1=false"

// CgroupV2Fix is the kernel command line argument that moves a systemd host to cgroup v2.
const CgroupV2Fix = "systemd.unified_cgroup_hierarchy=1"

// CgroupVersion reads how the machine under root mounts cgroups, as the kubelet decides it: 2
// when /sys/fs/cgroup is the unified (cgroup2) hierarchy, 1 when it holds a hierarchy per
// controller (including systemd's hybrid layout, where cgroup2 is only at unified/), 0 when there
// is nothing to read.
func CgroupVersion(root string) int {
	cg := filepath.Join(root, "sys/fs/cgroup")
	if fileExists(filepath.Join(cg, "cgroup.controllers")) {
		return 2
	}
	for _, c := range []string{"memory", "cpu", "cpuset", "pids", "systemd"} {
		if isDir(filepath.Join(cg, c)) {
			return 1
		}
	}
	return 0
}

// serverArgs are the flags harmony adds to "k3s server" on this machine, in every supervisor
// (systemd, OpenRC, its own): on cgroup v1, the kubelet is told to run anyway.
func (p Paths) serverArgs() []string {
	if CgroupVersion(p.Root) == 1 {
		return []string{CgroupV1KubeletArg}
	}
	return nil
}

// cgroupV1Cause is what a k3s log naming cgroup v1 means, and what to do about it.
const cgroupV1Cause = "this machine uses cgroup v1, which the kubelet of Kubernetes 1.35 and later refuses unless started with " +
	CgroupV1KubeletArg + " (harmony adds it on cgroup v1 hosts; a k3s service written by an older harmony or by hand lacks it: " +
	"run harmony runtime restart); better, move to cgroup v2: add " + CgroupV2Fix + " to the kernel command line and reboot"
