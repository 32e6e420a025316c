package launch

import (
	"bytes"
	"errors"
	"io/fs"
	"path"
	"path/filepath"

	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// errReadOnly is what kustomize gets when it tries to change the project.
var errReadOnly = errors.New("harmony gives kustomize a read-only view of the project")

// kfs is the filesystem kustomize builds with: the project's tree, read-only, confined to the
// root and capped like every other read of a launch. Paths are absolute (or relative to the
// working directory), as with kustomize's own filesys.MakeFsOnDisk.
type kfs struct{ t *tree }

var _ filesys.FileSystem = kfs{}

func (k kfs) Create(string) (filesys.File, error) { return nil, errReadOnly }
func (k kfs) Mkdir(string) error                  { return errReadOnly }
func (k kfs) MkdirAll(string) error               { return errReadOnly }
func (k kfs) RemoveAll(string) error              { return errReadOnly }
func (k kfs) WriteFile(string, []byte) error      { return errReadOnly }

// name turns a kustomize path into a root-relative one; errors name it relative to the root.
func (k kfs) name(p string) (string, error) {
	return k.t.rel(p)
}

func (k kfs) Open(p string) (filesys.File, error) {
	b, err := k.ReadFile(p)
	if err != nil {
		return nil, err
	}
	name, _ := k.name(p)
	_, st, err := k.t.stat(name)
	if err != nil {
		return nil, err
	}
	return &memFile{Reader: bytes.NewReader(b), info: st}, nil
}

func (k kfs) IsDir(p string) bool {
	name, err := k.name(p)
	return err == nil && k.t.isDir(name)
}

func (k kfs) Exists(p string) bool {
	name, err := k.name(p)
	if err != nil {
		return false
	}
	_, _, err = k.t.stat(name)
	return err == nil
}

func (k kfs) ReadDir(p string) ([]string, error) {
	name, err := k.name(p)
	if err != nil {
		return nil, err
	}
	entries, err := k.t.readDir(name)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		out = append(out, e.Name())
	}
	return out, nil
}

// CleanedAbs splits a path into its folder, with symbolic links resolved inside the root (as
// kustomize's own does with filepath.EvalSymlinks), and the file name when it is not a folder.
func (k kfs) CleanedAbs(p string) (filesys.ConfirmedDir, string, error) {
	name, err := k.name(p)
	if err != nil {
		return "", "", err
	}
	res, st, err := k.t.stat(name)
	if err != nil {
		return "", "", err
	}
	if st.IsDir() {
		return filesys.ConfirmedDir(k.t.abs(res)), "", nil
	}
	return filesys.ConfirmedDir(k.t.abs(path.Dir(res))), path.Base(res), nil
}

func (k kfs) Glob(pattern string) ([]string, error) {
	name, err := k.name(pattern)
	if err != nil {
		return nil, err
	}
	matches, err := fs.Glob(k.t.root.FS(), name)
	if err != nil {
		return nil, err
	}
	for i, m := range matches {
		matches[i] = k.t.abs(m)
	}
	return matches, nil
}

func (k kfs) ReadFile(p string) ([]byte, error) {
	name, err := k.name(p)
	if err != nil {
		return nil, err
	}
	return k.t.readFile(name)
}

func (k kfs) Walk(p string, fn filepath.WalkFunc) error {
	name, err := k.name(p)
	if err != nil {
		return err
	}
	return k.t.walk(name, func(rel string, d fs.DirEntry, err error) error {
		if err != nil {
			return fn(k.t.abs(rel), nil, err)
		}
		info, err := d.Info()
		return fn(k.t.abs(rel), info, err)
	})
}

// memFile is a file kustomize opened: its bytes were read (and capped) already.
type memFile struct {
	*bytes.Reader
	info fs.FileInfo
}

func (f *memFile) Write([]byte) (int, error)  { return 0, errReadOnly }
func (f *memFile) Close() error               { return nil }
func (f *memFile) Stat() (fs.FileInfo, error) { return f.info, nil }
