package bootstrap

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// procStat returns the state and start time (clock ticks after boot) of pid from /proc/<pid>/stat.
func procStat(pid int) (state byte, start uint64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	// "pid (comm) state ppid …": comm may hold spaces and parentheses, so fields count from the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	fields := strings.Fields(string(b[i+1:]))
	if len(fields) < 20 || len(fields[0]) != 1 {
		return 0, 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	// fields[0] is field 3 (state); the start time is field 22.
	start, err = strconv.ParseUint(fields[19], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("parse /proc/%d/stat: %w", pid, err)
	}
	return fields[0][0], start, nil
}

// procExe returns the executable pid runs, as /proc/<pid>/exe names it (a deleted file, e.g. a
// version removed since, still names its old path).
func procExe(pid int) (string, error) {
	exe, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	return strings.TrimSuffix(exe, " (deleted)"), err
}

// identify records the identity of a process harmony just started: its start time and executable.
func identify(pid int, exe string) (k3sProcess, error) {
	_, start, err := procStat(pid)
	if err != nil {
		return k3sProcess{}, err
	}
	if e, err := procExe(pid); err == nil {
		exe = e
	}
	return k3sProcess{PID: pid, Start: start, Exe: exe}, nil
}

// alive reports whether the recorded process still runs: the pid runs, is no zombie, started
// at the recorded time and runs the recorded executable. After a reboot the pid may name any
// other process; its start time and executable tell them apart. Without the right to read
// /proc/<pid>/exe (not root) the start time decides.
func (p k3sProcess) alive() bool {
	if p.PID <= 0 {
		return false
	}
	state, start, err := procStat(p.PID)
	if err != nil || state == 'Z' || state == 'X' || start != p.Start {
		return false
	}
	exe, err := procExe(p.PID)
	if err != nil {
		return errors.Is(err, fs.ErrPermission)
	}
	return exe == p.Exe
}

// signal sends sig to the recorded process, and to no other: through a pidfd, which pins the
// process, when the kernel has them (Linux 5.3), so the identity check and the signal name the
// same process.
func (p k3sProcess) signal(sig syscall.Signal) error {
	fd, err := unix.PidfdOpen(p.PID, 0)
	switch {
	case err == nil:
		defer unix.Close(fd)
		if !p.alive() {
			return errNotOurs
		}
		return unix.PidfdSendSignal(fd, sig, nil, 0)
	case errors.Is(err, unix.ESRCH):
		return errNotOurs
	}
	if !p.alive() {
		return errNotOurs
	}
	return syscall.Kill(p.PID, sig)
}

// waitExit waits up to d for the recorded process to end and reports whether it did. While a
// process exits it no longer shows its executable, so alive turns false before its threads, open
// files and ports are gone; waitExit waits for the end itself. Through a pidfd where the kernel
// has them: it turns readable once every thread has exited. Otherwise it polls the pid's state and
// start time.
func (p k3sProcess) waitExit(d time.Duration) bool {
	deadline := time.Now().Add(d)
	fd, err := unix.PidfdOpen(p.PID, 0)
	if errors.Is(err, unix.ESRCH) {
		return true
	}
	if err == nil {
		defer unix.Close(fd)
		if _, start, err := procStat(p.PID); err != nil || start != p.Start {
			return true // the pid already names another process
		}
		for {
			n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, int(max(time.Until(deadline), 0).Milliseconds()))
			if !errors.Is(err, unix.EINTR) {
				return err == nil && n > 0
			}
		}
	}
	for {
		state, start, err := procStat(p.PID)
		if err != nil || state == 'Z' || state == 'X' || start != p.Start {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}
