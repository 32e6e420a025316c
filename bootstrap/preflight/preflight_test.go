//go:build unix

package preflight_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/NationTech/harmony-agent/bootstrap"
	"github.com/NationTech/harmony-agent/bootstrap/preflight"
	"github.com/NationTech/harmony-agent/internal/hint"
)

// fakeHost is a machine laid out in a folder: its files are real files under the folder, its
// ports are this machine's (a test opens a listener), and its environment, Docker engine, disk
// space and network are what the test says.
type fakeHost struct {
	preflight.System
	t         *testing.T
	env       map[string]string
	engine    *preflight.Engine
	engineErr error
	space     *preflight.Space
	dial      func(ctx context.Context, network, address string) (net.Conn, error)
}

func newHost(t *testing.T) *fakeHost {
	t.Helper()
	return &fakeHost{System: preflight.System{Dir: t.TempDir(), Ports: true}, t: t, env: map[string]string{}}
}

func (h *fakeHost) Getenv(key string) string { return h.env[key] }

func (h *fakeHost) Engine(context.Context) (*preflight.Engine, error) {
	if h.engine == nil && h.engineErr == nil {
		return nil, hint.With(bootstrap.ErrDockerNotRunning, "start it: sudo systemctl start docker")
	}
	return h.engine, h.engineErr
}

func (h *fakeHost) DiskSpace(path string) (preflight.Space, error) {
	if h.space != nil {
		return *h.space, nil
	}
	return h.System.DiskSpace(path)
}

func (h *fakeHost) Dial(ctx context.Context, network, address string) (net.Conn, error) {
	if h.dial != nil {
		return h.dial(ctx, network, address)
	}
	return nil, errors.New("no network in this test")
}

// file writes a file of the host.
func (h *fakeHost) file(path, content string) *fakeHost {
	h.t.Helper()
	p := filepath.Join(h.Dir, path)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		h.t.Fatal(err)
	}
	return h
}

// dir makes folders of the host.
func (h *fakeHost) dir(paths ...string) *fakeHost {
	h.t.Helper()
	for _, path := range paths {
		if err := os.MkdirAll(filepath.Join(h.Dir, path), 0o755); err != nil {
			h.t.Fatal(err)
		}
	}
	return h
}

// Layouts of common hosts.
func (h *fakeHost) cgroupV2(controllers string) *fakeHost {
	return h.file("/sys/fs/cgroup/cgroup.controllers", controllers+"\n")
}

const procCgroupsV1 = `#subsys_name	hierarchy	num_cgroups	enabled
cpuset	3	4	1
cpu	1	4	1
cpuacct	2	4	1
memory	4	108	%s
pids	8	4	1
`

