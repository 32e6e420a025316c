package cli_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// A command a script runs in the background and talks to while it runs (harmony launch --watch):
// "bg-start NAME prog args...", "bg-wait NAME REGEXP" (the next line of its output, stdout and
// stderr together, that matches, within a minute), "bg-stop NAME CODE" (Ctrl-C, then its exit
// code; its whole output becomes the command's stdout).
type bgProc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	seen int // bytes of out bg-wait has read past
	done chan struct{}
}

func (b *bgProc) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.out.Write(p)
}

type bgKey struct{}

func bgProcs(ts *testscript.TestScript) map[string]*bgProc {
	m, _ := ts.Value(bgKey{}).(map[string]*bgProc)
	if m == nil {
		ts.Fatalf("no background commands in this script's setup")
	}
	return m
}

func cmdBgStart(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: bg-start NAME prog args...")
	}
	procs := bgProcs(ts)
	path := args[1]
	for _, dir := range filepath.SplitList(ts.Getenv("PATH")) {
		if st, err := os.Stat(filepath.Join(dir, args[1])); err == nil && !st.IsDir() {
			path = filepath.Join(dir, args[1])
			break
		}
	}
	b := &bgProc{done: make(chan struct{})}
	b.cmd = exec.Command(path, args[2:]...)
	b.cmd.Args[0] = args[1]
	b.cmd.Dir = ts.MkAbs(".")
	for _, kv := range []string{"PATH", "HOME", "HARMONY_HOME", "HARMONY_ROOT", "KUBECONFIG", "NO_COLOR", "DOCKER_HOST", "HARMONY_NO_UPDATE_CHECK", "TMPDIR"} {
		b.cmd.Env = append(b.cmd.Env, kv+"="+ts.Getenv(kv))
	}
	b.cmd.Stdout, b.cmd.Stderr = b, b
	ts.Check(b.cmd.Start())
	go func() { _ = b.cmd.Wait(); close(b.done) }()
	procs[args[0]] = b
	ts.Defer(func() {
		select {
		case <-b.done:
		default:
			_ = b.cmd.Process.Kill()
			<-b.done
		}
	})
}

func cmdBgWait(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: bg-wait NAME REGEXP")
	}
	b := bgProcs(ts)[args[0]]
	if b == nil {
		ts.Fatalf("no background command %s", args[0])
	}
	re, err := regexp.Compile("(?m)" + args[1])
	ts.Check(err)
	deadline := time.Now().Add(time.Minute)
	for {
		b.mu.Lock()
		rest := b.out.String()[b.seen:]
		if loc := re.FindStringIndex(rest); loc != nil {
			// Past the end of the matching line.
			end := loc[1]
			if i := strings.IndexByte(rest[end:], '\n'); i >= 0 {
				end += i + 1
			} else {
				end = len(rest)
			}
			b.seen += end
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()
		select {
		case <-b.done:
			ts.Fatalf("%s ended before a line matching %q:\n%s", args[0], args[1], rest)
		default:
		}
		if time.Now().After(deadline) {
			ts.Fatalf("no line matching %q from %s in a minute:\n%s", args[1], args[0], rest)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func cmdBgStop(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: bg-stop NAME CODE")
	}
	b := bgProcs(ts)[args[0]]
	if b == nil {
		ts.Fatalf("no background command %s", args[0])
	}
	want, err := strconv.Atoi(args[1])
	ts.Check(err)
	ts.Check(b.cmd.Process.Signal(os.Interrupt))
	select {
	case <-b.done:
	case <-time.After(30 * time.Second):
		ts.Fatalf("%s did not end within 30s of Ctrl-C", args[0])
	}
	b.mu.Lock()
	out := b.out.String()
	b.mu.Unlock()
	_, _ = ts.Stdout().Write([]byte(out))
	if got := b.cmd.ProcessState.ExitCode(); got != want {
		ts.Fatalf("%s exited %d, want %d:\n%s", args[0], got, want, out)
	}
}
