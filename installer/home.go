package installer

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
)

// HomeEnv names the environment variable that overrides harmony's per-user data directory.
const HomeEnv = "HARMONY_HOME"

// Home returns harmony's per-user data directory: HARMONY_HOME, else the OS's user data dir
// ($XDG_DATA_HOME/harmony or ~/.local/share/harmony on Linux, ~/Library/Application Support/harmony
// on macOS, %LOCALAPPDATA%\harmony on Windows).
func Home() (string, error) {
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
