package launch

import (
	"strings"
	"testing"
)

// A failing container's log is written by the repository's image: printed, it must be inert.
func TestLogLinesAreInert(t *testing.T) {
	t.Parallel()
	raw := "starting\n\x1b]0;owned\x07\x1b[2J\x1b[1;1Hfake prompt $ \x1b[8mhidden\r\n" + strings.Repeat("A", 10000) + "\n"
	lines := logLines("web-1", "app", []byte(raw))
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3: %q", len(lines), lines)
	}
	for _, l := range lines {
		if strings.ContainsAny(l, "\x1b\x07\r\n") {
			t.Errorf("line keeps control characters: %q", l)
		}
		if !strings.HasPrefix(l, "log web-1/app: ") {
			t.Errorf("line %q does not say where it comes from", l)
		}
	}
	if !strings.Contains(lines[1], "owned") || !strings.Contains(lines[1], "fake prompt") {
		t.Errorf("text around the escapes is lost: %q", lines[1])
	}
	if n := len([]rune(lines[2])); n > MaxLineRunes+1 {
		t.Errorf("a 10000-character line is printed with %d characters", n)
	}
}
