package launch

import (
	"strings"
	"unicode/utf8"

	"github.com/NationTech/harmony-agent/internal/hint"
)

// MaxLineRunes is how much of one line of cluster text (a log line, an event, a condition
// message) launch prints; the rest is cut and marked with "…".
const MaxLineRunes = 512

// Sanitize makes text that comes from the cluster safe to print on a terminal: line breaks and
// tabs become spaces, other control characters (C0, DEL, C1: escape sequences lose their
// introducer) and bidirectional overrides are removed, invalid UTF-8 becomes U+FFFD, and the
// line is cut after MaxLineRunes runes. A container's logs and events are written by whatever
// image a repository names; they must not drive the user's terminal.
func Sanitize(s string) string {
	var b strings.Builder
	n := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case r == '\n' || r == '\r' || r == '\t':
			r = ' '
		case hint.Invisible(r):
			continue
		}
		if n == MaxLineRunes {
			b.WriteString("…")
			break
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// sanitizeLines splits text into lines and sanitizes each one, dropping a final empty line.
func sanitizeLines(s string) []string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return nil
	}
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = Sanitize(l)
	}
	return lines
}