func (h *fakeHost) cgroupV1(memoryEnabled string) *fakeHost {
	h.dir("/sys/fs/cgroup/cpu", "/sys/fs/cgroup/cpuacct", "/sys/fs/cgroup/cpuset", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/pids", "/sys/fs/cgroup/systemd")
	return h.file("/proc/cgroups", strings.Replace(procCgroupsV1, "%s", memoryEnabled, 1))
}

func (h *fakeHost) systemd() *fakeHost { return h.dir("/run/systemd/system") }

func (h *fakeHost) kernel(release string) *fakeHost {
	return h.file("/proc/sys/kernel/osrelease", release+"\n").file("/proc/filesystems", "nodev\tsysfs\nnodev\tproc\n")
}

// realCommands are programs a fix may start with (after sudo): each exists on the systems the
// fix is given for.
var realCommands = map[string]bool{
	"grubby": true, "sed": true, "systemctl": true, "firewall-cmd": true, "ufw": true, "dnf": true, "apt-get": true,
	"zypper": true, "apk": true, "ss": true, "lsof": true, "sysctl": true, "echo": true, "printf": true,
	"colima": true, "podman": true, "docker": true, "kind": true, "harmony": true, "du": true, "timedatectl": true,
	"chronyc": true, "w32tm": true, "sntp": true, "wsl.exe": true, "snap": true, "kubeadm": true, "mkdir": true,
	"export": true, "unset": true, "/usr/local/bin/k3s-uninstall.sh": true, "/usr/local/bin/rke2-uninstall.sh": true,
}

// fixCommand returns the program a fix runs first ("" for a sentence): the fix itself, or what
// follows the first colon of a sentence ("start it: sudo systemctl start docker").
func fixCommand(fix string) string {
	if cmd := command(fix); realCommands[cmd] {
		return cmd
	}
	if _, after, ok := strings.Cut(fix, ": "); ok {
		return command(after)
	}
	return ""
}

func command(fix string) string {
	fields := strings.Fields(fix)
	for len(fields) > 0 && (fields[0] == "sudo" || strings.Contains(fields[0], "=") && !strings.HasPrefix(fields[0], "-")) {
		fields = fields[1:]
	}
	if len(fields) == 0 {
		return ""
	}
	return fields[0]
}

type want struct {
	result preflight.Result
	// seen, why and fix must hold these.
	seen, why, fix string
	// command is the program the fix starts with ("" when no fix is expected).
	command string
}

func run(t *testing.T, h *fakeHost, id string, opts preflight.Options) preflight.Finding {
	t.Helper()
	if opts.Runtime == "" {
		opts.Runtime = "k3s"
	}
	if opts.GOOS == "" {
		opts.GOOS = "linux"
	}
	opts.Only = []string{id}
	rep := preflight.Run(context.Background(), h, opts)
	if len(rep.Checks) != 1 || rep.Checks[0].ID != id {
		t.Fatalf("ran %+v, want the %s check", rep.Checks, id)
	}
	return rep.Checks[0]
}

func (w want) check(t *testing.T, f preflight.Finding) {
	t.Helper()
	if f.Result != w.result {
		t.Errorf("result %s, want %s: %+v", f.Result, w.result, f)
	}
	for _, c := range []struct{ name, got, want string }{{"seen", f.Seen, w.seen}, {"why", f.Why, w.why}, {"fix", f.Fix, w.fix}} {
		if !strings.Contains(c.got, c.want) {
			t.Errorf("%s %q lacks %q", c.name, c.got, c.want)
		}
	}
	if f.Seen == "" {
		t.Error("nothing seen")
	}
	if (f.Result == preflight.Warn || f.Result == preflight.Fail) && f.Why == "" {
		t.Errorf("a %s without why: %+v", f.Result, f)
	}
	if w.command != "" {
		if cmd := fixCommand(f.Fix); cmd != w.command || !realCommands[cmd] {
			t.Errorf("the fix %q runs %q, want %q", f.Fix, cmd, w.command)
		}
	}
}

type hostCase struct {
	name  string
	host  func(h *fakeHost)
	opts  preflight.Options
	want  want
	check string
}

func runCases(t *testing.T, id string, cases []hostCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := newHost(t)
			if tc.host != nil {
				tc.host(h)
			}
			tc.want.check(t, run(t, h, id, tc.opts))
		})
	}
}

func TestCgroups(t *testing.T) {
	t.Parallel()
	runCases(t, "cgroups", []hostCase{
		{name: "cgroup v2 with every controller", host: func(h *fakeHost) { h.cgroupV2("cpuset cpu io memory hugetlb pids rdma misc") },
			want: want{result: preflight.OK, seen: "cgroup v2, controllers cpu, cpuset, memory and pids"}},
		{name: "cgroup v2 without memory (RHEL with grubby)", host: func(h *fakeHost) { h.cgroupV2("cpuset cpu io pids").file("/usr/sbin/grubby", "") },
			want: want{result: preflight.Fail, seen: "without the memory controller", fix: "cgroup_memory=1 cgroup_enable=memory", command: "grubby"}},
		{name: "cgroup v2 without pids", host: func(h *fakeHost) { h.cgroupV2("cpuset cpu io memory") },
			want: want{result: preflight.Warn, seen: "without the pids controller", fix: "cgroup_enable=pids"}},
		{name: "cgroup v1 (Debian with GRUB)", host: func(h *fakeHost) {
			h.cgroupV1("1").file("/etc/default/grub", "GRUB_CMDLINE_LINUX=\"\"\n").file("/usr/sbin/update-grub", "")
		}, want: want{result: preflight.Warn, seen: "cgroup v1", why: bootstrap.CgroupV1KubeletArg, fix: "systemd.unified_cgroup_hierarchy=1", command: "sed"}},
		{name: "cgroup v1 (RHEL 8 with grubby)", host: func(h *fakeHost) { h.cgroupV1("1").file("/usr/sbin/grubby", "") },
			want: want{result: preflight.Warn, seen: "cgroup v1", fix: `--args="systemd.unified_cgroup_hierarchy=1"`, command: "grubby"}},
		{name: "cgroup v1 hybrid", host: func(h *fakeHost) { h.cgroupV1("1").file("/sys/fs/cgroup/unified/cgroup.controllers", "") },
			want: want{result: preflight.Warn, seen: "hybrid"}},
		{name: "cgroup v1 with memory disabled (Raspberry Pi)", host: func(h *fakeHost) { h.cgroupV1("0").file("/boot/firmware/cmdline.txt", "console=tty1\n") },
			want: want{result: preflight.Fail, seen: "without the memory controller", fix: "cgroup_memory=1 cgroup_enable=memory", command: "sed"}},
		{name: "nothing to read", want: want{result: preflight.Skipped, seen: "nothing to read"}},
	})
}

