package installer

import (
	"archive/tar"
	"archive/zip"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
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
	name := strings.ToLower(archive)
	switch {
	case strings.HasSuffix(name, ".tar.gz"), strings.HasSuffix(name, ".tgz"):
		err = extractTar(archive, tmp, func(r io.Reader) (io.Reader, func(), error) {
			z, err := gzip.NewReader(r)
			return z, func() { z.Close() }, err
		})
	case strings.HasSuffix(name, ".tar.zst"):
		err = extractTar(archive, tmp, func(r io.Reader) (io.Reader, func(), error) {
			z, err := zstd.NewReader(r)
			if err != nil {
				return nil, nil, err
			}
			return z, z.Close, nil
		})
	case strings.HasSuffix(name, ".zip"):
		err = extractZip(archive, tmp)
	default:
		err = fmt.Errorf("unknown archive format (want .tar.gz, .tar.zst or .zip)")
	}
	if err != nil {
		return fmt.Errorf("extract %q: %w", archive, err)
	}
	if err = os.Rename(tmp, dest); err != nil {
		return fmt.Errorf("extract %q: %w", archive, err)
	}
	return nil
}

// safeTarget returns where entry name lands under root, refusing anything that escapes it.
func safeTarget(root, name string) (string, error) {
	clean := filepath.ToSlash(name)
	if clean == "" || strings.HasPrefix(clean, "/") || filepath.IsAbs(name) || filepath.VolumeName(name) != "" || strings.Contains(clean, `\`) {
		return "", fmt.Errorf("%q: absolute or malformed path: %w", name, ErrUnsafeArchive)
	}
	for _, el := range strings.Split(clean, "/") {
		if el == ".." {
			return "", fmt.Errorf("%q: path climbs out with \"..\": %w", name, ErrUnsafeArchive)
		}
	}
	return filepath.Join(root, filepath.FromSlash(clean)), nil
}

// safeLink checks that a symlink at target pointing to linkname stays under root.
func safeLink(root, target, linkname string) error {
	if filepath.IsAbs(linkname) || strings.HasPrefix(linkname, "/") || strings.HasPrefix(linkname, `\`) {
		return fmt.Errorf("link to %q: absolute target: %w", linkname, ErrUnsafeArchive)
	}
	resolved := filepath.Join(filepath.Dir(target), filepath.FromSlash(linkname))
	rel, err := filepath.Rel(root, resolved)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return fmt.Errorf("link to %q: points outside the archive: %w", linkname, ErrUnsafeArchive)
	}
	return nil
}

// noLinkOnPath refuses to write through a symlink an earlier entry created (a link to a dir
// followed by a file "link/x" would otherwise escape).
func noLinkOnPath(root, target string) error {
	rel, err := filepath.Rel(root, filepath.Dir(target))
	if err != nil || rel == "." {
		return err
	}
	p := root
	for _, el := range strings.Split(rel, string(filepath.Separator)) {
		p = filepath.Join(p, el)
		if st, err := os.Lstat(p); err == nil && st.Mode()&os.ModeSymlink != 0 {
			return fmt.Errorf("%q: writes through a link: %w", target, ErrUnsafeArchive)
		}
	}
	return nil
}

func extractTar(archive, root string, decompress func(io.Reader) (io.Reader, func(), error)) error {
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
		target, err := safeTarget(root, hdr.Name)
		if err != nil {
			return err
		}
		if err := noLinkOnPath(root, target); err != nil {
			return err
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := writeEntry(target, tr, hdr.FileInfo().Mode().Perm()); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := safeLink(root, target, hdr.Linkname); err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			if err := os.Symlink(hdr.Linkname, target); err != nil {
				return err
			}
		case tar.TypeLink:
			src, err := safeTarget(root, hdr.Linkname)
			if err != nil {
				return err
			}
			if err := os.Link(src, target); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%q: unsupported entry type %q: %w", hdr.Name, hdr.Typeflag, ErrUnsafeArchive)
		}
	}
}

func extractZip(archive, root string) error {
	zr, err := zip.OpenReader(archive)
	if err != nil {
		return err
	}
	defer zr.Close()
	for _, zf := range zr.File {
		target, err := safeTarget(root, zf.Name)
		if err != nil {
			return err
		}
		if err := noLinkOnPath(root, target); err != nil {
			return err
		}
		mode := zf.Mode()
		switch {
		case mode.IsDir():
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case mode&os.ModeSymlink != 0:
			rc, err := zf.Open()
			if err != nil {
				return err
			}
			link, err := io.ReadAll(io.LimitReader(rc, 4096))
			rc.Close()
			if err != nil {
				return err
			}
			if err := safeLink(root, target, string(link)); err != nil {
				return err
			}
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return err
			}
			if err := os.Symlink(string(link), target); err != nil {
				return err
			}
		case mode.IsRegular():
			rc, err := zf.Open()
			if err != nil {
				return err
			}
			err = writeEntry(target, rc, mode.Perm())
			rc.Close()
			if err != nil {
				return err
			}
		default:
			return fmt.Errorf("%q: unsupported entry mode %v: %w", zf.Name, mode, ErrUnsafeArchive)
		}
	}
	return nil
}

func writeEntry(target string, r io.Reader, perm os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	perm &^= 0o022 // nothing harmony writes is group- or world-writable
	if perm == 0 {
		perm = 0o644
	}
	f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
