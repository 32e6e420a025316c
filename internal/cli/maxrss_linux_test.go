package cli_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/rogpeppe/go-internal/testscript"
)

// cmdMaxRSS runs a program (with the script's environment and folder) and fails when it, or any
// process it waited for, had more than MiB of memory resident at once: "maxrss MiB prog args...".
// The program's exit status is not judged; its stdout and stderr become the command's.
func cmdMaxRSS(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: maxrss MiB prog args...")
	}
	limit, err := strconv.ParseInt(args[0], 10, 64)
	ts.Check(err)
	path, err := exec.LookPath(args[1])
	if p := ts.Getenv("PATH"); p != "" {
		for _, dir := range filepath.SplitList(p) {
			if st, err2 := os.Stat(filepath.Join(dir, args[1])); err2 == nil && !st.IsDir() {
				path, err = filepath.Join(dir, args[1]), nil
				break
			}
		}
	}
	ts.Check(err)
	cmd := exec.Command(path, args[2:]...)
	cmd.Args[0] = args[1]
	cmd.Dir = ts.MkAbs(".")
	for _, kv := range []string{"PATH", "HOME", "HARMONY_HOME", "HARMONY_ROOT", "KUBECONFIG", "NO_COLOR", "DOCKER_HOST", "HARMONY_NO_UPDATE_CHECK", "TMPDIR"} {
		cmd.Env = append(cmd.Env, kv+"="+ts.Getenv(kv))
	}
	cmd.Stdout, cmd.Stderr = ts.Stdout(), ts.Stderr()
	_ = cmd.Run()
	if cmd.ProcessState == nil {
		ts.Fatalf("%s did not run", args[1])
	}
	ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	if !ok {
		ts.Fatalf("no resource usage on this system")
	}
	rss := int64(ru.Maxrss) >> 10 // KiB on Linux
	if over := rss > limit; over != neg {
		ts.Fatalf("%s: %d MiB resident at most (limit %d MiB)", args[1], rss, limit)
	}
	ts.Logf("%s: %d MiB resident at most", args[1], rss)
}
