package installer

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// ErrUnsafeArchive marks an archive entry that would escape the target directory: an absolute
// path, a ".." element, or a link pointing outside.
var ErrUnsafeArchive = errors.New("unsafe archive entry")

// Extract unpacks a .tar.gz/.tgz, .tar.zst or .zip archive into dest, which must not exist yet.
// It unpacks into a temp directory beside dest and renames it into place only when every entry
// was safe and written, so a bad archive leaves nothing behind.
//
// Every entry is written through an os.Root opened on that directory, so paths are resolved
// by the operating system inside it rather than as text: a chain of links that each look
// harmless ("s" → ".", then "t" → "s/..") cannot lead out, a hard link can only link a regular
// file of the archive, and every symlink must resolve to something inside once all entries are
// written.
func Extract(archive, dest string) (err error) {
	if _, err := os.Lstat(dest); err == nil {
		return fmt.Errorf("extract %q: %q already exists", archive, dest)
	}
	parent := filepath.Dir(dest)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("extract %q: %w", archive, err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dest)+".tmp-*")
	if err != nil {
		return fmt.Errorf("extract %q: %w", archive, err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	root, err := os.OpenRoot(tmp)
	if err != nil {
		return fmt.Errorf("extract %q: %w", archive, err)
	}
	x := &extractor{root: root}
	name := strings.ToLower(archive)
	switch {
	case strings.HasSuffix(name, ".tar.gz"), strings.HasSuffix(name, ".tgz"):
		err = x.tar(archive, func(r io.Reader) (io.Reader, func(), error) {
			z, err := gzip.NewReader(r)
			return z, func() { z.Close() }, err
		})
	case strings.HasSuffix(name, ".tar.zst"):
		err = x.tar(archive, func(r io.Reader) (io.Reader, func(), error) {
			z, err := zstd.NewReader(r)
			if err != nil {
				return nil, nil, err
			}
			return z, z.Close, nil
		})
	case strings.HasSuffix(name, ".zip"):
		err = x.zip(archive)
	default:
		err = fmt.Errorf("unknown archive format (want .tar.gz, .tar.zst or .zip)")
	}
	if err == nil {
		err = x.checkLinks()
	}
	root.Close()
	if err != nil {
		return fmt.Errorf("extract %q: %w", archive, err)
	}
	if err = os.Rename(tmp, dest); err != nil {
		return fmt.Errorf("extract %q: %w", archive, err)
	}
	return nil
}

// extractor writes entries inside root and remembers the symlinks it made.
type extractor struct {
	root  *os.Root
	links []string
}

// entryPath checks an entry name as text (no absolute path, no ".." element) and returns it
// relative to the root, in the OS's form. The os.Root then refuses whatever the text check
// cannot see (links).
func entryPath(name string) (string, error) {
	clean := filepath.ToSlash(name)
	if clean == "" || strings.HasPrefix(clean, "/") || filepath.IsAbs(name) || filepath.VolumeName(name) != "" || strings.Contains(clean, `\`) {
		return "", fmt.Errorf("%q: absolute or malformed path: %w", name, ErrUnsafeArchive)
	}
	for _, el := range strings.Split(clean, "/") {
		if el == ".." {
			return "", fmt.Errorf("%q: path climbs out with \"..\": %w", name, ErrUnsafeArchive)
		}
	}
	return filepath.FromSlash(path.Clean(clean)), nil
}

// unsafe wraps an error of the os.Root (a path escaping it) as ErrUnsafeArchive.
func unsafe(what string, err error) error {
	return fmt.Errorf("%s: %v: %w", what, err, ErrUnsafeArchive)
}

// noLinkOnPath refuses to write through a symlink an earlier entry created, even one that stays
// inside: an archive has no reason to do that, and refusing keeps every entry where its name says.
func (x *extractor) noLinkOnPath(rel string) error {
	dir := filepath.Dir(rel)
	if dir == "." {
		return nil
	}
	p := ""
	for _, el := range strings.Split(dir, string(filepath.Separator)) {
		p = filepath.Join(p, el)
		if st, err := x.root.Lstat(p); err == nil && st.Mode()&os.ModeSymlink != 0 {
			return fmt.Errorf("%q: writes through the link %q: %w", filepath.ToSlash(rel), filepath.ToSlash(p), ErrUnsafeArchive)
		}
	}
	return nil
}

func (x *extractor) mkdirParent(rel string) error {
	if dir := filepath.Dir(rel); dir != "." {
		if err := x.root.MkdirAll(dir, 0o755); err != nil {
			return unsafe(fmt.Sprintf("%q", filepath.ToSlash(rel)), err)
		}
	}
	return nil
}

func (x *extractor) dir(rel string) error {
	if err := x.root.MkdirAll(rel, 0o755); err != nil {
		return unsafe(fmt.Sprintf("%q", filepath.ToSlash(rel)), err)
	}
	return nil
}

func (x *extractor) file(rel string, r io.Reader, perm os.FileMode) error {
	if err := x.mkdirParent(rel); err != nil {
		return err
	}
	perm &^= 0o022 // nothing harmony writes is group- or world-writable
	if perm == 0 {
		perm = 0o644
	}
	f, err := x.root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// symlink creates rel → target. A target that is absolute, or that resolves outside the root
// given what is already written, is refused at once; checkLinks checks the rest at the end.
func (x *extractor) symlink(rel, target string) error {
	what := fmt.Sprintf("link %q → %q", filepath.ToSlash(rel), target)
	if target == "" || filepath.IsAbs(target) || strings.HasPrefix(target, "/") || strings.HasPrefix(target, `\`) || filepath.VolumeName(target) != "" {
		return fmt.Errorf("%s: absolute or empty target: %w", what, ErrUnsafeArchive)
	}
	if err := x.mkdirParent(rel); err != nil {
		return err
	}
	if err := x.root.Symlink(target, rel); err != nil {
		return err
	}
	x.links = append(x.links, rel)
	if _, err := x.root.Stat(rel); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return unsafe(what+": points outside the archive", err)
	}
	return nil
}

// hardlink links rel to the archive's regular file src, resolved inside the root.
func (x *extractor) hardlink(rel, src string) error {
	what := fmt.Sprintf("hard link %q → %q", filepath.ToSlash(rel), filepath.ToSlash(src))
	st, err := x.root.Lstat(src)
	if err != nil {
		return unsafe(what, err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file of the archive: %w", what, ErrUnsafeArchive)
	}
	if err := x.mkdirParent(rel); err != nil {
		return err
	}
	if err := x.root.Link(src, rel); err != nil {
		return unsafe(what, err)
	}
	return nil
}

// checkLinks makes sure, once every entry is written, that each symlink resolves to something
// inside the root: a link that only dangled while checked could otherwise point out now.
func (x *extractor) checkLinks() error {
	for _, rel := range x.links {
		if _, err := x.root.Stat(rel); err != nil {
			target, _ := x.root.Readlink(rel)
			return unsafe(fmt.Sprintf("link %q → %q: does not resolve inside the archive", filepath.ToSlash(rel), target), err)
		}
	}
	return nil
}

func (x *extractor) tar(archive string, decompress func(io.Reader) (io.Reader, func(), error)) error {
	f, err := os.Open(archive)
	if err != nil {
		return err
	}
	defer f.Close()
	r, closeFn, err := decompress(f)
	if err != nil {
		return err
	}
	defer closeFn()
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		rel, err := entryPath(hdr.Name)
		if err != nil {
			return err
		}
		if err := x.noLinkOnPath(rel); err != nil {
			return err
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			err = x.dir(rel)
		case tar.TypeReg:
			err = x.file(rel, tr, hdr.FileInfo().Mode().Perm())
		case tar.TypeSymlink:
			err = x.symlink(rel, hdr.Linkname)
		case tar.TypeLink:
			var src string
			if src, err = entryPath(hdr.Linkname); err == nil {
				err = x.hardlink(rel, src)
			}
		default:
			err = fmt.Errorf("%q: unsupported entry type %q: %w", hdr.Name, hdr.Typeflag, ErrUnsafeArchive)
		}
		if err != nil {
			return err
		}
	}
}

func (x *extractor) zip(archive string) error {
	zr, err := zip.OpenReader(archive)
	if err != nil {
		return err
	}
	defer zr.Close()
	for _, zf := range zr.File {
		rel, err := entryPath(zf.Name)
		if err != nil {
			return err
		}
		if err := x.noLinkOnPath(rel); err != nil {
			return err
		}
		mode := zf.Mode()
		switch {
		case mode.IsDir():
			err = x.dir(rel)
		case mode&os.ModeSymlink != 0:
			var rc io.ReadCloser
			if rc, err = zf.Open(); err != nil {
				return err
			}
			link, rerr := io.ReadAll(io.LimitReader(rc, 4096))
			rc.Close()
			if rerr != nil {
				return rerr
			}
			err = x.symlink(rel, string(link))
		case mode.IsRegular():
			var rc io.ReadCloser
			if rc, err = zf.Open(); err != nil {
				return err
			}
			err = x.file(rel, rc, mode.Perm())
			rc.Close()
		default:
			err = fmt.Errorf("%q: unsupported entry mode %v: %w", zf.Name, mode, ErrUnsafeArchive)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