func TestKernelModules(t *testing.T) {
	t.Parallel()
	const rel = "6.8.0-45-generic"
	runCases(t, "kernel-modules", []hostCase{
		{name: "both in the kernel", host: func(h *fakeHost) {
			h.kernel(rel).file("/proc/filesystems", "nodev\tsysfs\nnodev\toverlay\n").dir("/proc/sys/net/bridge")
		}, want: want{result: preflight.OK, seen: "overlay and br_netfilter in the kernel"}},
		{name: "both among the modules", host: func(h *fakeHost) {
			h.kernel(rel).file("/lib/modules/"+rel+"/modules.dep", "kernel/fs/overlayfs/overlay.ko.zst:\nkernel/net/bridge/br_netfilter.ko.zst: kernel/net/bridge/bridge.ko.zst\n")
		}, want: want{result: preflight.OK, seen: "among its modules (loaded when k3s starts)"}},
		{name: "no overlay", host: func(h *fakeHost) { h.kernel(rel).dir("/proc/sys/net/bridge") },
			want: want{result: preflight.Fail, seen: "no overlay", fix: "snapshotter: native", command: "echo"}},
		{name: "no br_netfilter (Ubuntu)", host: func(h *fakeHost) {
			h.kernel(rel).file("/proc/filesystems", "nodev\toverlay\n").file("/usr/bin/apt-get", "")
		}, want: want{result: preflight.Warn, seen: "no br_netfilter", fix: "linux-modules-extra-" + rel + " && sudo modprobe br_netfilter", command: "apt-get"}},
	})
}

func TestSysctls(t *testing.T) {
	t.Parallel()
	mountinfo := func(opts string) string {
		return "21 26 0:20 / /proc rw,relatime - proc proc rw\n40 21 0:20 /sys /proc/sys " + opts + " - proc proc rw\n"
	}
	runCases(t, "sysctls", []hostCase{
		{name: "forwarding on", host: func(h *fakeHost) {
			h.file("/proc/sys/net/ipv4/ip_forward", "1\n").file("/proc/sys/net/bridge/bridge-nf-call-iptables", "1\n")
		}, want: want{result: preflight.OK, seen: "net.ipv4.ip_forward=1, net.bridge.bridge-nf-call-iptables=1"}},
		{name: "forwarding off: k3s sets it", host: func(h *fakeHost) {
			h.file("/proc/sys/net/ipv4/ip_forward", "0\n").file("/proc/self/mountinfo", mountinfo("rw,relatime"))
		}, want: want{result: preflight.OK, seen: "k3s sets net.ipv4.ip_forward=1"}},
		{name: "forwarding off in a container", host: func(h *fakeHost) {
			h.file("/proc/sys/net/ipv4/ip_forward", "0\n").file("/proc/self/mountinfo", mountinfo("ro,relatime"))
		}, want: want{result: preflight.Warn, seen: "read-only", fix: "net.ipv4.ip_forward=1", command: "sysctl"}},
	})
}

func TestSELinux(t *testing.T) {
	t.Parallel()
	runCases(t, "selinux", []hostCase{
		{name: "not enabled", want: want{result: preflight.OK, seen: "not enabled"}},
		{name: "permissive", host: func(h *fakeHost) { h.file("/sys/fs/selinux/enforce", "0") }, want: want{result: preflight.OK, seen: "permissive"}},
		{name: "enforcing without k3s's policy", host: func(h *fakeHost) {
			h.file("/sys/fs/selinux/enforce", "1").dir("/var/lib/selinux/targeted/active/modules/100/container")
		}, want: want{result: preflight.Fail, seen: "enforcing, and k3s's policy (k3s-selinux) is not installed", why: "setenforce 0", fix: "k3s-selinux", command: "dnf"}},
		{name: "enforcing with the policy package", host: func(h *fakeHost) {
			h.file("/sys/fs/selinux/enforce", "1").file("/usr/share/selinux/packages/k3s.pp", "")
		}, want: want{result: preflight.OK, seen: "is installed"}},
		{name: "enforcing with the policy module", host: func(h *fakeHost) {
			h.file("/sys/fs/selinux/enforce", "1").dir("/var/lib/selinux/targeted/active/modules/200/k3s")
		}, want: want{result: preflight.OK, seen: "module is installed"}},
	})
}

