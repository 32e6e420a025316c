// Command k3s-standin is a TEST STAND-IN for k3s, built by bootstrap's tests because no real k3s
// can run on the test machines. Towards harmony it acts like `k3s server`: it writes the
// kubeconfig where k3s would (--write-kubeconfig), pointing at the real test API server whose
// kubeconfig is in HARMONY_TEST_APISERVER_KUBECONFIG, keeps a small state file in its data dir
// (--data-dir, created once and never rewritten, as k3s's datastore would be), logs to stdout,
// and runs until stopped.
//
// Its version is the name of the directory its executable was installed in (harmony's layout:
// /var/lib/harmony/k3s/<version>/k3s). HARMONY_TEST_STANDIN_MODE picks a failure:
// "never-ready" writes a kubeconfig that points nowhere and logs a port clash; "exit" exits at
// once with an error. "MODE@VERSION" applies the failure only to that version, so one stand-in
// version can be broken while another works.
//
// `k3s ctr` is the ctr stand-in (internal/ctrstandin): harmony passes containerd's socket with
// --address, and the images are recorded beside it, in <socket's folder>/standin-images. On a
// test cluster with a real node (HARMONY_TEST_CTR names the real ctr and HARMONY_TEST_CONTAINERD
// the node's containerd socket), `k3s ctr` is the real ctr against the real node's containerd,
// as k3s's own ctr is against the containerd k3s runs: the kubelet runs what it imports.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/NationTech/harmony-agent/internal/ctrstandin"
)

func main() {
	version := "unknown"
	if exe, err := os.Executable(); err == nil {
		if real, err := filepath.EvalSymlinks(exe); err == nil {
			version = filepath.Base(filepath.Dir(real))
		}
	}
	if len(os.Args) > 1 && os.Args[1] == "ctr" && os.Getenv("HARMONY_TEST_CTR") != "" {
		realCtr(os.Args[2:])
	}
	if len(os.Args) > 1 && os.Args[1] == "ctr" {
		os.Exit(ctrstandin.Main(os.Args[2:], os.Stdin, os.Stdout, os.Stderr, func(address string) string {
			if address == "" {
				fmt.Fprintln(os.Stderr, "ctr-standin: harmony must name containerd's socket with --address")
				os.Exit(1)
			}
			return filepath.Join(filepath.Dir(address), "standin-images")
		}))
	}
	fmt.Printf("k3s-standin (test stand-in for k3s) version %s args: %s\n", version, strings.Join(os.Args[1:], " "))
	if len(os.Args) < 2 || os.Args[1] != "server" {
		fmt.Println("k3s-standin: only 'server' is supported")
		os.Exit(1)
	}
	var kubeconfig, dataDir string
	for i, a := range os.Args {
		if a == "--write-kubeconfig" && i+1 < len(os.Args) {
			kubeconfig = os.Args[i+1]
		}
		if a == "--data-dir" && i+1 < len(os.Args) {
			dataDir = os.Args[i+1]
		}
	}
	mode, only, scoped := strings.Cut(os.Getenv("HARMONY_TEST_STANDIN_MODE"), "@")
	if scoped && only != version {
		mode = ""
	}
	switch mode {
	case "exit":
		fmt.Println(`level=fatal msg="starting kubernetes: preparing server: failed to find memory cgroup (v2)"`)
		os.Exit(1)
	case "never-ready":
		fmt.Println(`level=error msg="listen tcp 127.0.0.1:6443: bind: address already in use"`)
	}
	if dataDir != "" {
		state := filepath.Join(dataDir, "server", "db", "state.db")
		if _, err := os.Stat(state); os.IsNotExist(err) {
			if err := os.MkdirAll(filepath.Dir(state), 0o700); err == nil {
				_ = os.WriteFile(state, []byte("cluster state created by k3s-standin "+version+"\n"), 0o600)
			}
		}
	}
	src, err := os.ReadFile(os.Getenv("HARMONY_TEST_APISERVER_KUBECONFIG"))
	if err != nil {
		fmt.Println("k3s-standin: cannot read HARMONY_TEST_APISERVER_KUBECONFIG:", err)
		os.Exit(1)
	}
	if mode == "never-ready" {
		src = []byte(`apiVersion: v1
kind: Config
clusters: [{name: default, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}]
users: [{name: default, user: {token: x}}]
contexts: [{name: default, context: {cluster: default, user: default}}]
current-context: default
`)
	}
	if err := os.MkdirAll(filepath.Dir(kubeconfig), 0o755); err != nil {
		fmt.Println("k3s-standin:", err)
		os.Exit(1)
	}
	if err := os.WriteFile(kubeconfig, src, 0o600); err != nil {
		fmt.Println("k3s-standin:", err)
		os.Exit(1)
	}
	fmt.Printf("level=info msg=\"Wrote kubeconfig %s\"\n", kubeconfig)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	<-sig
	fmt.Println(`level=info msg="Shutting down k3s-standin"`)
}

// realCtr runs the real ctr (HARMONY_TEST_CTR) with args, its --address replaced by the real
// node's containerd socket (HARMONY_TEST_CONTAINERD).
func realCtr(args []string) {
	sock := os.Getenv("HARMONY_TEST_CONTAINERD")
	if sock == "" {
		fmt.Fprintln(os.Stderr, "k3s-standin: HARMONY_TEST_CTR is set but HARMONY_TEST_CONTAINERD is not")
		os.Exit(1)
	}
	out := []string{os.Getenv("HARMONY_TEST_CTR")}
	replaced := false
	for i := 0; i < len(args); i++ {
		if (args[i] == "--address" || args[i] == "-a") && i+1 < len(args) {
			out = append(out, args[i], sock)
			i++
			replaced = true
			continue
		}
		out = append(out, args[i])
	}
	if !replaced {
		fmt.Fprintln(os.Stderr, "ctr-standin: harmony must name containerd's socket with --address")
		os.Exit(1)
	}
	err := syscall.Exec(out[0], out, os.Environ())
	fmt.Fprintln(os.Stderr, "k3s-standin: run the real ctr:", err)
	os.Exit(1)
}
