package cli

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/NationTech/harmony-agent/bootstrap"
)

// interrupted reports a command stopped by Ctrl-C (its context cancelled) and returns exit code
// 130. A bootstrap or upgrade stopped in a step has undone the steps before it: say which, or
// what could not be undone and the command that cleans up.
func interrupted(stderr io.Writer, err error) int {
	var se *bootstrap.StepError
	switch {
	case !errors.As(err, &se):
		fmt.Fprintln(stderr, "harmony: error: interrupted")
	case se.UndoErr != nil:
		fmt.Fprintf(stderr, "harmony: error: interrupted during %s; undoing the steps before it failed: %v\n", se.Step, se.UndoErr)
		fmt.Fprintln(stderr, "harmony: hint: see what is left: harmony runtime status; remove it: harmony runtime uninstall")
	case len(se.Undone) == 0:
		fmt.Fprintf(stderr, "harmony: error: interrupted during %s: nothing to undo\n", se.Step)
	default:
		fmt.Fprintf(stderr, "harmony: error: interrupted during %s: undone: %s\n", se.Step, strings.Join(se.Undone, ", "))
	}
	return exitInterrupted
}
