// Package colour marks the words that matter on a terminal: ok in green, failed and errors in
// red, warnings and interruptions in yellow. Output that is not a terminal (a pipe, a file, a CI
// log) stays plain, and so does every output when NO_COLOR is set; CLICOLOR_FORCE=1 asks for
// colour anyway (NO_COLOR still wins).
package colour

import (
	"io"
	"os"

	"golang.org/x/term"
)

// Painter colours words, or leaves them plain.
type Painter bool

// For returns the Painter for w: colour only when w is a terminal (or CLICOLOR_FORCE is set)
// and NO_COLOR is not.
func For(w io.Writer) Painter {
	if os.Getenv("NO_COLOR") != "" {
		return false
	}
	if f := os.Getenv("CLICOLOR_FORCE"); f != "" && f != "0" {
		return true
	}
	f, ok := w.(*os.File)
	return Painter(ok && term.IsTerminal(int(f.Fd())))
}

// OK is s in green.
func (p Painter) OK(s string) string { return p.paint("32", s) }

// Fail is s in red.
func (p Painter) Fail(s string) string { return p.paint("31", s) }

// Warn is s in yellow.
func (p Painter) Warn(s string) string { return p.paint("33", s) }

func (p Painter) paint(code, s string) string {
	if !p {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}
