package bootstrap

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/NationTech/harmony-agent/installer"
	"github.com/NationTech/harmony-agent/internal/hint"
)

// DefaultCLIDir is where `harmony runtime install-cli` puts programs: ~/.local/bin, or
// %LOCALAPPDATA%\harmony\bin on Windows.
func DefaultCLIDir() (string, error) {
	if runtime.GOOS == "windows" {
		if d := os.Getenv("LOCALAPPDATA"); d != "" {
			return filepath.Join(d, "harmony", "bin"), nil
		}
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, ".local", "bin"), nil
}

// InstallK3dCLI installs the pinned, verified k3d release binary into dir, for people who want
// the k3d CLI itself (harmony never needs it). It returns the installed path and version.
func InstallK3dCLI(ctx context.Context, cfg Config, dir string) (string, string, error) {
	k := NewK3d(cfg.Home, cfg.Trust, cfg.Out, cfg.Quiet)
	k.NoUpdateCheck = cfg.NoUpdateCheck
	m, err := k.manifest(ctx)
	if err != nil {
		return "", "", err
	}
	platform := runtime.GOOS + "/" + runtime.GOARCH
	art, err := m.K3d.Binary(k.Mirror, platform)
	if err != nil {
		return "", "", hint.With(fmt.Errorf("k3d %s for %s: %w", m.K3d.Version, platform, err), "harmony installs only k3d binaries pinned by digest in its runtime manifest")
	}
	res, err := k.Fetcher.Fetch(ctx, art) // hashed while it streams; refused unless it matches
	if err != nil {
		return "", "", err
	}
	name := "k3d"
	if runtime.GOOS == "windows" {
		name += ".exe"
	}
	dst := filepath.Join(dir, name)
	if err := installer.InstallFile(res.Path, dst, 0o755); err != nil {
		return "", "", err
	}
	return dst, m.K3d.Version, nil
}
