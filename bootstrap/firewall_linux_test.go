//go:build linux

package bootstrap

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The script that keeps a k3s cluster on this machine, run in the kernel: network namespaces
// stand for the machine k3s runs on ("node": the pod bridge cni0, a NodePort's DNAT as
// kube-proxy writes it, the API server's port), a pod on cni0 serving the app, a second pod, and
// another machine on the local network ("lan"). Before the script and after "off", the network
// reaches the app and the API server (so the test can fail); with it, only this machine and the
// pods do.
func TestLocalOnlyFirewallInTheKernel(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("this test needs root (network namespaces and iptables); CI runs as root")
		}
		t.Skip("needs root: network namespaces and iptables")
	}
	for _, tool := range []string{"ip", "iptables"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is needed (scripts/test installs it): %v", tool, err)
		}
	}
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	node, pod, pod2, lan, ctr := "hn"+id, "hp"+id, "hq"+id, "hl"+id, "hc"+id
	sh := func(cmd string) {
		t.Helper()
		if out, err := exec.Command("sh", "-ec", cmd).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", cmd, err, out)
		}
	}
	for _, ns := range []string{node, pod, pod2, lan, ctr} {
		sh("ip netns add " + ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
	}
	in := func(ns, cmd string) { t.Helper(); sh("ip netns exec " + ns + " sh -ec '" + cmd + "'") }
	// The node: loopback, forwarding, the pod bridge, a link to the local network.
	in(node, "ip link set lo up; echo 1 > /proc/sys/net/ipv4/ip_forward; ip link add cni0 type bridge; ip addr add 10.42.0.1/24 dev cni0; ip link set cni0 up")
	sh(fmt.Sprintf("ip link add lan%s netns %s type veth peer name eth0 netns %s", id, node, lan))
	in(node, fmt.Sprintf("ip addr add 192.0.2.1/24 dev lan%s; ip link set lan%s up", id, id))
	in(lan, "ip link set lo up; ip addr add 192.0.2.2/24 dev eth0; ip link set eth0 up; ip route add 10.42.0.0/16 via 192.0.2.1")
	for i, p := range []string{pod, pod2} {
		sh(fmt.Sprintf("ip link add v%d%s netns %s type veth peer name eth0 netns %s", i, id, node, p))
		in(node, fmt.Sprintf("ip link set v%d%s master cni0; ip link set v%d%s up", i, id, i, id))
		in(p, fmt.Sprintf("ip link set lo up; ip addr add 10.42.0.%d/24 dev eth0; ip link set eth0 up; ip route add default via 10.42.0.1", i+2))
	}
	// A Docker container on this machine: docker0, 172.17.0.0/16.
	in(node, "ip link add docker0 type bridge; ip addr add 172.17.0.1/16 dev docker0; ip link set docker0 up")
	sh(fmt.Sprintf("ip link add d%s netns %s type veth peer name eth0 netns %s", id, node, ctr))
	in(node, fmt.Sprintf("ip link set d%s master docker0; ip link set d%s up", id, id))
	in(ctr, "ip link set lo up; ip addr add 172.17.0.2/16 dev eth0; ip link set eth0 up; ip route add default via 172.17.0.1")
	// NodePort 30080 → the app (10.42.0.2:8080), as kube-proxy DNATs it: from the network
	// (PREROUTING) and from the node itself (OUTPUT).
	in(node, "iptables -t nat -A PREROUTING -p tcp --dport 30080 -j DNAT --to-destination 10.42.0.2:8080; iptables -t nat -A OUTPUT -p tcp --dport 30080 -j DNAT --to-destination 10.42.0.2:8080")

	// NodePort 30081 → an endpoint on the node's own network (a hostNetwork pod).
	in(node, "iptables -t nat -A PREROUTING -p tcp --dport 30081 -j DNAT --to-destination 192.0.2.1:8081; iptables -t nat -A OUTPUT -p tcp --dport 30081 -j DNAT --to-destination 192.0.2.1:8081")

	serve(t, pod, ":8080")
	serve(t, node, ":6443")
	serve(t, node, ":8081")
	echo(t, pod, ":9090")

	type path struct {
		name, from, to string
		local          bool // reachable with the script on
	}
	paths := []path{
		{"the network → a NodePort", lan, "192.0.2.1:30080", false},
		{"the network → a pod's address, routed through the node", lan, "10.42.0.2:8080", false},
		{"the network → the API server", lan, "192.0.2.1:6443", false},
		{"the network → a NodePort whose endpoint is on the node's network", lan, "192.0.2.1:30081", false},
		{"the node → its NodePort", node, "192.0.2.1:30080", true},
		{"the node → the pod", node, "10.42.0.2:8080", true},
		{"the node → the API server", node, "192.0.2.1:6443", true},
		{"the node → a NodePort whose endpoint is on its network", node, "192.0.2.1:30081", true},
		{"a pod → another pod", pod2, "10.42.0.2:8080", true},
		{"a pod → the API server through the node", pod2, "10.42.0.1:6443", true},
		{"a container on this machine → a NodePort", ctr, "192.0.2.1:30080", true},
		{"a container on this machine → the API server", ctr, "172.17.0.1:6443", true},
	}
	check := func(when string, on bool) {
		t.Helper()
		for _, p := range paths {
			want := p.local || !on
			if got := reach(t, p.from, p.to); got != want {
				t.Errorf("%s: %s (%s): reached %v, want %v", when, p.name, p.to, got, want)
			}
		}
	}
	script := filepath.Join(t.TempDir(), firewallName)
	if err := os.WriteFile(script, []byte(firewallScript), 0o700); err != nil {
		t.Fatal(err)
	}
	status := filepath.Join(t.TempDir(), "run", "k3s-local-only")
	run := func(mode string) string {
		t.Helper()
		out, err := exec.Command("ip", "netns", "exec", node, "/bin/sh", script, mode, status).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", firewallName, mode, err, out)
		}
		rules, err := exec.Command("ip", "netns", "exec", node, "iptables", "-t", "mangle", "-S").CombinedOutput()
		if err != nil {
			t.Fatalf("iptables -S: %v\n%s", err, rules)
		}
		return string(rules)
	}

	check("without the script", false)
	// A connection the network opened before the rules went in is cut by them, not kept.
	held := hold(t, lan, "10.42.0.2:9090")
	rules := run("on")
	if held() {
		t.Error("a connection from the network opened before the rules still works after them")
	}
	check("with the script", true)
	if _, err := os.Stat(status); err != nil {
		t.Fatalf("the rules are in, and the status file is not: %v", err)
	}
	// Run again (every k3s start does): the same rules, one jump each.
	if again := run("on"); again != rules {
		t.Fatalf("a second run changed the rules:\n%s\nthen:\n%s", rules, again)
	}
	for _, jump := range []string{"-A FORWARD -j HARMONY-LOCAL-FORWARD", "-A INPUT -j HARMONY-LOCAL-INPUT", "-A HARMONY-LOCAL-INPUT -p udp -m udp --dport 8472 -j DROP"} {
		if n := strings.Count(rules, jump+"\n"); n != 1 {
			t.Fatalf("%q %d times:\n%s", jump, n, rules)
		}
	}
	if rules := run("off"); strings.Contains(rules, "HARMONY") {
		t.Fatalf("off left rules:\n%s", rules)
	}
	check("after off", false)
	if _, err := os.Stat(status); !os.IsNotExist(err) {
		t.Fatalf("off left the status file: %v", err)
	}
	if out, err := exec.Command("ip", "netns", "exec", node, "/bin/sh", script, "sideways").CombinedOutput(); err == nil || !strings.Contains(string(out), "usage") {
		t.Fatalf("an unknown mode: %v\n%s", err, out)
	}
}

