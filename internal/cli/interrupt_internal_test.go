package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/NationTech/harmony-agent/bootstrap"
	"github.com/NationTech/harmony-agent/internal/hint"
	"github.com/NationTech/harmony-agent/launch"
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
		// A launch stopped while waiting: what was applied and what was not ready, no client-go text.
		{hint.With(&launch.InterruptedError{Applied: 3, NotReady: []string{"deployment/web (namespace shop) (InProgress)"}}, "what was applied stays: see it with harmony status; remove it with harmony down"),
			"harmony: error: interrupted while waiting: all 3 objects were applied; not ready yet: deployment/web (namespace shop) (InProgress)\nharmony: hint: what was applied stays: see it with harmony status; remove it with harmony down\n"},
	} {
		var b bytes.Buffer
		if code := interrupted(&b, tc.err); code != 130 || b.String() != tc.want {
			t.Errorf("%v: exit %d, printed %q, want 130 and %q", tc.err, code, b.String(), tc.want)
		}
	}
}

// A second Ctrl-C ends the process wherever it is: a step that does not look at its context (a
// library rendering a template, an undo) cannot hold it.
func TestSecondSignalExitsAtOnce(t *testing.T) {
	sig := make(chan os.Signal, 2)
	cancelled := make(chan struct{})
	exited := make(chan int, 1)
	var stderr bytes.Buffer
	go onSignals(sig, func() { close(cancelled) }, func(code int) { exited <- code; select {} }, &stderr)
	sig <- os.Interrupt
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the first signal did not cancel")
	}
	select {
	case code := <-exited:
		t.Fatalf("the first signal exited (%d)", code)
	case <-time.After(100 * time.Millisecond):
	}
	sig <- syscall.SIGTERM
	select {
	case code := <-exited:
		if code != 130 {
			t.Fatalf("exit code %d, want 130", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the second signal did not end the process")
	}
}
