//go:build unix

package bootstrap

import (
	"os"
	"syscall"
)

// isRoot reports whether harmony runs with root privileges.
func isRoot() bool { return os.Geteuid() == 0 }

// writableByOthers reports whether someone other than root could replace path: it is not
// owned by root, or it is group- or world-writable (a sticky directory, like /tmp, protects
// root's own files in it).
func writableByOthers(path string) bool {
	st, err := os.Stat(path)
	if err != nil {
		return true
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); !ok || sys.Uid != 0 {
		return true
	}
	return st.Mode().Perm()&0o022 != 0 && !(st.IsDir() && st.Mode()&os.ModeSticky != 0)
}