func TestAppArmor(t *testing.T) {
	t.Parallel()
	runCases(t, "apparmor", []hostCase{
		{name: "not enabled", want: want{result: preflight.OK, seen: "not enabled"}},
		{name: "enabled with its parser", host: func(h *fakeHost) {
			h.file("/sys/module/apparmor/parameters/enabled", "Y\n").file("/usr/sbin/apparmor_parser", "")
		}, want: want{result: preflight.OK, seen: "apparmor_parser"}},
		{name: "enabled without its parser (Debian)", host: func(h *fakeHost) {
			h.file("/sys/module/apparmor/parameters/enabled", "Y\n").file("/usr/bin/apt-get", "")
		}, want: want{result: preflight.Warn, seen: "apparmor_parser is not installed", fix: "sudo apt-get install -y apparmor", command: "apt-get"}},
	})
}

func TestNMCloudSetup(t *testing.T) {
	t.Parallel()
	runCases(t, "nm-cloud-setup", []hostCase{
		{name: "enabled", host: func(h *fakeHost) {
			h.systemd().file("/usr/lib/systemd/system/nm-cloud-setup.service", "[Unit]\n").
				file("/etc/systemd/system/NetworkManager.service.wants/nm-cloud-setup.service", "").
				file("/etc/systemd/system/timers.target.wants/nm-cloud-setup.timer", "")
		}, want: want{result: preflight.Fail, seen: "nm-cloud-setup is enabled", fix: "disable nm-cloud-setup.service nm-cloud-setup.timer", command: "systemctl"}},
		{name: "installed, not enabled", host: func(h *fakeHost) {
			h.systemd().file("/usr/lib/systemd/system/nm-cloud-setup.service", "[Unit]\n")
		}, want: want{result: preflight.OK, seen: "not enabled"}},
		{name: "absent", host: func(h *fakeHost) { h.systemd() }, want: want{result: preflight.OK, seen: "no nm-cloud-setup"}},
		{name: "no systemd", want: want{result: preflight.Skipped, seen: "no systemd"}},
	})
}

func TestFirewall(t *testing.T) {
	t.Parallel()
	runCases(t, "firewall", []hostCase{
		{name: "none", host: func(h *fakeHost) { h.file("/proc/1/comm", "systemd\n") }, want: want{result: preflight.OK, seen: "no firewalld or ufw"}},
		{name: "firewalld running", host: func(h *fakeHost) { h.file("/proc/1/comm", "systemd\n").file("/proc/812/comm", "firewalld\n") },
			want: want{result: preflight.Warn, seen: "firewalld is running", fix: "--zone=trusted --add-source=10.42.0.0/16", command: "firewall-cmd"}},
		{name: "ufw enabled", host: func(h *fakeHost) { h.file("/etc/ufw/ufw.conf", "# comment\nENABLED=yes\nLOGLEVEL=low\n") },
			want: want{result: preflight.Warn, seen: "ufw is enabled", fix: "ufw allow from 10.42.0.0/16 to any", command: "ufw"}},
		{name: "ufw disabled", host: func(h *fakeHost) { h.file("/etc/ufw/ufw.conf", "ENABLED=no\n") }, want: want{result: preflight.OK}},
	})
}

