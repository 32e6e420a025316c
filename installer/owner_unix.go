//go:build !windows

package installer

import (
	"os"
	"strconv"
	"syscall"
)

// ownerOf names the owner of path (empty when unknown).
func ownerOf(path string) account {
	st, err := os.Stat(path)
	if err != nil {
		return account{}
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return account{}
	}
	return lookupUID(strconv.FormatUint(uint64(sys.Uid), 10))
}
