package installer_test

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/NationTech/harmony-agent/installer"
)

type entry struct {
	name, body, link string
	// hard names the earlier entry a hard link points to (tar only).
	hard string
	dir  bool
}

func writeTar(t *testing.T, path string, entries []entry) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := &tar.Header{Name: e.name, Mode: 0o755, Size: int64(len(e.body)), Typeflag: tar.TypeReg}
		switch {
		case e.dir:
			hdr.Typeflag, hdr.Size = tar.TypeDir, 0
		case e.link != "":
			hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeSymlink, e.link, 0
		case e.hard != "":
			hdr.Typeflag, hdr.Linkname, hdr.Size = tar.TypeLink, e.hard, 0
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if filepath.Ext(path) == ".zst" {
		zw, _ := zstd.NewWriter(&out)
		zw.Write(buf.Bytes())
		zw.Close()
	} else {
		gw := gzip.NewWriter(&out)
		gw.Write(buf.Bytes())
		gw.Close()
	}
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeZip(t *testing.T, path string, entries []entry) {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name}
		body := e.body
		switch {
		case e.dir:
			h.Name += "/"
			h.SetMode(os.ModeDir | 0o755)
		case e.link != "":
			h.SetMode(os.ModeSymlink | 0o777)
			body = e.link
		default:
			h.SetMode(0o755)
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, body)
	}
	zw.Close()
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestExtract(t *testing.T) {
	t.Parallel()
	good := []entry{{name: "bin", dir: true}, {name: "bin/harmony", body: "binary"}, {name: "README.md", body: "readme"}, {name: "bin/h", link: "harmony"}}
	unsafe := map[string][]entry{
		"absolute path":          {{name: "/etc/evil", body: "x"}},
		"dot-dot":                {{name: "../evil", body: "x"}},
		"dot-dot inside":         {{name: "a/../../evil", body: "x"}},
		"absolute link":          {{name: "l", link: "/etc/passwd"}},
		"link climbing out":      {{name: "a/l", link: "../../evil"}},
		"write through a link":   {{name: "d", link: "."}, {name: "d/x", body: "x"}},
		"link to a dir, escaped": {{name: "sub", dir: true}, {name: "sub/up", link: ".."}, {name: "sub/up/evil", body: "x"}},
	}
	for _, ext := range []string{".tar.gz", ".tar.zst", ".zip"} {
		write := writeTar
		if ext == ".zip" {
			write = writeZip
		}
		t.Run(ext, func(t *testing.T) {
			dir := t.TempDir()
			archive := filepath.Join(dir, "good"+ext)
			write(t, archive, good)
			dest := filepath.Join(dir, "out")
			if err := installer.Extract(archive, dest); err != nil {
				t.Fatal(err)
			}
			mustContent(t, filepath.Join(dest, "bin", "harmony"), []byte("binary"))
			mustContent(t, filepath.Join(dest, "bin", "h"), []byte("binary"))
			if err := installer.Extract(archive, dest); err == nil {
				t.Fatal("extract over an existing directory succeeded")
			}
			for name, entries := range unsafe {
				t.Run(name, func(t *testing.T) {
					archive := filepath.Join(t.TempDir(), "bad"+ext)
					write(t, archive, entries)
					parent := t.TempDir()
					dest := filepath.Join(parent, "out")
					err := installer.Extract(archive, dest)
					if !errors.Is(err, installer.ErrUnsafeArchive) {
						t.Fatalf("error %v, want ErrUnsafeArchive", err)
					}
					if left, _ := os.ReadDir(parent); len(left) != 0 {
						t.Fatalf("a refused archive left %v behind", left)
					}
					if _, err := os.Lstat(filepath.Join(filepath.Dir(parent), "evil")); err == nil {
						t.Fatal("an entry escaped the target")
					}
				})
			}
		})
	}
}

// TestExtractSlipThroughLinkChains is the "slip" threat with links: each link's text looks
// harmless ("." and "s/.."), but resolved one after the other they lead out of the destination.
// A hard link through such a chain would link a file outside (here a stand-in for /etc/shadow)
// into the tree, and a symlink would leave a door out for whoever reads the tree later.
func TestExtractSlipThroughLinkChains(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		entries []entry
		zip     bool
	}{
		"symlink chain out (tar)":            {entries: []entry{{name: "s", link: "."}, {name: "t", link: "s/.."}}},
		"symlink chain out (zip)":            {entries: []entry{{name: "s", link: "."}, {name: "t", link: "s/.."}}, zip: true},
		"chain built in reverse order (tar)": {entries: []entry{{name: "t", link: "s/.."}, {name: "s", link: "."}}},
		"chain built in reverse order (zip)": {entries: []entry{{name: "t", link: "s/.."}, {name: "s", link: "."}}, zip: true},
		"deeper chain (tar)":                 {entries: []entry{{name: "a", dir: true}, {name: "a/s", link: ".."}, {name: "t", link: "a/s/.."}}},
		"hard link through the chain":        {entries: []entry{{name: "s", link: "."}, {name: "t", link: "s/.."}, {name: "h", hard: "t/victim"}}},
		"hard link to a symlink's target":    {entries: []entry{{name: "s", link: "."}, {name: "t", link: "s/.."}, {name: "h", hard: "t"}}},
		"dangling link (zip)":                {entries: []entry{{name: "d", link: "nowhere/.."}}, zip: true},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			outside := t.TempDir()
			victim := filepath.Join(outside, "victim")
			if err := os.WriteFile(victim, []byte("secret outside the destination"), 0o600); err != nil {
				t.Fatal(err)
			}
			ext, write := ".tar.gz", writeTar
			if tt.zip {
				ext, write = ".zip", writeZip
			}
			archive := filepath.Join(t.TempDir(), "bad"+ext)
			write(t, archive, tt.entries)
			// The destination sits right in the directory holding the victim, so "s/.." from
			// the temporary extraction directory is that directory.
			dest := filepath.Join(outside, "out")
			err := installer.Extract(archive, dest)
			var st syscallStat
			if !errors.Is(err, installer.ErrUnsafeArchive) {
				t.Fatalf("error %v, want ErrUnsafeArchive", err)
			}
			left, _ := os.ReadDir(outside)
			if len(left) != 1 || left[0].Name() != "victim" {
				t.Fatalf("a refused archive left %v behind", left)
			}
			if links := st.nlink(t, victim); links != 1 {
				t.Fatalf("the outside file has %d links: it was linked into the archive", links)
			}
		})
	}
}

type failingReader struct{ after int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.after <= 0 {
		return 0, errors.New("disk on fire")
	}
	n := min(len(p), f.after)
	f.after -= n
	return n, nil
}

func TestWriteFileAtomic(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "k3s")
	if err := installer.WriteFileAtomic(path, bytes.NewReader([]byte("v1")), 0o755); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o755 {
		t.Fatalf("mode %v, err %v", st.Mode(), err)
	}
	if err := installer.WriteFileAtomic(path, &failingReader{after: 10}, 0o755); err == nil {
		t.Fatal("a failing write succeeded")
	}
	mustContent(t, path, []byte("v1"))
	if left, _ := os.ReadDir(filepath.Join(dir, "sub")); len(left) != 1 {
		t.Fatalf("temp files left behind: %v", left)
	}
}