// inNetns runs f on a thread moved into the named network namespace; the thread is never handed
// back to other goroutines (it ends with this one).
func inNetns(t *testing.T, ns string, f func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
		fd, err := unix.Open(filepath.Join("/var/run/netns", ns), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			done <- err
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			done <- err
			return
		}
		done <- f()
	}()
	return <-done
}

// listen listens on addr inside ns until the test ends.
func listen(t *testing.T, ns, addr string) net.Listener {
	t.Helper()
	var l net.Listener
	if err := inNetns(t, ns, func() (err error) {
		l, err = net.Listen("tcp4", addr)
		return err
	}); err != nil {
		t.Fatalf("listen on %s in %s: %v", addr, ns, err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// serve answers "ok" on addr inside ns until the test ends.
func serve(t *testing.T, ns, addr string) {
	t.Helper()
	l := listen(t, ns, addr)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = io.WriteString(c, "ok")
			_ = c.Close()
		}
	}()
}

// reach reports whether a connection from ns to addr gets the server's answer. A dropped SYN
// shows as a timeout.
func reach(t *testing.T, ns, addr string) bool {
	t.Helper()
	var got bool
	err := inNetns(t, ns, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
		defer cancel()
		var d net.Dialer
		c, err := d.DialContext(ctx, "tcp4", addr)
		if err != nil {
			return nil
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(2 * time.Second))
		b, _ := io.ReadAll(c)
		got = string(b) == "ok"
		return nil
	})
	if err != nil {
		t.Fatalf("enter %s: %v", ns, err)
	}
	return got
}

// echo answers each line it reads on addr inside ns, until the test ends.
func echo(t *testing.T, ns, addr string) {
	t.Helper()
	l := listen(t, ns, addr)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
}

// hold opens a connection from ns to an echo server at addr and checks it works; the function
// it returns reports whether it still does.
func hold(t *testing.T, ns, addr string) func() bool {
	t.Helper()
	var c net.Conn
	if err := inNetns(t, ns, func() (err error) {
		c, err = net.DialTimeout("tcp4", addr, 2*time.Second)
		return err
	}); err != nil {
		t.Fatalf("dial %s from %s: %v", addr, ns, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	roundTrip := func() bool {
		_ = c.SetDeadline(time.Now().Add(1500 * time.Millisecond))
		if _, err := c.Write([]byte("x")); err != nil {
			return false
		}
		b := make([]byte, 1)
		_, err := io.ReadFull(c, b)
		return err == nil && b[0] == 'x'
	}
	if !roundTrip() {
		t.Fatalf("the connection from %s to %s does not work to begin with", ns, addr)
	}
	return roundTrip
}
