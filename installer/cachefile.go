package installer

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
)

// errNotRegular marks a path that is a link, a directory or a device where harmony expects a
// regular file it wrote itself.
var errNotRegular = errors.New("not a regular file")

// openNoFollow opens path without following a symlink at its last element (O_NOFOLLOW where the
// OS has it, else a check with Lstat first) and refuses anything but a regular file.
func openNoFollow(path string, flag int, perm os.FileMode) (*os.File, error) {
	if oNoFollow == 0 {
		if st, err := os.Lstat(path); err == nil && !st.Mode().IsRegular() {
			return nil, fmt.Errorf("open %q: %w", path, errNotRegular)
		}
	}
	f, err := os.OpenFile(path, flag|oNoFollow, perm)
	if err != nil {
		if st, lerr := os.Lstat(path); lerr == nil && !st.Mode().IsRegular() {
			return nil, fmt.Errorf("open %q: %w", path, errNotRegular)
		}
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("open %q: %w", path, errNotRegular)
	}
	return f, nil
}

// removeIfNotRegular deletes whatever other than a regular file sits at path (a planted link,
// say), so that what harmony writes there next is a file of its own.
func removeIfNotRegular(path string) error {
	st, err := os.Lstat(path)
	if err != nil || st.Mode().IsRegular() {
		return nil
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("remove %q (%v, where harmony keeps a file of its own): %w", path, st.Mode().Type(), err)
	}
	return nil
}

// hashFile returns the SHA-256 of the regular file at path, read without following a link, and
// refuses one larger than max bytes (when max > 0).
func hashFile(path string, max int64) (string, error) {
	f, err := openNoFollow(path, os.O_RDONLY, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	var r io.Reader = f
	if max > 0 {
		r = io.LimitReader(f, max+1)
	}
	n, err := io.Copy(h, r)
	if err != nil {
		return "", err
	}
	if max > 0 && n > max {
		return "", fmt.Errorf("%q: %w", path, ErrTooLarge)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
