package installer

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// WriteFileAtomic writes r to path so that readers see either the old file or the complete new
// one, never a part: it writes a temp file in the same directory, fsyncs it, sets mode and
// renames it over path. On error the previous file is untouched and no temp file remains.
func WriteFileAtomic(path string, r io.Reader, mode os.FileMode) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("install %q: %w", path, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("install %q: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = io.Copy(tmp, r); err != nil {
		return fmt.Errorf("install %q: write: %w", path, err)
	}
	if err = tmp.Chmod(mode); err != nil {
		return fmt.Errorf("install %q: chmod: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("install %q: sync: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("install %q: close: %w", path, err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("install %q: rename: %w", path, err)
	}
	syncDir(dir)
	return nil
}

// InstallFile copies src (typically a verified cache entry) to dst atomically with mode.
func InstallFile(src, dst string, mode os.FileMode) error {
	f, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("install %q: %w", dst, err)
	}
	defer f.Close()
	return WriteFileAtomic(dst, f, mode)
}

// syncDir makes a rename durable where the OS supports syncing a directory.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
