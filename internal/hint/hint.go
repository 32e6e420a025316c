// Package hint attaches advice for the user to an error: what to do next. Only internal/cli
// prints hints; every other package just wraps.
package hint

import "errors"

type hinted struct {
	err   error
	hints []string
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

// Of returns every hint attached anywhere in err's chain, outermost first.
func Of(err error) []string {
	var out []string
	for err != nil {
		var h *hinted
		if !errors.As(err, &h) {
			break
		}
		out = append(out, h.hints...)
		err = h.err
	}
	return out
}
