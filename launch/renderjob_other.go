//go:build !linux

package launch

import (
	"os"
	"os/exec"
)

// RenderInChild reports whether rendering runs in a child process here: only on Linux, where
// RLIMIT_AS bounds its memory. Elsewhere Bounded's heap watch is the bound.
const RenderInChild = false

func limitMemory(uint64) {}

func setChildAttrs(*exec.Cmd) {}

// RenderChildPath is Linux's: elsewhere rendering stays in the launch's process.
func RenderChildPath() (string, error) { return os.Executable() }
