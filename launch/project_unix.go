//go:build unix

package launch

import (
	"os"
	"syscall"
)

// trusted reports whether a project marker (.git, harmony.yaml) in dir may define the project:
// the marker and its folder belong to the user running harmony, or to root.
func trusted(dir string, marker os.FileInfo) bool {
	st, err := os.Stat(dir)
	if err != nil {
		return false
	}
	return ownedByUserOrRoot(st) && ownedByUserOrRoot(marker)
}

func ownedByUserOrRoot(fi os.FileInfo) bool {
	s, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return false
	}
	return s.Uid == 0 || int(s.Uid) == os.Geteuid()
}
