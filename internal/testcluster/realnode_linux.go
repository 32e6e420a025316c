package testcluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// PauseImage is the real node's sandbox (pause) image: built by Start from ./pause and imported
// into its containerd, since nothing can be pulled here. Under .invalid, a name that never
// resolves, so a node that lost it can never pull someone else's.
const PauseImage = "harmony.invalid/testcluster/pause:v1"

// RealNode is the real node of a cluster started with WithRealNode: the kubelet, containerd and
// runc built by scripts/testenv and Debian's CNI plugins, each with its own folders under the
// cluster's, never the machine's defaults.
type RealNode struct {
	// Name is the node's name.
	Name string
	// IP is the node's address: its pod bridge's, the pods' gateway.
	IP string
	// Containerd is the address of its containerd's socket.
	Containerd string
	// Ctr is the path of the ctr built beside containerd (run it with --address Containerd).
	Ctr string

	dir, assets, bridge string
	containerd          *exec.Cmd
	kubelet             *exec.Cmd
}

// realNodeBinaries are what a real node needs beside the control plane.
var realNodeBinaries = []string{"kubelet", "containerd", "containerd-shim-runc-v2", "ctr", "runc", "cni/bridge", "cni/host-local", "cni/loopback", "cni/portmap"}

// startRealNode starts containerd and the kubelet under c.dir and waits until the node is Ready.
func (c *Cluster) startRealNode(assets string) (err error) {
	if os.Geteuid() != 0 {
		return errors.New("a real node needs root (the kubelet, containerd and the CNI bridge manage cgroups, mounts and links)")
	}
	for _, bin := range realNodeBinaries {
		if _, err := os.Stat(filepath.Join(assets, bin)); err != nil {
			return fmt.Errorf("%w: %s not in %s: run %s (it builds or installs the real node's parts once)", ErrMissingBinaries, bin, assets, BuildCommand)
		}
	}
	n := &RealNode{dir: filepath.Join(c.dir, "node"), assets: assets, Ctr: filepath.Join(assets, "ctr")}
	c.Node = n
	if err := os.MkdirAll(n.dir, 0o700); err != nil {
		return err
	}
	if err := n.makeBridge(); err != nil {
		return err
	}
	if err := n.startContainerd(c); err != nil {
		return err
	}
	if err := n.importPause(); err != nil {
		return err
	}
	return n.startKubelet(c)
}

// makeBridge creates the pod bridge with the node's address, on a /24 of 10.244.0.0/16 no
// interface of this machine uses (two real nodes may run at once: a test package and a
// developer's dev cluster). The CNI bridge plugin adopts it.
func (n *RealNode) makeBridge() error {
	used := map[string]bool{}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
				used[ipn.IP.Mask(net.CIDRMask(24, 32)).String()] = true
			}
		}
	}
	var b [2]byte
	for range 50 {
		_, _ = rand.Read(b[:])
		third := 1 + int(binary.BigEndian.Uint16(b[:]))%250
		subnet := fmt.Sprintf("10.244.%d.0", third)
		if used[subnet] {
			continue
		}
		name := fmt.Sprintf("hrn%d", third)
		if _, err := net.InterfaceByName(name); err == nil {
			continue
		}
		ip := fmt.Sprintf("10.244.%d.1", third)
		if out, err := exec.Command("ip", "link", "add", name, "type", "bridge").CombinedOutput(); err != nil {
			return fmt.Errorf("create the pod bridge %s: %v: %s", name, err, out)
		}
		n.bridge, n.IP = name, ip
		for _, args := range [][]string{{"addr", "add", ip + "/24", "dev", name}, {"link", "set", name, "up"}} {
			if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
				return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, out)
			}
		}
		return nil
	}
	return errors.New("no free /24 in 10.244.0.0/16 for the pod bridge")
}

