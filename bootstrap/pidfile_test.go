//go:build linux

package bootstrap_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/NationTech/harmony-agent/bootstrap"
)

// unrelated starts a real process that is not k3s (sleep) and stops it when the test ends.
func unrelated(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "600")
	must(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd
}

// procStart returns field 22 of /proc/<pid>/stat (the start time).
func procStart(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	must(t, err)
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	return fields[19]
}

// TestNoInitPidFilePrivilegeConfusion: after a reboot the pid in harmony's pid file can belong
// to any process. harmony (as root: privilege confusion) must neither report that process as
// k3s nor signal it, and `runtime start` must really start k3s.
func TestNoInitPidFilePrivilegeConfusion(t *testing.T) {
	paths := bootstrap.Paths{Root: t.TempDir()}
	must(t, os.MkdirAll(filepath.Dir(paths.Binary()), 0o755))
	must(t, os.WriteFile(paths.Binary(), standin, 0o755))
	// The stand-in runs until stopped, like k3s.
	t.Setenv("HARMONY_TEST_STANDIN_MODE", "never-ready")
	t.Setenv("HARMONY_TEST_APISERVER_KUBECONFIG", paths.Binary())
	k3sExe, err := filepath.EvalSymlinks(paths.Binary())
	must(t, err)

	tests := []struct {
		name    string
		pidFile func(pid int) string
	}{
		{"the pid alone (as harmony used to write it)", func(pid int) string { return fmt.Sprintf("%d\n", pid) }},
		{"the pid with another start time", func(pid int) string { return fmt.Sprintf("%d\n1\n%s\n", pid, k3sExe) }},
		{"the pid and its start time but another executable", func(pid int) string {
			return fmt.Sprintf("%d\n%s\n%s\n", pid, procStart(t, pid), k3sExe)
		}},
		{"garbage", func(int) string { return "not a pid file\n" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			sleep := unrelated(t)
			must(t, os.MkdirAll(filepath.Dir(paths.PidFile()), 0o755))
			must(t, os.WriteFile(paths.PidFile(), []byte(tt.pidFile(sleep.Process.Pid)), 0o644))
			sup := bootstrap.DetectSupervisor(paths, nil)

			if running, pid := sup.Running(ctx); running {
				t.Errorf("reports pid %d (sleep) as a running k3s", pid)
			}
			if err := sup.Stop(ctx); err != nil {
				t.Errorf("stop: %v", err)
			}
			if !alive(sleep.Process.Pid) {
				t.Fatal("runtime stop signalled an unrelated process")
			}
			if _, err := os.Stat(paths.PidFile()); !os.IsNotExist(err) {
				t.Error("stop kept a pid file naming another process")
			}

			must(t, os.WriteFile(paths.PidFile(), []byte(tt.pidFile(sleep.Process.Pid)), 0o644))
			must(t, sup.Start(ctx))
			running, pid := sup.Running(ctx)
			if !running || pid == sleep.Process.Pid || !alive(pid) {
				t.Fatalf("start did not start k3s: running %v pid %d (sleep is %d)", running, pid, sleep.Process.Pid)
			}
			if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); exe != k3sExe {
				t.Errorf("pid %d runs %q, want %q", pid, exe, k3sExe)
			}
			must(t, sup.Stop(ctx))
			if alive(pid) {
				t.Error("stop left the k3s it started running")
			}
			if !alive(sleep.Process.Pid) {
				t.Error("the unrelated process died")
			}
		})
	}
}

// TestRuntimeAfterRebootPrivilegeConfusion runs the real CLI through a simulated reboot: k3s is
// gone, its pid file stays, and the pid now belongs to an unrelated process. runtime status must
// not report it, runtime start must really start k3s, runtime stop must leave it alone.
func TestRuntimeAfterRebootPrivilegeConfusion(t *testing.T) {
	t.Parallel()
	m := newMachine(t)
	m.mustHarmony("bootstrap")
	pidFile := m.path("/var/lib/harmony/k3s/k3s.pid")
	recorded, err := os.ReadFile(pidFile)
	must(t, err)
	k3s := m.pid()
	must(t, syscall.Kill(k3s, syscall.SIGKILL)) // the reboot
	for alive(k3s) {
		time.Sleep(10 * time.Millisecond)
	}
	sleep := unrelated(t)
	lines := strings.SplitN(string(recorded), "\n", 2)
	must(t, os.WriteFile(pidFile, []byte(fmt.Sprintf("%d\n%s", sleep.Process.Pid, lines[1])), 0o644))

	if st := m.status(); st.Running || st.PID == sleep.Process.Pid {
		t.Fatalf("status reports the unrelated process as k3s: %+v", st)
	}
	m.mustHarmony("runtime", "start")
	if pid := m.pid(); pid == sleep.Process.Pid || !alive(pid) || !m.status().APIHealthy {
		t.Fatalf("runtime start did not start k3s (pid file names %d, sleep is %d)", pid, sleep.Process.Pid)
	}
	k3s = m.pid()
	m.mustHarmony("runtime", "stop")
	if alive(k3s) {
		t.Error("runtime stop left k3s running")
	}
	if !alive(sleep.Process.Pid) {
		t.Fatal("the unrelated process was killed")
	}
	// Once more with k3s stopped and only the unrelated process named: stop kills nothing.
	must(t, os.WriteFile(pidFile, []byte(fmt.Sprintf("%d\n%s", sleep.Process.Pid, lines[1])), 0o644))
	m.mustHarmony("runtime", "stop")
	if !alive(sleep.Process.Pid) {
		t.Fatal("runtime stop killed the unrelated process")
	}
}
