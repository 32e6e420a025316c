package launch_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/NationTech/harmony-agent/launch"
)

func TestSanitize(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"plain text", "plain text"},
		{"\x1b]0;owned\x07title\x1b[2Jclear", "]0;ownedtitle[2Jclear"},
		{"cr\roverwrite\nnext\tline", "cr overwrite next line"},
		{"c1 \u009b31m csi", "c1 31m csi"},
		{"bidi \u202eevil", "bidi evil"},
		{"bad utf8 \xff", "bad utf8 \ufffd"},
		{"ünïcödé ✓", "ünïcödé ✓"},
	}
	for _, tt := range tests {
		if got := launch.Sanitize(tt.in); got != tt.want {
			t.Errorf("Sanitize(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	long := launch.Sanitize(strings.Repeat("é", 5000))
	if len([]rune(long)) > launch.MaxLineRunes+1 || !strings.HasSuffix(long, "…") {
		t.Errorf("a long line is %d runes, want it cut at %d with …", len([]rune(long)), launch.MaxLineRunes)
	}
	if bytes.ContainsAny([]byte(launch.Sanitize(string(rune(0x1b))+"[31m")), "\x1b") {
		t.Error("escape kept")
	}
}