func (n *RealNode) startContainerd(c *Cluster) error {
	root, state, netd := filepath.Join(n.dir, "containerd"), filepath.Join(n.dir, "containerd-state"), filepath.Join(n.dir, "net.d")
	n.Containerd = filepath.Join(n.dir, "containerd.sock")
	for _, d := range []string{root, state, netd} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return err
		}
	}
	subnet := strings.TrimSuffix(n.IP, ".1") + ".0/24"
	cni := fmt.Sprintf(`{
  "cniVersion": "1.0.0",
  "name": "harmony-test",
  "plugins": [
    {"type": "bridge", "bridge": %q, "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": %q, "gateway": %q}]], "dataDir": %q}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`, n.bridge, subnet, n.IP, filepath.Join(n.dir, "ipam"))
	if err := os.WriteFile(filepath.Join(netd, "10-harmony-test.conflist"), []byte(cni), 0o644); err != nil {
		return err
	}
	// containerd 2's configuration (version 3). NRI is off: its socket is machine-wide.
	config := fmt.Sprintf(`version = 3
root = %q
state = %q
disabled_plugins = ["io.containerd.nri.v1.nri"]

[grpc]
  address = %q

[ttrpc]
  address = %q

[plugins."io.containerd.internal.v1.opt"]
  path = %q

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = %q

# No lower OOM score than containerd's own: these machines' root lacks CAP_SYS_RESOURCE, so
# runc cannot give the pause container the kubelet's -998 (as for rootless k3s). The pods'
# network namespaces are mounted under containerd's state folder (the node's), not the
# machine's /run/netns.
[plugins."io.containerd.cri.v1.runtime"]
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        BinaryName = %q
        Root = %q
        SystemdCgroup = false
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = [%q]
    conf_dir = %q
    max_conf_num = 1

[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
`, root, state, n.Containerd, n.Containerd+".ttrpc", filepath.Join(n.dir, "opt"), PauseImage,
		filepath.Join(n.assets, "runc"), filepath.Join(n.dir, "runc"), filepath.Join(n.assets, "cni"), netd)
	configPath := filepath.Join(n.dir, "containerd.toml")
	if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
		return err
	}
	log, err := os.Create(filepath.Join(c.dir, "containerd.log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(n.assets, "containerd"), "--config", configPath)
	// The shim is found on PATH: the one built beside containerd, not Debian's (dockerd's).
	cmd.Env = append(os.Environ(), "PATH="+n.assets+":"+os.Getenv("PATH"))
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start containerd: %w", err)
	}
	n.containerd = cmd
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		if _, err := n.ctr(ctx, nil, "version"); err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("containerd never answered on %s (log: %s)", n.Containerd, c.LogTail("containerd", 20))
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (n *RealNode) ctr(ctx context.Context, stdin []byte, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, n.Ctr, append([]string{"--address", n.Containerd, "--namespace", "k8s.io"}, args...)...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	// Only stdout is the answer: ctr warns on stderr (containerd 2 on cgroup v1 does, each call).
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("ctr %s: %v: %s%s", strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return string(out), nil
}

// CtrRun runs the node's ctr in the kubelet's namespace (k8s.io) with args and stdin (nil for
// none), and returns what it printed.
func (n *RealNode) CtrRun(ctx context.Context, stdin []byte, args ...string) (string, error) {
	return n.ctr(ctx, stdin, args...)
}

// Images lists the images in the node's containerd (the kubelet's namespace).
func (n *RealNode) Images(ctx context.Context) ([]string, error) {
	out, err := n.ctr(ctx, nil, "images", "ls", "-q")
	return strings.Fields(out), err
}

// Import imports an image archive (docker save or OCI layout, as a tar) into the node.
func (n *RealNode) Import(ctx context.Context, archive []byte) error {
	_, err := n.ctr(ctx, archive, "images", "import", "--no-unpack=false", "-")
	return err
}

// importPause builds the pause program (a static binary that waits for a signal) and imports it
// as PauseImage.
func (n *RealNode) importPause() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bin := filepath.Join(n.dir, "pause")
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "github.com/NationTech/harmony-agent/internal/testcluster/pause")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build the pause program: %v: %s", err, out)
	}
	prog, err := os.ReadFile(bin)
	if err != nil {
		return err
	}
	archive, err := ImageArchive(PauseImage, []ImageFile{{Path: "pause", Mode: 0o755, Data: prog}}, []string{"/pause"})
	if err != nil {
		return err
	}
	return n.Import(ctx, archive)
}

