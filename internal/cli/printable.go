package cli

import (
	"strings"

	"github.com/NationTech/harmony-agent/internal/hint"
)

// printable makes text harmony did not write (a repository's file and object names, a YAML
// parser's or a server's message quoted in an error) safe to print on a terminal: control
// characters other than line breaks and tabs (escape sequences lose their introducer: no
// colours, no window titles, no cursor moves, no screen clearing) and the invisible characters
// that reorder text (Trojan Source) are dropped; invalid UTF-8 becomes U+FFFD. A line it starts
// with harmony's own "harmony:" (a file named "x\nharmony: hint: run: …" to forge a hint) is
// indented, so that it never passes for one of harmony's lines.
func printable(s string) string {
	return strings.ReplaceAll(controlsDropped(s), "\nharmony:", "\n  harmony:")
}

func controlsDropped(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\t':
			return r
		case hint.Invisible(r):
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
}
