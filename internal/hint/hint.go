// Package hint attaches advice for the user to an error: what to do next. Only internal/cli
// prints hints; every other package just wraps.
package hint

import (
	"errors"
	"strings"
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
// expand, so the line works when pasted.
func Command(args ...string) string {
	out := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n'\"$`\\*?[]{}()<>|&;#~!") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}
