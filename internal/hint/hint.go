// Package hint attaches advice for the user to an error: what to do next. Only internal/cli
// prints hints; every other package just wraps.
package hint

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

type hinted struct {
	err   error
	hints []string
	last  bool // the hints come after the ones inside err
}

func (h *hinted) Error() string { return h.err.Error() }
func (h *hinted) Unwrap() error { return h.err }

// With returns err carrying the given hints. A nil err stays nil.
func With(err error, hints ...string) error {
	if err == nil {
		return nil
	}
	return &hinted{err: err, hints: hints}
}

// After returns err carrying the given hints after those it already carries (With puts them
// first): for advice that follows what the inner error suggests.
func After(err error, hints ...string) error {
	if err == nil {
		return nil
	}
	return &hinted{err: err, hints: hints, last: true}
}

// Of returns every hint attached anywhere in err's chain, outermost first, except that the
// hints attached with After follow the ones inside them.
func Of(err error) []string {
	var out, last []string
	for err != nil {
		var h *hinted
		if !errors.As(err, &h) {
			break
		}
		if h.last {
			last = append(append([]string{}, h.hints...), last...)
		} else {
			out = append(out, h.hints...)
		}
		err = h.err
	}
	return append(out, last...)
}

// Command joins a command line for a hint, quoting each argument a shell would split or
// expand, so the line works when pasted. An argument holding a line break, a terminal control,
// a character that reorders text or bytes that are not UTF-8 (a repository's folder named to
// print a fake line under harmony's) is written $'…' with those escaped: the command stays one
// line of what it runs, and bash, zsh and ksh read the argument back as it is.
func Command(args ...string) string {
	out := make([]string, len(args))
	for i, a := range args {
		switch {
		case !utf8.ValidString(a) || strings.IndexFunc(a, Invisible) >= 0:
			a = ansiC(a)
		case a == "" || strings.ContainsAny(a, " \t\n'\"$`\\*?[]{}()<>|&;#~!"):
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}

// Invisible reports the characters a terminal does not show as themselves: controls, and
// those that reorder text (Trojan Source). Text harmony did not write drops or escapes them.
func Invisible(r rune) bool {
	return unicode.IsControl(r) || r == '\u061c' || r == '\u200e' || r == '\u200f' ||
		(r >= '\u202a' && r <= '\u202e') || (r >= '\u2066' && r <= '\u2069')
}

// ansiC quotes s as $'…': backslash, quote, '!' and the invisible characters escaped (their
// bytes as \xHH, whatever the shell's locale), everything else as it is.
func ansiC(s string) string {
	var b strings.Builder
	b.WriteString("$'")
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\'' || r == '!':
			// As bytes: bash's history expansion, which does not know $'…', sees neither a
			// quote ending the string nor a '!' outside it.
			fmt.Fprintf(&b, `\x%02x`, r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == utf8.RuneError || Invisible(r):
			for _, c := range []byte(s[i : i+n]) {
				fmt.Fprintf(&b, `\x%02x`, c)
			}
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	b.WriteByte('\'')
	return b.String()
}
