package launch

import (
	"bufio"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// RenderInChild reports whether rendering runs in a child process here: on Linux, where
// RLIMIT_AS bounds its memory.
const RenderInChild = true

// limitMemory caps this process's address space at what it has now plus max and some room for
// the runtime: an allocation past it fails (the process dies, and its parent says why).
func limitMemory(max uint64) {
	if max == 0 {
		max = DefaultRenderMemory
	}
	now := vmSize()
	if now == 0 {
		return
	}
	limit := now + max + 512<<20
	var cur unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_AS, &cur) == nil && cur.Max < limit {
		limit = cur.Max // a lower limit someone set stays
	}
	_ = unix.Setrlimit(unix.RLIMIT_AS, &unix.Rlimit{Cur: limit, Max: limit})
}

// vmSize is this process's address space now, in bytes (0 when unknown).
func vmSize() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmSize:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}

// setChildAttrs puts the child in a process group of its own (a Ctrl-C on the terminal is the
// launch's to handle), makes it die with the launch, and kills the whole group when the launch
// stops it: what it started (git, for a remote kustomize resource) goes with it.
func setChildAttrs(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
}

// RenderChildPath is the executable the render child runs: this very file, whatever has been
// put at its path since it started (a self-update).
func RenderChildPath() (string, error) { return "/proc/self/exe", nil }
