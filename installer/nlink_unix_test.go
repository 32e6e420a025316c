//go:build unix

package installer_test

import (
	"os"
	"syscall"
	"testing"
)

type syscallStat struct{}

// nlink returns how many hard links the file has.
func (syscallStat) nlink(t *testing.T, path string) uint64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return uint64(st.Sys().(*syscall.Stat_t).Nlink)
}
