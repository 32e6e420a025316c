//go:build windows

package bootstrap

import (
	"fmt"
	"os"
	"runtime"
)

// k3s runs on Linux only; on Windows harmony uses k3d.

func startDetached(string, []string, *os.File) (int, error) {
	return 0, fmt.Errorf("k3s on %s: %w", runtime.GOOS, ErrUnsupported)
}
