package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/NationTech/harmony-agent/bootstrap"
	"github.com/NationTech/harmony-agent/internal/hint"
)

// What Ctrl-C prints: the step and what was undone, or what more went wrong; always exit 130.
func TestInterruptedSaysWhatWasUndone(t *testing.T) {
	t.Setenv("NO_COLOR", "1")
	for _, tc := range []struct {
		err  error
		want string
	}{
		{fmt.Errorf("apply: %w", context.Canceled), "harmony: error: interrupted\n"},
		{&bootstrap.StepError{Step: "download", Err: context.Canceled}, "harmony: error: interrupted during download: nothing to undo\n"},
		{&bootstrap.StepError{Step: "API ready", Err: context.Canceled, Undone: []string{"start", "install"}},
			"harmony: error: interrupted during API ready: undone: start, install\n"},
		{&bootstrap.StepError{Step: "start", Err: context.Canceled, UndoErr: errors.New("undo install: busy")},
			"harmony: error: interrupted during start; undoing the steps before it failed: undo install: busy\nharmony: hint: see what is left: harmony runtime status; remove it: harmony runtime uninstall\n"},
		{hint.With(errors.New("upgrade k3s a → b: the rollback failed"), "try again: harmony runtime rollback"),
			"harmony: error: interrupted: upgrade k3s a → b: the rollback failed\nharmony: hint: try again: harmony runtime rollback\n"},
	} {
		var b bytes.Buffer
		if code := interrupted(&b, tc.err); code != 130 || b.String() != tc.want {
			t.Errorf("%v: exit %d, printed %q, want 130 and %q", tc.err, code, b.String(), tc.want)
		}
	}
}
