//go:build !linux

package bootstrap

import (
	"fmt"
	"runtime"
	"syscall"
	"time"
)

// k3s runs on Linux only; elsewhere harmony uses k3d and never supervises a process itself.

func identify(int, string) (k3sProcess, error) {
	return k3sProcess{}, fmt.Errorf("k3s on %s: %w", runtime.GOOS, ErrUnsupported)
}

func (p k3sProcess) alive() bool { return false }

func (p k3sProcess) signal(syscall.Signal) error { return ErrUnsupported }

func (p k3sProcess) waitExit(time.Duration) bool { return true }
