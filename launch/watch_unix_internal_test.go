//go:build unix

package launch

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// A hostile .gitignore (a FIFO, a link to an endless device or out of the repository) neither
// blocks the watch nor is read: its patterns are none.
func TestGitignoreHostile(t *testing.T) {
	for _, c := range []struct {
		name string
		make func(p string) error
	}{
		{"fifo", func(p string) error { return syscall.Mkfifo(p, 0o644) }},
		{"urandom", func(p string) error { return os.Symlink("/dev/urandom", p) }},
		{"outside", func(p string) error { return os.Symlink("/etc/hostname", p) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			if err := c.make(filepath.Join(root, ".gitignore")); err != nil {
				t.Skip(err)
			}
			done := make(chan []string, 1)
			go func() { done <- gitignorePatterns(root) }()
			select {
			case got := <-done:
				if len(got) != 0 {
					t.Fatalf("patterns %q from a .gitignore that is no regular file of the repository", got)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("reading .gitignore did not return")
			}
		})
	}
	// A regular one is read, within its caps.
	root := t.TempDir()
	big := make([]byte, 0, 2*maxGitignore)
	for len(big) < 2*maxGitignore {
		big = append(big, "build\n"...)
	}
	if err := os.WriteFile(filepath.Join(root, ".gitignore"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	if got := gitignorePatterns(root); len(got) == 0 || len(got) > maxIgnorePatterns+1 {
		t.Fatalf("%d patterns", len(got))
	}
}
