// Command benchtool is scripts/bench's helper: "serve DIR" serves a directory on loopback
// (printing its URL), "fetch URL SHA256 SIZE DEST" downloads, verifies and installs one file
// exactly as harmony does (installer.Fetcher + installer.InstallVerified). Not shipped.
package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"

	"github.com/NationTech/harmony-agent/installer"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "benchtool:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	switch {
	case len(args) == 2 && args[0] == "serve":
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		fmt.Printf("http://%s\n", l.Addr())
		os.Stdout.Sync()
		return http.Serve(l, http.FileServer(http.Dir(args[1])))
	case len(args) == 5 && args[0] == "fetch":
		size, err := strconv.ParseInt(args[3], 10, 64)
		if err != nil {
			return fmt.Errorf("size %q: %w", args[3], err)
		}
		home, err := os.MkdirTemp(filepath.Dir(args[4]), "home")
		if err != nil {
			return err
		}
		defer os.RemoveAll(home)
		f := installer.NewFetcher(home)
		res, err := f.Fetch(context.Background(), installer.Artifact{Name: "bench artifact", URL: args[1], SHA256: args[2], MaxSize: size})
		if err != nil {
			return err
		}
		return installer.InstallVerified(res.Path, args[2], args[4], 0o755)
	}
	return fmt.Errorf("usage: benchtool serve DIR | benchtool fetch URL SHA256 SIZE DEST")
}
