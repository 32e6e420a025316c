package preflight

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/NationTech/harmony-agent/bootstrap"
)

// checkCgroups: the kubelet needs the cpu, cpuset and memory controllers (pids for pod pid
// limits), and since Kubernetes 1.35 refuses cgroup v1 unless told.
func checkCgroups(_ context.Context, m *machine) Finding {
	var have []string
	version := bootstrap.CgroupVersion(m.host.Root())
	switch version {
	case 0:
		return skipped("nothing to read at %s", m.at("/sys/fs/cgroup"))
	case 2:
		have = strings.Fields(m.read("/sys/fs/cgroup/cgroup.controllers"))
	case 1:
		enabled := map[string]bool{}
		table := m.read("/proc/cgroups")
		for _, line := range strings.Split(table, "\n") {
			f := strings.Fields(line)
			if len(f) == 4 && !strings.HasPrefix(f[0], "#") {
				enabled[f[0]] = f[1] != "0" && f[3] == "1"
			}
		}
		for _, c := range []string{"cpu", "cpuset", "memory", "pids"} {
			if m.isDir("/sys/fs/cgroup/"+c) && (table == "" || enabled[c]) {
				have = append(have, c)
			}
		}
	}
	var missing, missingRequired []string
	for _, c := range []string{"cpu", "cpuset", "memory", "pids"} {
		if !slices.Contains(have, c) {
			missing = append(missing, c)
			if c != "pids" {
				missingRequired = append(missingRequired, c)
			}
		}
	}
	seen := fmt.Sprintf("cgroup v%d", version)
	if version == 1 && m.exists("/sys/fs/cgroup/unified/cgroup.controllers") {
		seen += " (hybrid: cgroup v2 only at /sys/fs/cgroup/unified)"
	}
	if len(missing) == 0 {
		seen += ", controllers cpu, cpuset, memory and pids"
	} else {
		seen += ", without the " + list(missing) + " controller"
		if len(missing) > 1 {
			seen += "s"
		}
	}
	if len(missingRequired) > 0 {
		args := "cgroup_enable=" + strings.Join(missingRequired, ",cgroup_enable=")
		if slices.Contains(missingRequired, "memory") {
			args = "cgroup_memory=1 " + args
		}
		return fail(seen, "the kubelet does not start without the cpu, cpuset and memory controllers", m.kernelArgs(args))
	}
	if version == 1 {
		return warn(seen, "the kubelet of Kubernetes 1.35 and later refuses cgroup v1 unless told: harmony starts k3s with "+
			bootstrap.CgroupV1KubeletArg+", which works until Kubernetes drops cgroup v1; move to cgroup v2 while you can",
			m.kernelArgs(bootstrap.CgroupV2Fix))
	}
	if len(missing) > 0 {
		return warn(seen, "without the pids controller the kubelet cannot limit the processes of a pod",
			m.kernelArgs("cgroup_enable=pids"))
	}
	return ok("%s", seen)
}

// module is a kernel module k3s needs, and how to tell it is there.
type module struct {
	name string
	// loaded is a file that exists once the module is in the kernel (built in or loaded).
	loaded func(m *machine) bool
	// needed: k3s does not start without it (else: it starts, and part of the network fails).
	needed bool
	why    string
}

var modules = []module{
	{name: "overlay", needed: true, why: "containerd keeps images on the overlay file system: without it k3s stops at start (\"overlayfs snapshotter cannot be enabled\"); " +
		"k3s can keep them in plain folders instead (slower, more disk)",
		loaded: func(m *machine) bool {
			return strings.Contains(m.read("/proc/filesystems"), "\toverlay\n") || m.isDir("/sys/module/overlay")
		}},
	{name: "br_netfilter", why: "without it the traffic between pods on this machine bypasses iptables: Services and network policies do not apply to it",
		loaded: func(m *machine) bool { return m.isDir("/proc/sys/net/bridge") || m.isDir("/sys/module/br_netfilter") }},
}

// checkModules: k3s's service loads overlay and br_netfilter (modprobe) before k3s starts; they
// must be in the kernel or among its modules.
func checkModules(_ context.Context, m *machine) Finding {
	release := strings.TrimSpace(m.read("/proc/sys/kernel/osrelease"))
	if release == "" && !m.exists("/proc/filesystems") {
		return skipped("nothing to read at %s", m.at("/proc"))
	}
	var loaded, loadable, missing []module
	for _, mod := range modules {
		switch {
		case mod.loaded(m):
			loaded = append(loaded, mod)
		case m.hasModule(release, mod.name):
			loadable = append(loadable, mod)
		default:
			missing = append(missing, mod)
		}
	}
	names := func(ms []module) []string {
		var out []string
		for _, mod := range ms {
			out = append(out, mod.name)
		}
		return out
	}
	seen := ""
	if len(loaded) > 0 {
		seen = list(names(loaded)) + " in the kernel"
	}
	if len(loadable) > 0 {
		seen = strings.TrimPrefix(seen+"; ", "; ") + list(names(loadable)) + " among its modules (loaded when k3s starts)"
	}
	if len(missing) == 0 {
		return ok("%s", seen)
	}
	mod := missing[0]
	seen = strings.TrimPrefix(seen+"; ", "; ") + "no " + list(names(missing)) + " in kernel " + release
	if mod.needed {
		return fail(seen, mod.why, "echo 'snapshotter: native' | sudo tee -a /etc/rancher/k3s/config.yaml")
	}
	return warn(seen, mod.why+"; it is among your kernel's extra modules",
		m.installPackage(map[string]string{"apt-get": "linux-modules-extra-" + release, "dnf": "kernel-modules-extra"})+" && sudo modprobe "+mod.name)
}

