package installer

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"strings"
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

// InstallFile copies the regular file src to dst atomically with mode. src is opened without
// following a link.
func InstallFile(src, dst string, mode os.FileMode) error {
	f, err := openNoFollow(src, os.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("install %q: %w", dst, err)
	}
	defer f.Close()
	return WriteFileAtomic(dst, f, mode)
}

// InstallVerified copies a cache entry to dst atomically with mode, hashing the very bytes it
// copies: unless they hash to sha256, dst is left as it was and ErrChecksumMismatch returned.
// Checking the bytes installed, not the file checked a moment earlier, leaves no window in
// which the cache entry could be swapped.
func InstallVerified(src, sha256Hex, dst string, mode os.FileMode) error {
	f, err := openNoFollow(src, os.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("install %q: %w", dst, err)
	}
	defer f.Close()
	return WriteFileAtomic(dst, &verifyingReader{r: f, h: sha256.New(), want: strings.ToLower(sha256Hex), src: src}, mode)
}

// verifyingReader hashes what it reads and, at the end, fails unless the digest is want, so
// WriteFileAtomic discards the temp file.
type verifyingReader struct {
	r         io.Reader
	h         hash.Hash
	want, src string
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.h.Write(p[:n])
	if errors.Is(err, io.EOF) {
		if got := hex.EncodeToString(v.h.Sum(nil)); got != v.want {
			return n, fmt.Errorf("%w for %q: expected %s, got %s; nothing was installed", ErrChecksumMismatch, v.src, v.want, got)
		}
	}
	return n, err
}

// syncDir makes a rename durable where the OS supports syncing a directory.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
