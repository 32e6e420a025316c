package launch

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Size caps on what a launch reads from a repository, checked before reading.
const (
	// DefaultMaxFileSize caps one file (a manifest, a kustomization, a file a generator reads).
	DefaultMaxFileSize = 32 << 20
	// DefaultMaxTotalSize caps everything one launch reads.
	DefaultMaxTotalSize = 256 << 20
)

var (
	// ErrOutside means a path or a symbolic link leads outside the project: it is not read.
	ErrOutside = errors.New("outside the project")
	// ErrNotRegular means a path is not a regular file (a FIFO, a device, a socket): it is not read.
	ErrNotRegular = errors.New("not a regular file")
	// ErrTooLarge means a file, or everything a launch reads, is over its size cap.
	ErrTooLarge = errors.New("too large")
)

// escapeError is a path that leads outside the project, or the symbolic link that does: Path
// as it was given (a link: root-relative), Link where the link points ("" for a path).
// errors.Is(err, ErrOutside) holds, through kustomize's errors too, so the launch can say
// which path left the project whatever read it.
type escapeError struct {
	Path string
	Link string
}

func (e *escapeError) Error() string {
	if e.Link != "" {
		return fmt.Sprintf("%q links to %q, %v", e.Path, e.Link, ErrOutside)
	}
	return fmt.Sprintf("%q is %v", e.Path, ErrOutside)
}

func (e *escapeError) Is(target error) bool { return target == ErrOutside }

// tree reads a project's files through os.Root: nothing outside the root is reached (paths with
// .. and symbolic links that leave it are refused), only regular files are read (a FIFO would
// block, a device never ends), each file is capped, and so is the total of one launch.
type tree struct {
	dir     string // the root as an absolute path
	real    string // the same with symbolic links resolved
	root    *os.Root
	maxFile int64
	budget  *budget

	// What --allow-remote fetched, seen at virtual paths inside the tree (root-relative,
	// symbolic links resolved): folders (git checkouts, each its own confined tree) and
	// files (HTTP resources, kustomizations rewritten to use local copies).
	mounts  map[string]*tree
	overlay map[string][]byte
	label   string   // for a mount: the remote reference it holds
	cleanup []func() // temporary folders to remove on Close
}

// budget is what one launch may still read, shared by the project and its fetched remotes.
type budget struct {
	mu       sync.Mutex
	read     int64
	maxTotal int64 // 0: no total cap
}

func openTree(dir string, maxFile, maxTotal int64) (*tree, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	real, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(abs)
	if err != nil {
		return nil, err
	}
	if maxFile <= 0 {
		maxFile = DefaultMaxFileSize
	}
	return &tree{dir: abs, real: real, root: root, maxFile: maxFile, budget: &budget{maxTotal: maxTotal}}, nil
}

func (t *tree) Close() error {
	for _, m := range t.mounts {
		m.Close()
	}
	for _, f := range t.cleanup {
		f()
	}
	return t.root.Close()
}

// route finds the tree holding a resolved root-relative name: the mount it is in, if any, and
// the name inside that mount.
func (t *tree) route(res string) (*tree, string) {
	for key, m := range t.mounts {
		if res == key {
			return m.route(".")
		}
		if strings.HasPrefix(res, key+"/") {
			return m.route(strings.TrimPrefix(res, key+"/"))
		}
	}
	return t, res
}

// virtual is a fetched file's FileInfo.
type virtual struct {
	name string
	size int64
}

func (v virtual) Name() string       { return v.name }
func (v virtual) Size() int64        { return v.size }
func (v virtual) Mode() fs.FileMode  { return 0o444 }
func (v virtual) ModTime() time.Time { return time.Time{} }
func (v virtual) IsDir() bool        { return false }
func (v virtual) Sys() any           { return nil }

// rel turns a path (absolute, or relative to the working directory) into a slash-separated path
// relative to the root; a path outside the root is refused.
func (t *tree) rel(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	for _, base := range []string{t.dir, t.real} {
		if r, err := filepath.Rel(base, abs); err == nil && r != ".." && !strings.HasPrefix(r, ".."+string(filepath.Separator)) && !filepath.IsAbs(r) {
			return filepath.ToSlash(r), nil
		}
	}
	return "", &escapeError{Path: p}
}

// abs is the absolute path of a root-relative name.
func (t *tree) abs(name string) string { return filepath.Join(t.dir, filepath.FromSlash(name)) }