// hasModule reports whether kernel release has module name among its modules or built in.
func (m *machine) hasModule(release, name string) bool {
	if release == "" {
		return false
	}
	dir := "/lib/modules/" + release
	for _, index := range []string{"modules.builtin", "modules.dep"} {
		for _, line := range strings.Split(m.read(filepath.Join(dir, index)), "\n") {
			file, _, _ := strings.Cut(line, ":")
			base := filepath.Base(file)
			if i := strings.Index(base, ".ko"); i > 0 && strings.ReplaceAll(base[:i], "-", "_") == name {
				return true
			}
		}
	}
	return false
}

// sysctl is a kernel setting k3s needs, as /proc/sys has it.
type sysctl struct{ name, want string }

var sysctls = []sysctl{
	{"net.ipv4.ip_forward", "1"},
	{"net.bridge.bridge-nf-call-iptables", "1"},
}

// checkSysctls: k3s sets these when it starts; it cannot where /proc/sys is read-only (in a
// container).
func checkSysctls(_ context.Context, m *machine) Finding {
	readOnly := procSysReadOnly(m.read("/proc/self/mountinfo"))
	var seen, wrong []string
	for _, s := range sysctls {
		v := strings.TrimSpace(m.read("/proc/sys/" + strings.ReplaceAll(s.name, ".", "/")))
		if v == "" {
			continue // br_netfilter not loaded yet: the kernel-modules check says so
		}
		seen = append(seen, s.name+"="+v)
		if v != s.want {
			wrong = append(wrong, s.name+"="+s.want)
		}
	}
	if len(seen) == 0 {
		return skipped("nothing to read at %s", m.at("/proc/sys"))
	}
	switch {
	case len(wrong) == 0:
		return ok("%s", strings.Join(seen, ", "))
	case !readOnly:
		return ok("%s (k3s sets %s when it starts)", strings.Join(seen, ", "), strings.Join(wrong, ", "))
	}
	return warn(strings.Join(seen, ", ")+"; /proc/sys is read-only here (a container?)",
		"k3s cannot set them itself, and without them pods cannot reach each other or Services: set them on the machine that runs this one",
		"sudo sysctl -w "+strings.Join(wrong, " "))
}

// procSysReadOnly reports whether a mountinfo table mounts /proc/sys read-only.
func procSysReadOnly(mountinfo string) bool {
	for _, line := range strings.Split(mountinfo, "\n") {
		f := strings.Fields(line)
		if len(f) > 5 && f[4] == "/proc/sys" {
			return slices.Contains(strings.Split(f[5], ","), "ro")
		}
	}
	return false
}

// checkSELinux: with SELinux enforcing, k3s needs its policy (k3s-selinux).
func checkSELinux(_ context.Context, m *machine) Finding {
	mode := strings.TrimSpace(m.read("/sys/fs/selinux/enforce"))
	switch mode {
	case "":
		return ok("SELinux is not enabled")
	case "0":
		return ok("SELinux is permissive: it logs what it would deny, and denies nothing")
	}
	if m.exists("/usr/share/selinux/packages/k3s.pp") {
		return ok("SELinux is enforcing; k3s's policy (k3s-selinux) is installed")
	}
	found, unreadable := false, false
	for _, store := range []string{"targeted", "mls", "minimum"} {
		prios, err := os.ReadDir(m.at("/var/lib/selinux/" + store + "/active/modules"))
		if os.IsPermission(err) {
			unreadable = true
		}
		for _, p := range prios {
			found = found || m.exists("/var/lib/selinux/"+store+"/active/modules/"+p.Name()+"/k3s")
		}
	}
	if found {
		return ok("SELinux is enforcing; k3s's policy module is installed")
	}
	f := fail("SELinux is enforcing, and k3s's policy (k3s-selinux) is not installed",
		"without it SELinux denies k3s's containers what they need, and k3s cannot run them; k3s-selinux comes from k3s's RPM repository "+
			"(k3s's documentation on SELinux names it); until then, permissive mode lasts until the next boot: sudo setenforce 0",
		"sudo dnf install -y container-selinux k3s-selinux")
	if unreadable {
		f.NeedsRoot = "the installed policy modules under /var/lib/selinux"
	}
	return f
}

// checkAppArmor: with AppArmor enabled, containerd loads its profile for the containers with
// apparmor_parser.
func checkAppArmor(_ context.Context, m *machine) Finding {
	if !strings.HasPrefix(m.read("/sys/module/apparmor/parameters/enabled"), "Y") {
		return ok("AppArmor is not enabled")
	}
	if p := m.program("/sbin/apparmor_parser", "/usr/sbin/apparmor_parser"); p != "" {
		return ok("AppArmor is enabled; %s loads the containers' profile", p)
	}
	return warn("AppArmor is enabled, and apparmor_parser is not installed",
		"containerd needs apparmor_parser to load the profile that confines the containers: without it pods fail to start",
		m.installPackage(map[string]string{"apt-get": "apparmor", "zypper": "apparmor-parser", "apk": "apparmor"}))
}
