package install_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// scripts/test reuses dist/ while scripts/snapshot-inputs prints the same digest: it must
// change with every file goreleaser sees and never fail on a work tree a developer has in hand,
// such as a tracked file deleted and the deletion not yet staged (sha256sum of a missing file
// failed the whole scripts/test run).
func TestSnapshotInputs(t *testing.T) {
	t.Parallel()
	script, err := filepath.Abs("scripts/snapshot-inputs")
	if err != nil {
		t.Fatal(err)
	}
	repo, keys := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(keys, "test.pub"), []byte("untrusted comment: test\nRWQ\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	write := func(name, text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(repo, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@t.invalid", "-c", "commit.gpgsign=false"}, args...)...)
		cmd.Dir = repo
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	digest := func(what string) string {
		t.Helper()
		cmd := exec.Command(script, keys)
		cmd.Dir = repo
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: snapshot-inputs: %v\n%s", what, err, stderr.String())
		}
		d := strings.TrimSpace(string(out))
		if len(d) != 64 {
			t.Fatalf("%s: snapshot-inputs printed %q, want a SHA-256", what, out)
		}
		return d
	}
	git("init", "-q")
	write("a.go", "package a\n")
	write("b.go", "package a // b\n")
	write(".gitignore", "dist/\n")
	git("add", ".")
	git("commit", "-q", "-m", "init")
	clean := digest("a clean checkout")
	if d := digest("the same checkout again"); d != clean {
		t.Fatalf("the same checkout gave %s, then %s", clean, d)
	}
	seen := map[string]string{clean: "a clean checkout"}
	differs := func(what string) {
		t.Helper()
		d := digest(what)
		if prev, ok := seen[d]; ok {
			t.Fatalf("%s: same digest as %s", what, prev)
		}
		seen[d] = what
	}

	if err := os.Remove(filepath.Join(repo, "b.go")); err != nil {
		t.Fatal(err)
	}
	differs("a tracked file deleted, not staged")
	write("b.go", "package a // b\n")
	if d := digest("the file back"); d != clean {
		t.Fatal("the deleted file put back gave another digest")
	}
	write("b.go", "package a // changed\n")
	differs("a tracked file changed")
	write("b.go", "package a // b\n")
	write("c.go", "package a // new\n")
	differs("an untracked file")
	if err := os.Remove(filepath.Join(repo, "c.go")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("gone", filepath.Join(repo, "link")); err != nil {
		t.Fatal(err)
	}
	differs("an untracked link to nothing")
	if err := os.Remove(filepath.Join(repo, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(repo, "dist"), 0o755); err != nil {
		t.Fatal(err)
	}
	write("dist/out", "built\n")
	if d := digest("an ignored file"); d != clean {
		t.Fatal("a file .gitignore excludes changed the digest")
	}
}