func TestPorts(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() }) // the subtests run after this function returns
	taken := ln.Addr().(*net.TCPAddr).Port
	free := freePort(t)
	ports := func(needed bool) []preflight.Port {
		return []preflight.Port{{Number: free, What: "the kubelet", Needed: true}, {Number: taken, What: "the API server", Needed: needed}}
	}
	runCases(t, "ports", []hostCase{
		{name: "free", opts: preflight.Options{Ports: ports(true)[:1]}, want: want{result: preflight.OK, seen: "are free"}},
		{name: "the API server's, taken", opts: preflight.Options{Ports: ports(true)},
			want: want{result: preflight.Fail, seen: "(the API server)", fix: "sport = :" + strconv.Itoa(taken), command: "ss"}},
		{name: "Traefik's, taken", opts: preflight.Options{Ports: ports(false)}, want: want{result: preflight.Warn, command: "ss"}},
		{name: "k3d's, taken", opts: preflight.Options{Runtime: "k3d", Ports: ports(true)},
			want: want{result: preflight.Fail, fix: "--http-port", command: "harmony"}},
		{name: "macOS", opts: preflight.Options{Runtime: "k3d", GOOS: "darwin", Ports: ports(true)}, want: want{result: preflight.Fail}},
		{name: "harmony's k3s installed", host: func(h *fakeHost) { installedK3s(t, h) }, opts: preflight.Options{Ports: ports(true)},
			want: want{result: preflight.Skipped, seen: "harmony's k3s is installed"}},
	})
	t.Run("under HARMONY_ROOT", func(t *testing.T) {
		t.Parallel()
		h := newHost(t)
		h.Ports = false
		want{result: preflight.Skipped, seen: "this machine's ports are not its"}.check(t, run(t, h, "ports", preflight.Options{Ports: ports(true)}))
	})
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// installedK3s lays out harmony's k3s install under the host.
func installedK3s(t *testing.T, h *fakeHost) {
	t.Helper()
	h.file("/var/lib/harmony/k3s/v1.36.4+k3s1/k3s", "k3s")
	must(t, os.Symlink("v1.36.4+k3s1", filepath.Join(h.Dir, "var/lib/harmony/k3s/current")))
	h.dir("/usr/local/bin")
	must(t, os.Symlink("../../../var/lib/harmony/k3s/current/k3s", filepath.Join(h.Dir, "usr/local/bin/k3s")))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestOtherKubernetes(t *testing.T) {
	t.Parallel()
	runCases(t, "other-kubernetes", []hostCase{
		{name: "none", host: func(h *fakeHost) { h.file("/proc/1/comm", "systemd\n") }, want: want{result: preflight.OK, seen: "none found"}},
		{name: "harmony's own k3s", host: func(h *fakeHost) { installedK3s(t, h); h.file("/proc/77/comm", "k3s-server\n") }, want: want{result: preflight.OK}},
		{name: "k3s installed by its script", host: func(h *fakeHost) {
			h.file("/usr/local/bin/k3s", "upstream k3s").file("/usr/local/bin/k3s-uninstall.sh", "#!/bin/sh\n")
		}, want: want{result: preflight.Fail, seen: "was not installed by harmony", why: "harmony never replaces a k3s it did not install", command: "/usr/local/bin/k3s-uninstall.sh"}},
		{name: "k3s running beside k3d: not its neighbour", opts: preflight.Options{Runtime: "k3d"}, host: func(h *fakeHost) {
			h.file("/usr/local/bin/k3s", "upstream k3s").file("/proc/3/comm", "k3s-server\n").file("/proc/4/comm", "kube-apiserver\n")
		}, want: want{result: preflight.OK, seen: "no kind cluster"}},
		{name: "rke2 installed", host: func(h *fakeHost) { h.file("/usr/local/bin/rke2", "") },
			want: want{result: preflight.Warn, seen: "rke2 is installed", command: "/usr/local/bin/rke2-uninstall.sh"}},
		{name: "MicroK8s running", host: func(h *fakeHost) { h.dir("/snap/microk8s").file("/proc/55/comm", "kubelite\n") },
			want: want{result: preflight.Warn, seen: "MicroK8s runs (pid 55)", command: "snap"}},
		{name: "a kubelet running", host: func(h *fakeHost) { h.file("/proc/9/comm", "kubelet\n") },
			want: want{result: preflight.Warn, seen: "kubelet runs (pid 9)"}},
		{name: "kind clusters in Docker", opts: preflight.Options{Runtime: "k3d"}, host: func(h *fakeHost) { h.engine = &preflight.Engine{KindClusters: []string{"kind", "dev"}} },
			want: want{result: preflight.Warn, seen: "kind cluster kind and dev in Docker", fix: "kind delete cluster --name kind", command: "kind"}},
	})
}

func TestDisk(t *testing.T) {
	t.Parallel()
	const gib = 1 << 30
	space := func(total, free uint64) func(h *fakeHost) {
		return func(h *fakeHost) {
			h.dir("/var/lib")
			h.space = &preflight.Space{Total: total * gib, Free: free * gib, Inodes: 1000, FreeInodes: 900}
		}
	}
	runCases(t, "disk", []hostCase{
		{name: "plenty", host: space(100, 60), want: want{result: preflight.OK, seen: "60.0 GiB free (60%) under /var/lib/rancher/k3s, 90% of inodes"}},
		{name: "short", host: space(100, 8), want: want{result: preflight.Warn, seen: "8.0 GiB free", fix: "/var/lib", command: "du"}},
		{name: "full", host: space(100, 1), want: want{result: preflight.Fail, seen: "1.0 GiB free", command: "du"}},
		{name: "no inodes left", host: func(h *fakeHost) {
			h.space = &preflight.Space{Total: 100 * gib, Free: 50 * gib, Inodes: 1000, FreeInodes: 10}
		}, want: want{result: preflight.Fail, seen: "1% of inodes", command: "du"}},
		{name: "k3d on Docker Desktop", opts: preflight.Options{Runtime: "k3d", GOOS: "darwin"}, host: func(h *fakeHost) {
			h.engine = &preflight.Engine{OperatingSystem: "Docker Desktop", Endpoint: "unix:///Users/me/.docker/run/docker.sock"}
		}, want: want{result: preflight.Skipped, seen: "docker system df"}},
		{name: "k3d on Docker Engine", opts: preflight.Options{Runtime: "k3d"}, host: func(h *fakeHost) {
			h.dir("/var/lib/docker")
			h.engine = &preflight.Engine{OperatingSystem: "Debian GNU/Linux 13", Endpoint: "unix:///var/run/docker.sock", DockerRootDir: "/var/lib/docker"}
			h.space = &preflight.Space{Total: 100 * gib, Free: 1 * gib}
		}, want: want{result: preflight.Fail, seen: "under /var/lib/docker", command: "docker"}},
	})
	t.Run("the real file system under the tree", func(t *testing.T) {
		t.Parallel()
		f := run(t, newHost(t), "disk", preflight.Options{})
		if f.Result == preflight.Skipped || !strings.Contains(f.Seen, " free (") {
			t.Errorf("the free space of the folder's file system was not read: %+v", f)
		}
	})
}

func TestInitSystem(t *testing.T) {
	t.Parallel()
	runCases(t, "init-system", []hostCase{
		{name: "systemd", host: func(h *fakeHost) { h.systemd() }, want: want{result: preflight.OK, seen: "systemd"}},
		{name: "OpenRC", host: func(h *fakeHost) { h.file("/sbin/openrc-run", "") }, want: want{result: preflight.OK, seen: "OpenRC"}},
		{name: "WSL 2 without systemd", host: func(h *fakeHost) {
			h.file("/proc/sys/kernel/osrelease", "5.15.167.4-microsoft-standard-WSL2\n").file("/proc/sys/fs/binfmt_misc/WSLInterop", "enabled\n")
		}, want: want{result: preflight.Warn, seen: "WSL 2 without systemd", fix: "systemd=true", command: "printf"}},
		{name: "WSL 2 with systemd", host: func(h *fakeHost) {
			h.systemd().file("/proc/sys/kernel/osrelease", "5.15.167.4-microsoft-standard-WSL2\n")
		}, want: want{result: preflight.OK, seen: "systemd"}},
		{name: "WSL 1", host: func(h *fakeHost) {
			h.file("/proc/sys/kernel/osrelease", "4.4.0-19041-Microsoft\n")
			h.env["WSL_DISTRO_NAME"] = "Ubuntu"
		}, want: want{result: preflight.Warn, seen: "WSL 1", fix: "--set-version Ubuntu 2", command: "wsl.exe"}},
		{name: "a container", host: func(h *fakeHost) { h.file("/.dockerenv", "") }, want: want{result: preflight.Warn, seen: "in a container", command: "harmony"}},
		{name: "none", want: want{result: preflight.Warn, seen: "no systemd or OpenRC", command: "harmony"}},
	})
}

func TestDocker(t *testing.T) {
	t.Parallel()
	engine := func(e preflight.Engine) func(h *fakeHost) { return func(h *fakeHost) { h.engine = &e } }
	k3d := preflight.Options{Runtime: "k3d"}
	mac := preflight.Options{Runtime: "k3d", GOOS: "darwin"}
	runCases(t, "docker", []hostCase{
		{name: "Docker Desktop", opts: mac, host: engine(preflight.Engine{Name: "docker-desktop", OperatingSystem: "Docker Desktop", Version: "28.5.2", Endpoint: "unix:///Users/me/.docker/run/docker.sock", CgroupVersion: "2"}),
			want: want{result: preflight.OK, seen: "Docker Desktop 28.5.2 at unix:///Users/me/.docker/run/docker.sock"}},
		{name: "colima", opts: mac, host: engine(preflight.Engine{Name: "colima", OperatingSystem: "Ubuntu 24.04 LTS", Version: "27.4.0", Context: "colima", Endpoint: "unix:///Users/me/.colima/default/docker.sock", CgroupVersion: "2"}),
			want: want{result: preflight.OK, seen: "colima 27.4.0 at unix:///Users/me/.colima/default/docker.sock (docker context colima)"}},
		{name: "Podman behind DOCKER_HOST", opts: k3d, host: engine(preflight.Engine{Name: "fedora", OperatingSystem: "fedora", Version: "5.2.1", Podman: true, Endpoint: "unix:///run/user/1000/podman/podman.sock"}),
			want: want{result: preflight.Fail, seen: "Podman 5.2.1", fix: "unset DOCKER_HOST && harmony bootstrap --runtime k3s", command: "unset"}},
		{name: "Podman, as the diagnosis refuses it", opts: k3d, host: func(h *fakeHost) {
			h.engineErr = hint.With(bootstrap.ErrDockerPodman, "install Docker Engine (your distribution's docker.io or docker-ce package) and unset DOCKER_HOST")
		}, want: want{result: preflight.Fail, seen: "Podman's", fix: "unset DOCKER_HOST"}},
		{name: "rootless Docker", opts: k3d, host: engine(preflight.Engine{Name: "me", OperatingSystem: "Ubuntu 24.04 LTS", Version: "28.5.2", Rootless: true, CgroupVersion: "2"}),
			want: want{result: preflight.Warn, seen: "rootless", fix: "Delegate=cpu cpuset io memory pids", command: "mkdir"}},
		{name: "Docker Engine on cgroup v1", opts: k3d, host: func(h *fakeHost) {
			h.engine = &preflight.Engine{OperatingSystem: "Debian GNU/Linux 12", Version: "20.10.24", CgroupVersion: "1", Endpoint: "unix:///var/run/docker.sock"}
			h.file("/usr/sbin/grubby", "")
		}, want: want{result: preflight.Warn, seen: "on cgroup v1", why: bootstrap.CgroupV1KubeletArg, fix: "systemd.unified_cgroup_hierarchy=1", command: "grubby"}},
		{name: "not running", opts: k3d, want: want{result: preflight.Fail, seen: "the docker daemon is not running", fix: "systemctl start docker", command: "systemctl"}},
	})
}

func TestDockerResources(t *testing.T) {
	t.Parallel()
	const gib = 1 << 30
	engine := func(e preflight.Engine) func(h *fakeHost) { return func(h *fakeHost) { h.engine = &e } }
	mac := preflight.Options{Runtime: "k3d", GOOS: "darwin"}
	runCases(t, "docker-resources", []hostCase{
		{name: "Docker Desktop with 1.5 GiB", opts: mac, host: engine(preflight.Engine{OperatingSystem: "Docker Desktop", MemTotal: 3 * gib / 2, NCPU: 2}),
			want: want{result: preflight.Fail, seen: "1.5 GiB memory, 2 CPUs", fix: "Settings → Resources"}},
		{name: "colima with 3 GiB", opts: mac, host: engine(preflight.Engine{Name: "colima", MemTotal: 3 * gib, NCPU: 2}),
			want: want{result: preflight.Warn, seen: "3.0 GiB memory", fix: "--memory 4", command: "colima"}},
		{name: "Podman machine with one CPU", opts: mac, host: engine(preflight.Engine{Podman: true, MemTotal: 8 * gib, NCPU: 1}),
			want: want{result: preflight.Warn, seen: "1 CPUs", command: "podman"}},
		{name: "enough", opts: mac, host: engine(preflight.Engine{OperatingSystem: "Docker Desktop", MemTotal: 8 * gib, NCPU: 4}),
			want: want{result: preflight.OK, seen: "8.0 GiB memory, 4 CPUs"}},
		{name: "no engine", opts: mac, want: want{result: preflight.Skipped}},
	})
}

func TestProxy(t *testing.T) {
	t.Parallel()
	env := func(kv ...string) func(h *fakeHost) {
		return func(h *fakeHost) {
			for i := 0; i < len(kv); i += 2 {
				h.env[kv[i]] = kv[i+1]
			}
		}
	}
	full := "127.0.0.1,localhost,10.42.0.0/16,10.43.0.0/16,.svc,.cluster.local"
	runCases(t, "proxy", []hostCase{
		{name: "none", want: want{result: preflight.OK, seen: "no proxy variables"}},
		{name: "not a URL", host: env("HTTPS_PROXY", "http://[::1"), want: want{result: preflight.Fail, seen: "is not a URL", command: "export"}},
		{name: "NO_PROXY without the cluster", host: env("https_proxy", "http://user:secret@proxy.corp:3128", "no_proxy", "localhost"),
			want: want{result: preflight.Warn, seen: "https_proxy=http://user:xxxxx@proxy.corp:3128", why: "10.42.0.0/16, 10.43.0.0/16, .svc and .cluster.local", fix: "10.42.0.0/16,10.43.0.0/16,.svc,.cluster.local", command: "export"}},
		{name: "k3s's service without them", host: func(h *fakeHost) {
			env("HTTPS_PROXY", "http://proxy.corp:3128", "NO_PROXY", full)(h)
			h.systemd().file("/etc/systemd/system/k3s.service.env", "")
		}, want: want{result: preflight.Warn, why: "/etc/systemd/system/k3s.service.env", fix: "sudo tee -a /etc/systemd/system/k3s.service.env", command: "printf"}},
		{name: "k3s's service with them", host: func(h *fakeHost) {
			env("HTTPS_PROXY", "http://proxy.corp:3128", "NO_PROXY", full)(h)
			h.systemd().file("/etc/systemd/system/k3s.service.env", "HTTPS_PROXY=http://proxy.corp:3128\n")
		}, want: want{result: preflight.OK, seen: "k3s's service has its own"}},
		{name: "harmony runs k3s itself", host: env("HTTPS_PROXY", "http://proxy.corp:3128", "NO_PROXY", "10.0.0.0/8,.svc,.cluster.local"),
			want: want{result: preflight.OK, seen: "k3s runs with harmony's environment"}},
	})
}

func TestClock(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	mirror := func(date time.Time, delay time.Duration) func(h *fakeHost) {
		return func(h *fakeHost) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodHead {
					t.Errorf("the clock check sent %s: it may only ask for the headers", r.Method)
				}
				time.Sleep(delay)
				w.Header().Set("Date", date.Format(http.TimeFormat))
			}))
			t.Cleanup(srv.Close)
			h.env["HARMONY_MIRROR"] = srv.URL
			h.dial = (&net.Dialer{}).DialContext
			h.systemd()
		}
	}
	opts := preflight.Options{Now: func() time.Time { return now }}
	runCases(t, "clock", []hostCase{
		{name: "no mirror configured", opts: opts, want: want{result: preflight.Skipped, seen: "HARMONY_MIRROR is not set, so no server is asked"}},
		{name: "in time", opts: opts, host: mirror(now.Add(-time.Second), 0), want: want{result: preflight.OK, seen: "within"}},
		{name: "ten minutes ahead", opts: opts, host: mirror(now.Add(-10*time.Minute), 0),
			want: want{result: preflight.Warn, seen: "10m0s ahead of", fix: "set-ntp true", command: "timedatectl"}},
		{name: "two days behind", opts: opts, host: mirror(now.Add(48*time.Hour), 0),
			want: want{result: preflight.Fail, seen: "48h0m0s behind", command: "timedatectl"}},
	})
	t.Run("a mirror that does not answer within a second", func(t *testing.T) {
		t.Parallel()
		h := newHost(t)
		mirror(now, 3*time.Second)(h)
		start := time.Now()
		want{result: preflight.Skipped, seen: "did not answer within a second"}.check(t, run(t, h, "clock", opts))
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("the clock check took %s", d)
		}
	})
}

