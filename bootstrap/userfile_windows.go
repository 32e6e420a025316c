package bootstrap

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/NationTech/harmony-agent/installer"
)

// InvokingUser is nil here: there is no sudo re-run on this system.
func InvokingUser() (*User, error) { return nil, nil }

func ownHome() string { return "" }

type ownedDir struct{ path string }

func (d *ownedDir) Close() error { return nil }

func openKubeconfigDir(path string, _ *User, create bool) (*ownedDir, error) {
	dir := filepath.Dir(path)
	if create {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, err
		}
	} else if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return &ownedDir{path: dir}, nil
}

func readIn(d *ownedDir, name, path string, _ *User) ([]byte, fileMeta, error) {
	f, err := os.Open(filepath.Join(d.path, name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fileMeta{}, nil
	}
	if err != nil {
		return nil, fileMeta{}, fmt.Errorf("read %q: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fileMeta{}, fmt.Errorf("read %q: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fileMeta{}, refuse(fmt.Sprintf("kubeconfig %q is not a regular file", path), "point KUBECONFIG at a regular file")
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fileMeta{}, fmt.Errorf("read %q: %w", path, err)
	}
	return data, fileMeta{exists: true, mode: st.Mode().Perm(), uid: -1}, nil
}

func writeIn(d *ownedDir, name string, data []byte, meta fileMeta) error {
	return installer.WriteFileAtomic(filepath.Join(d.path, name), bytes.NewReader(data), meta.mode)
}
