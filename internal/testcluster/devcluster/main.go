// Command devcluster runs the test cluster (internal/testcluster) until stopped, for people
// working on harmony: scripts/dev-cluster starts it in the background. It writes the admin
// kubeconfig's path to the file named by --state once the cluster is ready, and removes that
// file when it stops (SIGTERM or Ctrl-C), stopping every component.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/NationTech/harmony-agent/internal/testcluster"
)

func main() {
	realNode := flag.Bool("real-node", false, "a real node (kubelet, containerd) instead of the simulated one")
	state := flag.String("state", "", "write the kubeconfig's path here once ready")
	flag.Parse()
	var opts []testcluster.Option
	if *realNode {
		opts = append(opts, testcluster.WithRealNode())
	}
	// Signals are caught from the start: one that comes while the cluster starts stops it once
	// it has started, instead of leaving its parts running.
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
	c, err := testcluster.Start(opts...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "dev-cluster:", err)
		os.Exit(1)
	}
	defer c.Stop()
	if *state != "" {
		if err := os.WriteFile(*state, []byte(c.Kubeconfig+"\n"), 0o600); err != nil {
			fmt.Fprintln(os.Stderr, "dev-cluster:", err)
			return
		}
		defer os.Remove(*state)
	}
	node := "the simulated node " + testcluster.NodeName + " (pods go Running; nothing runs)"
	if c.Node != nil {
		node = fmt.Sprintf("the real node %s (%s); its containerd: %s --address %s -n k8s.io images ls", c.Node.Name, c.Node.IP, c.Node.Ctr, c.Node.Containerd)
	}
	fmt.Printf("dev-cluster: ready in %s; kubeconfig %s\n", c.StartupTime.Round(1e6), c.Kubeconfig)
	fmt.Printf("dev-cluster: %s\n", node)
	fmt.Printf("dev-cluster: component logs in %s (kept while it runs)\n", filepath.Dir(c.Kubeconfig))
	<-sig
	fmt.Println("dev-cluster: stopping")
	go func() {
		<-sig
		fmt.Println("dev-cluster: killing every component")
		c.Kill() // a second signal ends it at once
		os.Exit(1)
	}()
}
