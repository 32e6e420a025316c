// Command k3s-node-standin is a TEST STAND-IN for the k3s node image (rancher/k3s), built into
// a stand-in image by bootstrap's k3d tests because no registry is reachable from the test
// machines. It is /bin/k3s in an image with busybox-static as /bin/sh (k3d runs its entrypoint
// scripts and `sh -c` in nodes). Towards k3d it acts like `k3s server`: it writes the kubeconfig
// to $K3S_KUBECONFIG_OUTPUT (where k3d reads it), serves the API on :6443 by forwarding to the
// real test API server, logs the line k3d waits for ("k3s is up and running") and runs until
// stopped. It counts its boots in the k3s data directory, so tests see that state survives.
//
// The image bakes its behaviour into /standin: kubeconfig.yaml (the test API server's, named
// "default", server https://127.0.0.1:6443), target (host:port of the test API server as seen
// from the node) and mode ("ready" or "never-ready": never logs the line and serves nothing).
//
// Called as kubectl, iptables-save or iptables-restore (the tools k3d's entrypoint scripts use
// and the real image ships), it does nothing and says so. Called as ctr, it is the ctr stand-in
// (internal/ctrstandin): imported images are recorded in the k3s data directory (on the
// volume, as containerd's content is), in /var/lib/rancher/k3s/standin-images. When the file
// /standin/ctr-fail exists, every import fails at once, without reading its input, with the
// file's text on standard error and exit code 1 (a node whose containerd refuses images); when
// /standin/ctr-hang exists, every import waits forever, reading nothing (a stuck containerd).
package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/NationTech/harmony-agent/internal/ctrstandin"
)

// ImageStore is where the ctr stand-in keeps the node's images.
const ImageStore = "/var/lib/rancher/k3s/standin-images"

func main() {
	switch filepath.Base(os.Args[0]) {
	case "kubectl", "iptables-save":
		fmt.Fprintf(os.Stderr, "%s: k3s-node-standin (test stand-in): nothing to do\n", filepath.Base(os.Args[0]))
		return
	case "iptables-restore":
		_, _ = io.Copy(io.Discard, os.Stdin)
		return
	case "ctr":
		if msg, err := os.ReadFile("/standin/ctr-fail"); err == nil && slices.Contains(os.Args[1:], "import") {
			fmt.Fprintf(os.Stderr, "ctr: %s\n", strings.TrimSpace(string(msg)))
			os.Exit(1)
		}
		if _, err := os.Stat("/standin/ctr-hang"); err == nil && slices.Contains(os.Args[1:], "import") {
			for {
				time.Sleep(time.Hour) // not select {}: with no other goroutine, Go ends that as a deadlock (exit 2)
			}
		}
		os.Exit(ctrstandin.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, func(string) string { return ImageStore }))
	}
	fmt.Printf("k3s-node-standin (test stand-in for the k3s node image) args: %s\n", strings.Join(os.Args[1:], " "))
	if len(os.Args) < 2 || os.Args[1] != "server" {
		fmt.Println(`level=fatal msg="k3s-node-standin: only 'server' is supported"`)
		os.Exit(1)
	}
	mode := read("/standin/mode")
	boots := bootCount()
	fmt.Printf("level=info msg=\"k3s-node-standin %s, boot %d\"\n", read("/standin/version"), boots)
	if mode == "never-ready" {
		fmt.Println(`level=error msg="k3s-node-standin: this version never becomes ready"`)
		wait()
		return
	}
	ln, err := net.Listen("tcp", ":6443")
	if err != nil {
		fmt.Printf("level=fatal msg=\"listen :6443: %v\"\n", err)
		os.Exit(1)
	}
	target := read("/standin/target")
	go serve(ln, target)
	out := os.Getenv("K3S_KUBECONFIG_OUTPUT")
	if out == "" {
		out = "/etc/rancher/k3s/k3s.yaml"
	}
	kc, err := os.ReadFile("/standin/kubeconfig.yaml")
	if err == nil {
		err = os.MkdirAll(filepath.Dir(out), 0o755)
	}
	if err == nil {
		err = os.WriteFile(out, kc, 0o600)
	}
	if err != nil {
		fmt.Printf("level=fatal msg=\"write kubeconfig: %v\"\n", err)
		os.Exit(1)
	}
	fmt.Printf("level=info msg=\"Wrote kubeconfig %s\"\n", out)
	fmt.Println(`level=info msg="k3s is up and running"`)
	wait()
}

// serve forwards every connection to the test API server (TLS passes through untouched).
func serve(ln net.Listener, target string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			t, err := net.Dial("tcp", target)
			if err != nil {
				fmt.Printf("level=error msg=\"dial %s: %v\"\n", target, err)
				return
			}
			defer t.Close()
			go func() { _, _ = io.Copy(t, c) }()
			_, _ = io.Copy(c, t)
		}()
	}
}

// bootCount increments and returns the boot counter kept in the k3s data directory.
func bootCount() int {
	p := "/var/lib/rancher/k3s/standin-boots"
	n, _ := strconv.Atoi(read(p))
	n++
	_ = os.MkdirAll(filepath.Dir(p), 0o755)
	_ = os.WriteFile(p, []byte(strconv.Itoa(n)), 0o644)
	return n
}

func read(p string) string {
	b, _ := os.ReadFile(p)
	return strings.TrimSpace(string(b))
}

func wait() {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
	fmt.Println(`level=info msg="k3s-node-standin shutting down"`)
}
