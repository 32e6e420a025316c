// Command pin-runtime pins a k3s (and optionally k3d) release into manifests/runtimes.yaml.
// Run it through scripts/pin-runtime.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/NationTech/harmony-agent/installer"
	"github.com/NationTech/harmony-agent/internal/pin"
)

func main() {
	o := pin.Options{Out: os.Stdout, Mirror: installer.Mirror()}
	flag.StringVar(&o.Manifest, "manifest", "manifests/runtimes.yaml", "runtimes.yaml to update")
	flag.StringVar(&o.K3d, "k3d", "", "also pin this k3d release (e.g. v5.9.0)")
	flag.BoolVar(&o.KeepDefault, "keep-default", false, "do not make the pinned release the default")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: scripts/pin-runtime [--k3d V] [--keep-default] [--manifest F] K3S_VERSION")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	o.K3s = flag.Arg(0)
	home, err := os.MkdirTemp("", "pin-runtime")
	if err != nil {
		fmt.Fprintln(os.Stderr, "pin-runtime: error:", err)
		os.Exit(1)
	}
	defer os.RemoveAll(home)
	o.Fetcher = installer.NewFetcher(home)
	if err := pin.Run(context.Background(), o); err != nil {
		fmt.Fprintln(os.Stderr, "pin-runtime: error:", err)
		os.Exit(1)
	}
}
