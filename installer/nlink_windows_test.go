package installer_test

import "testing"

type syscallStat struct{}

// nlink is not checked on Windows, where archives carry no hard links harmony would create.
func (syscallStat) nlink(*testing.T, string) uint64 { return 1 }
