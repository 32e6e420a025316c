//go:build linux

package install_test

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// noAnswer is a loopback address whose listen queue is full, so a connection to it is never
// set up (its SYNs are dropped), as behind a firewall that drops packets.
func noAnswer(t *testing.T) string {
	t.Helper()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Close(fd) })
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(sa.(*syscall.SockaddrInet4).Port)
	for range 4 { // fill the queue (a backlog of 0 holds one connection)
		c, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { syscall.Close(c) })
		_ = syscall.Connect(c, sa) // EINPROGRESS
	}
	time.Sleep(100 * time.Millisecond)
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatalf("%s accepted a connection: the full-queue trick does not work here", addr)
	}
	return "http://" + addr
}

// A mirror that never answers (a connection never set up) is said to be unreachable, not slow:
// curl reports its connect timeout with the same code (28) as a stalled transfer, and the watched
// wget is stopped with nothing received either way; "the server stalled, set HARMONY_MIRROR to a
// faster mirror" sent the user after the wrong problem.
func TestInstallShSaysAMirrorDidNotAnswer(t *testing.T) {
	t.Parallel()
	snap := needSnapshot(t)
	mirror := noAnswer(t)
	const limit = 60 * time.Second
	cases := []struct {
		downloader string
		shell      []string
	}{
		{"curl", []string{"dash"}},
		{"wget", []string{"bash"}},
	}
	type result struct {
		err    error
		out    *bytes.Buffer
		took   time.Duration
		bin    string
		before []byte
	}
	results := make([]result, len(cases))
	var wg sync.WaitGroup
	for i, c := range cases {
		home := t.TempDir()
		results[i].bin = binPath(home)
		installOld(t, results[i].bin)
		results[i].before, _ = os.ReadFile(results[i].bin)
		var cmd *exec.Cmd
		cmd, results[i].out = installShCmd(t, c.shell, env(t, snap, home, mirror, toolsPath(t, tools(c.downloader, "ssh-keygen"), nil)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			results[i].err = cmd.Run()
			results[i].took = time.Since(start)
		}()
	}
	wg.Wait()
	for i, c := range cases {
		t.Run(c.downloader, func(t *testing.T) {
			res := results[i]
			r := finished(t, res.err, res.out)
			if r.code == 0 || res.took > limit {
				t.Fatalf("exit %d after %s, want a failure within %s:\n%s", r.code, res.took.Round(time.Second), limit, r.out)
			}
			for _, want := range []string{
				"harmony-install: error: stopped downloading checksums.txt: the server did not answer",
				"reachable", "HARMONY_MIRROR (" + mirror + ")", "nothing was installed",
			} {
				if !strings.Contains(r.out, want) {
					t.Errorf("output lacks %q:\n%s", want, r.out)
				}
			}
			if strings.Contains(r.out, "stalled or was too slow") || strings.Contains(r.out, "faster mirror") {
				t.Errorf("a mirror that never answered is called slow:\n%s", r.out)
			}
			keptPrevious(t, res.bin, res.before)
		})
	}
}
