package colour_test

import (
	"bytes"
	"testing"

	"github.com/NationTech/harmony-agent/internal/colour"
)

func TestColourOnlyWhenAskedAndAllowed(t *testing.T) {
	for _, tc := range []struct {
		noColor, force string
		want           string
	}{
		{want: "ok"}, // a buffer is not a terminal
		{force: "1", want: "\x1b[32mok\x1b[0m"},
		{force: "0", want: "ok"},
		{noColor: "1", force: "1", want: "ok"},
	} {
		t.Setenv("NO_COLOR", tc.noColor)
		t.Setenv("CLICOLOR_FORCE", tc.force)
		if got := colour.For(&bytes.Buffer{}).OK("ok"); got != tc.want {
			t.Errorf("NO_COLOR=%q CLICOLOR_FORCE=%q: %q, want %q", tc.noColor, tc.force, got, tc.want)
		}
	}
	p := colour.Painter(true)
	if p.Fail("failed") != "\x1b[31mfailed\x1b[0m" || p.Warn("warning:") != "\x1b[33mwarning:\x1b[0m" {
		t.Fatal("wrong colours")
	}
}
