// Command benchtool is scripts/bench's helper: "serve DIR" serves a directory on loopback
// (printing its URL), "fetch URL SHA256 SIZE DEST" downloads, verifies and installs one file
// exactly as harmony does (installer.Fetcher + installer.InstallVerified), "cpu N CMD [ARG...]"
// runs a command N times (output discarded) and prints the best wall time and the best CPU time
// (user + system, from the kernel's accounting of the child, to the microsecond) of one run, in
// seconds. Not shipped.
package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

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
	case len(args) >= 3 && args[0] == "cpu":
		n, err := strconv.Atoi(args[1])
		if err != nil || n < 1 {
			return fmt.Errorf("runs %q: not a positive number", args[1])
		}
		wall, cpu, err := bestOf(n, args[2:])
		if err != nil {
			return err
		}
		fmt.Printf("%.4f %.4f\n", wall.Seconds(), cpu.Seconds())
		return nil
	}
	return fmt.Errorf("usage: benchtool serve DIR | benchtool fetch URL SHA256 SIZE DEST | benchtool cpu N CMD [ARG...]")
}

// bestOf runs argv n times and returns the best wall time and the best CPU time of one run.
func bestOf(n int, argv []string) (wall, cpu time.Duration, err error) {
	for i := range n {
		cmd := exec.Command(argv[0], argv[1:]...)
		start := time.Now()
		if err := cmd.Run(); err != nil {
			return 0, 0, fmt.Errorf("%s: %w", argv[0], err)
		}
		w := time.Since(start)
		c := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		if i == 0 || w < wall {
			wall = w
		}
		if i == 0 || c < cpu {
			cpu = c
		}
	}
	return wall, cpu, nil
}