// Run selects checks by runtime, by --skip-checks and by blocking, and keeps their order.
func TestRunSelects(t *testing.T) {
	t.Parallel()
	h := newHost(t)
	ids := func(rep preflight.Report) []string {
		var out []string
		for _, f := range rep.Checks {
			out = append(out, f.ID)
			if f.Result == "" || f.Seen == "" {
				t.Errorf("%s: %+v", f.ID, f)
			}
		}
		return out
	}
	ctx := context.Background()
	all := ids(preflight.Run(ctx, h, preflight.Options{Runtime: "k3s", GOOS: "linux"}))
	if slices.Contains(all, "docker") || !slices.Contains(all, "cgroups") || all[0] != "mirror" {
		t.Errorf("k3s runs %v", all)
	}
	k3d := ids(preflight.Run(ctx, h, preflight.Options{Runtime: "k3d", GOOS: "darwin"}))
	if !slices.Contains(k3d, "docker") || slices.Contains(k3d, "cgroups") {
		t.Errorf("k3d runs %v", k3d)
	}
	blocking := preflight.Run(ctx, h, preflight.Options{Runtime: "k3s", GOOS: "linux", Blocking: true, Skip: []string{"ports"}})
	for _, f := range blocking.Checks {
		if !f.Blocking || f.ID == "ports" {
			t.Errorf("a blocking run with ports skipped ran %s", f.ID)
		}
	}
	if got := ids(blocking); !slices.Contains(got, "cgroups") || !slices.Contains(got, "disk") || slices.Contains(got, "clock") {
		t.Errorf("blocking checks: %v", got)
	}
	if n := len(preflight.Run(ctx, h, preflight.Options{Runtime: "k3s", Skip: []string{"all"}}).Checks); n != 0 {
		t.Errorf("--skip-checks all ran %d checks", n)
	}
	for _, id := range preflight.IDs() {
		if !preflight.Known(id) {
			t.Errorf("%s is not known", id)
		}
	}
	if preflight.Known("cgroup") {
		t.Error("a typo is a known check")
	}
}