func (n *RealNode) startKubelet(c *Cluster) error {
	port, err := freePort(n.IP)
	if err != nil {
		return err
	}
	n.Name = "real-node-" + strings.ReplaceAll(strings.TrimPrefix(n.IP, "10.244."), ".", "-")
	failCgroupV1 := ""
	if cgroupV1() {
		// Since 1.35 the kubelet refuses cgroup v1 unless told otherwise (k3s:
		// --kubelet-arg=fail-cgroupv1=false); this machine's kind has v1.
		failCgroupV1 = "failCgroupV1: false\n"
	}
	// QoS cgroups are off: two kubelets (a test package's and a developer's) would share the
	// machine's /kubepods; containerd puts each container in its own cgroup.
	config := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
%scgroupDriver: cgroupfs
cgroupsPerQOS: false
enforceNodeAllocatable: []
containerRuntimeEndpoint: unix://%s
address: %s
port: %d
readOnlyPort: 0
healthzPort: 0
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
failSwapOn: false
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {"memory.available": "1Mi", "nodefs.available": "1%%", "imagefs.available": "1%%"}
resolvConf: ""
clusterDNS: ["10.96.0.10"]
clusterDomain: cluster.local
podLogsDir: %s
maxPods: 110
nodeStatusUpdateFrequency: 2s
syncFrequency: 5s
fileCheckFrequency: 5s
`, failCgroupV1, n.Containerd, n.IP, port, filepath.Join(n.dir, "pod-logs"))
	configPath := filepath.Join(n.dir, "kubelet.yaml")
	if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
		return err
	}
	log, err := os.Create(filepath.Join(c.dir, "kubelet.log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(n.assets, "kubelet"), "--config", configPath, "--kubeconfig", c.Kubeconfig,
		"--root-dir", filepath.Join(n.dir, "kubelet"), "--cert-dir", filepath.Join(n.dir, "kubelet-pki"),
		"--hostname-override", n.Name, "--node-ip", n.IP, "--node-labels", "harmony.test/node=real", "--v=1")
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start the kubelet: %w", err)
	}
	n.kubelet = cmd
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for {
		node, err := c.Client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		if err == nil && nodeReady(node) {
			return nil
		}
		select {
		case err := <-exited:
			n.kubelet = nil
			return fmt.Errorf("the kubelet exited (%v); its log ends:\n%s", err, c.LogTail("kubelet", 30))
		case <-ctx.Done():
			return fmt.Errorf("the real node %s never became Ready; the kubelet's log ends:\n%s\ncontainerd's:\n%s", n.Name, c.LogTail("kubelet", 30), c.LogTail("containerd", 10))
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func nodeReady(n *corev1.Node) bool {
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

func freePort(ip string) (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func cgroupV1() bool {
	var st syscall.Statfs_t
	// CGROUP2_SUPER_MAGIC: the unified hierarchy at /sys/fs/cgroup.
	return syscall.Statfs("/sys/fs/cgroup", &st) != nil || st.Type != 0x63677270
}

// stop removes every pod's containers and sandboxes, stops the kubelet and containerd and every
// shim containerd started, unmounts what they mounted under the node's folder (its pods' network
// namespaces included) and removes the pod bridge. The cluster's controllers are stopped first
// (Cluster.Stop), so no deleted pod is made again. Each step has its own bound: one that runs out
// never skips the next.
func (n *RealNode) stop(c *Cluster) {
	if n.kubelet != nil && c.Client != nil {
		// The kubelet stops what it runs (and tears down the pods' networks) once the pods are gone.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		// (A collection is deleted one namespace at a time: the API refuses it across namespaces.)
		if pods, err := c.Client.CoreV1().Pods("").List(ctx, metav1.ListOptions{FieldSelector: "spec.nodeName=" + n.Name}); err == nil {
			for _, p := range pods.Items {
				_ = c.Client.CoreV1().Pods(p.Namespace).Delete(ctx, p.Name, *metav1.NewDeleteOptions(0))
			}
		}
		for ctx.Err() == nil {
			if out, err := n.ctr(ctx, nil, "tasks", "ls"); err != nil || !strings.Contains(out, "RUNNING") {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		cancel()
	}
	stopGroup(n.kubelet)
	if n.containerd != nil {
		// Whatever still runs: killing a shim would leave its container running, reparented.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		if out, err := n.ctr(ctx, nil, "tasks", "ls", "-q"); err == nil {
			for _, id := range strings.Fields(out) {
				_, _ = n.ctr(ctx, nil, "tasks", "kill", "--signal", "SIGKILL", id)
			}
			for _, id := range strings.Fields(out) {
				for ctx.Err() == nil {
					if _, err := n.ctr(ctx, nil, "tasks", "delete", id); err == nil || strings.Contains(err.Error(), "not found") {
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
		}
		cancel()
	}
	stopGroup(n.containerd)
	killShims(n.Containerd)
	unmountUnder(n.dir)
	if n.bridge != "" {
		_ = exec.Command("ip", "link", "del", n.bridge).Run()
	}
}

// kill is stop without the orderly parts, each bounded by a few seconds: the kubelet and
// containerd are killed, every container first (through containerd, so none is left running),
// then what they mounted and the bridge are removed.
func (n *RealNode) kill() {
	if n.kubelet != nil && n.kubelet.Process != nil {
		_ = syscall.Kill(-n.kubelet.Process.Pid, syscall.SIGKILL)
	}
	if n.containerd != nil && n.containerd.Process != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		if out, err := n.ctr(ctx, nil, "tasks", "ls", "-q"); err == nil {
			for _, id := range strings.Fields(out) {
				_, _ = n.ctr(ctx, nil, "tasks", "kill", "--signal", "SIGKILL", id)
			}
		}
		cancel()
		_ = syscall.Kill(-n.containerd.Process.Pid, syscall.SIGKILL)
	}
	killShims(n.Containerd)
	unmountUnder(n.dir)
	if n.bridge != "" {
		_ = exec.Command("ip", "link", "del", n.bridge).Run()
	}
}

func stopGroup(cmd *exec.Cmd) {
	if cmd == nil || cmd.Process == nil {
		return
	}
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _, _ = cmd.Process.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

// killShims kills the shims that the containerd at address started (a shim outlives its
// containerd, and names that address on its command line). Their containers are not theirs to
// end: stop kills those first, through containerd.
func killShims(address string) {
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if len(args) > 0 && strings.HasSuffix(args[0], "containerd-shim-runc-v2") && slices.Contains(args, address) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// unmountUnder detaches every mount under dir, deepest first.
func unmountUnder(dir string) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var points []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			points = append(points, f[4])
		}
	}
	slices.SortFunc(points, func(a, b string) int { return len(b) - len(a) })
	for _, p := range points {
		_ = syscall.Unmount(p, syscall.MNT_DETACH)
	}
}
