package installer

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
)

// HomeEnv names the environment variable that overrides harmony's per-user data directory.
const HomeEnv = "HARMONY_HOME"

// RootEnv names the variable that prefixes every system path (like DESTDIR), so packaging and
// tests can run the whole flow without touching the real system.
const RootEnv = "HARMONY_ROOT"

// SystemHome returns root's own data directory, /var/lib/harmony under HARMONY_ROOT: root's
// cache (cache/sha256), state, lock and accepted runtime manifest live there, beside the
// versioned k3s layout, and only root can write it.
func SystemHome() string {
	root := os.Getenv(RootEnv)
	if root == "" {
		root = string(filepath.Separator)
	}
	if abs, err := filepath.Abs(root); err == nil {
		root = abs
	}
	return filepath.Join(root, "var", "lib", "harmony")
}

// Home returns the data directory of the user harmony runs as. For root (harmony run as root,
// or re-run through sudo) it is SystemHome, whatever HARMONY_HOME, HOME or XDG_DATA_HOME say:
// those may name a directory the invoking user can write, and root must never take files from
// it (they could be planted) nor leave root-owned files in it. For anyone else it is
// HARMONY_HOME, else the OS's user data dir ($XDG_DATA_HOME/harmony or ~/.local/share/harmony
// on Linux, ~/Library/Application Support/harmony on macOS, %LOCALAPPDATA%\harmony on Windows).
func Home() (string, error) { return home(os.Geteuid()) }

func home(euid int) (string, error) {
	if euid == 0 {
		return SystemHome(), nil
	}
	if h := os.Getenv(HomeEnv); h != "" {
		return filepath.Abs(h)
	}
	switch runtime.GOOS {
	case "windows":
		if d := os.Getenv("LOCALAPPDATA"); d != "" {
			return filepath.Join(d, "harmony"), nil
		}
	case "darwin":
		if d, err := os.UserHomeDir(); err == nil {
			return filepath.Join(d, "Library", "Application Support", "harmony"), nil
		}
	default:
		if d := os.Getenv("XDG_DATA_HOME"); filepath.IsAbs(d) {
			return filepath.Join(d, "harmony"), nil
		}
		if d, err := os.UserHomeDir(); err == nil {
			return filepath.Join(d, ".local", "share", "harmony"), nil
		}
	}
	return "", fmt.Errorf("cannot find a home directory for harmony's data: set %s", HomeEnv)
}

// CacheDir returns the content-addressed cache directory under home.
func CacheDir(home string) string {
	return filepath.Join(home, "cache", "sha256")
}
