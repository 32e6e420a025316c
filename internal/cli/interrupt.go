package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/NationTech/harmony-agent/bootstrap"
	"github.com/NationTech/harmony-agent/internal/colour"
	"github.com/NationTech/harmony-agent/internal/hint"
	"github.com/NationTech/harmony-agent/launch"
)

// interrupted reports a command stopped by Ctrl-C (its context cancelled) and returns exit code
// 130. A bootstrap or upgrade stopped in a step has undone the steps before it: say which, or
// what could not be undone and the command that cleans up.
func interrupted(stderr io.Writer, err error) int {
	var se *bootstrap.StepError
	var ie *launch.InterruptedError
	prefix := "harmony: " + colour.For(stderr).Fail("error") + ": "
	switch {
	case errors.As(err, &ie):
		// A launch stopped while it waited: what was applied and what was not ready yet.
		fmt.Fprintf(stderr, "%s%s\n", prefix, printable(ie.Error()))
		for _, h := range hint.Of(err) {
			fmt.Fprintf(stderr, "harmony: hint: %s\n", printable(h))
		}
	case !errors.As(err, &se) && errors.Is(err, context.Canceled):
		fmt.Fprintln(stderr, prefix+"interrupted")
	case se == nil:
		// Something more than the interruption went wrong (e.g. an upgrade's way back): say it all.
		fmt.Fprintf(stderr, "%sinterrupted: %s\n", prefix, printable(err.Error()))
		for _, h := range hint.Of(err) {
			fmt.Fprintf(stderr, "harmony: hint: %s\n", printable(h))
		}
	case se.UndoErr != nil:
		fmt.Fprintf(stderr, "%sinterrupted during %s; undoing the steps before it failed: %s\n", prefix, se.Step, printable(se.UndoErr.Error()))
		fmt.Fprintln(stderr, "harmony: hint: see what is left: harmony runtime status; remove it: harmony runtime uninstall")
	case len(se.Undone) == 0:
		fmt.Fprintf(stderr, "%sinterrupted during %s: nothing to undo\n", prefix, se.Step)
	default:
		fmt.Fprintf(stderr, "%sinterrupted during %s: undone: %s\n", prefix, se.Step, strings.Join(se.Undone, ", "))
	}
	return exitInterrupted
}
