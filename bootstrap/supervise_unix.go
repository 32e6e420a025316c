//go:build unix

package bootstrap

import (
	"os"
	"os/exec"
	"syscall"
)

// startDetached starts bin in a new session with stdin from /dev/null and output to log, and
// lets it outlive harmony.
func startDetached(bin string, args []string, log *os.File) (int, error) {
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	pid := cmd.Process.Pid
	// Reap it if it exits while harmony still runs, so it never lingers as a zombie.
	go func() { _ = cmd.Wait() }()
	return pid, nil
}