// resolve follows the symbolic links in name (root-relative) inside the root and returns the
// path they lead to; a link that leaves the root (absolute, or with too many ..) is refused,
// naming the link and where it points.
func (t *tree) resolve(name string) (string, error) {
	todo := strings.Split(path.Clean(name), "/")
	var done []string
	for links := 0; len(todo) > 0; {
		part := todo[0]
		todo = todo[1:]
		switch part {
		case "", ".":
			continue
		case "..":
			if len(done) == 0 {
				return "", &escapeError{Path: name}
			}
			done = done[:len(done)-1]
			continue
		}
		cur := path.Join(append(done, part)...)
		if m, ok := t.mounts[cur]; ok {
			sub, err := m.resolve(path.Join(append([]string{"."}, todo...)...))
			if err != nil {
				return "", fmt.Errorf("%s: %w", m.label, err)
			}
			return path.Join(cur, sub), nil
		}
		if _, ok := t.overlay[cur]; ok {
			done = append(done, part)
			continue
		}
		st, err := t.root.Lstat(filepath.FromSlash(cur))
		if err != nil {
			return "", err
		}
		if st.Mode()&fs.ModeSymlink == 0 {
			done = append(done, part)
			continue
		}
		if links++; links > 40 {
			return "", fmt.Errorf("%q: too many levels of symbolic links", name)
		}
		target, err := t.root.Readlink(filepath.FromSlash(cur))
		if err != nil {
			return "", err
		}
		target = filepath.ToSlash(target)
		if filepath.IsAbs(target) || path.IsAbs(target) || filepath.VolumeName(target) != "" {
			return "", &escapeError{Path: cur, Link: target}
		}
		// The link's target is relative to the folder holding the link.
		depth := len(done)
		for _, p := range strings.Split(target, "/") {
			if p == ".." {
				if depth--; depth < 0 {
					return "", &escapeError{Path: cur, Link: target}
				}
			} else if p != "" && p != "." {
				depth++
			}
		}
		todo = append(strings.Split(target, "/"), todo...)
	}
	if len(done) == 0 {
		return ".", nil
	}
	return path.Join(done...), nil
}

// stat resolves name (root-relative) and stats what it leads to.
func (t *tree) stat(name string) (string, fs.FileInfo, error) {
	res, err := t.resolve(name)
	if err != nil {
		return "", nil, err
	}
	m, sub := t.route(res)
	if b, ok := m.overlay[sub]; ok {
		return res, virtual{path.Base(sub), int64(len(b))}, nil
	}
	st, err := m.root.Stat(filepath.FromSlash(sub))
	return res, st, err
}

func (t *tree) isDir(name string) bool {
	_, st, err := t.stat(name)
	return err == nil && st.IsDir()
}

func (t *tree) isFile(name string) bool {
	_, st, err := t.stat(name)
	return err == nil && st.Mode().IsRegular()
}

// readFile reads a regular file (root-relative name), refusing anything else and anything over
// the caps before reading it. Errors name the file as given.
func (t *tree) readFile(name string) ([]byte, error) {
	return t.readFileMax(name, t.maxFile)
}

func (t *tree) readFileMax(name string, max int64) ([]byte, error) {
	res, err := t.resolve(name)
	if err != nil {
		return nil, fmt.Errorf("read %q: %w", name, err)
	}
	if m, sub := t.route(res); m != t {
		b, err := m.readFileMax(sub, max)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m.label, err)
		}
		return b, nil
	}
	if b, ok := t.overlay[res]; ok {
		return b, t.charge(name, int64(len(b)))
	}
	// O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused just below).
	f, err := t.root.OpenFile(filepath.FromSlash(res), os.O_RDONLY|openNonblock, 0)
	if err != nil {
		return nil, fmt.Errorf("read %q: %w", name, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read %q: %w", name, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("read %q: %w (%s)", name, ErrNotRegular, fileType(st.Mode()))
	}
	if st.Size() > max {
		return nil, fmt.Errorf("read %q: %d bytes, larger than the limit of %s per file: %w", name, st.Size(), size(max), ErrTooLarge)
	}
	if err := t.charge(name, st.Size()); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("read %q: %w", name, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("read %q: it grew larger than the limit of %s per file while being read: %w", name, size(max), ErrTooLarge)
	}
	if extra := int64(len(b)) - st.Size(); extra > 0 {
		if err := t.charge(name, extra); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// charge counts n bytes of name against the launch's total cap.
func (t *tree) charge(name string, n int64) error {
	b := t.budget
	b.mu.Lock()
	defer b.mu.Unlock()
	b.read += n
	if b.maxTotal > 0 && b.read > b.maxTotal {
		return fmt.Errorf("read %q: the files read so far are larger than %s, the limit per launch: %w", name, size(b.maxTotal), ErrTooLarge)
	}
	return nil
}

// readDir lists a folder (root-relative) inside the root.
func (t *tree) readDir(name string) ([]fs.DirEntry, error) {
	res, err := t.resolve(name)
	if err != nil {
		return nil, err
	}
	m, sub := t.route(res)
	return fs.ReadDir(m.root.FS(), sub)
}

// walk walks a folder (root-relative) without following symbolic links; fn receives
// root-relative slash-separated paths.
func (t *tree) walk(name string, fn fs.WalkDirFunc) error {
	res, err := t.resolve(name)
	if err != nil {
		return err
	}
	m, sub := t.route(res)
	if m == t {
		return fs.WalkDir(t.root.FS(), res, fn)
	}
	return fs.WalkDir(m.root.FS(), sub, func(p string, d fs.DirEntry, err error) error {
		rel := strings.TrimPrefix(strings.TrimPrefix(p, sub), "/")
		if sub == "." && p != "." {
			rel = p
		}
		return fn(path.Join(res, rel), d, err)
	})
}

func fileType(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m.IsDir():
		return "a folder"
	}
	return "mode " + m.String()
}

func size(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}
