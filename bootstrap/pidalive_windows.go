package bootstrap

import "os"

// pidAlive reports whether a process with this pid exists (FindProcess opens it on Windows).
func pidAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	_ = p.Release()
	return true
}
