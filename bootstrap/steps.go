package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/NationTech/harmony-agent/internal/colour"
)

// Step is one named stage of a bootstrap.
type Step struct {
	Name string
	Run  func(ctx context.Context) error
	// Undo, when set, reverts the step if a later step fails.
	Undo func(ctx context.Context) error
}

// Progress shows the steps as they run.
type Progress interface {
	Begin(i, n int, name string)
	End(i, n int, name string, d time.Duration, err error)
}

// StepError is the failure of one step of a list, after the steps before it were undone.
type StepError struct {
	// Step is the name of the step that failed.
	Step string
	// Err is its error.
	Err error
	// Undone names the completed steps whose Undo ran without error, last step first.
	Undone []string
	// UndoErr is what went wrong while undoing, nil when every Undo succeeded.
	UndoErr error
	// sayUndo puts UndoErr in the message (RunSteps; a switch reports its rollback itself).
	sayUndo bool
}

func (e *StepError) Error() string {
	if e.UndoErr != nil && e.sayUndo {
		return fmt.Sprintf("%s: %v; undoing the steps before it failed too: %v", e.Step, e.Err, e.UndoErr)
	}
	return fmt.Sprintf("%s: %v", e.Step, e.Err)
}

func (e *StepError) Unwrap() error { return e.Err }

// RunSteps runs steps in order. When one fails, the Undo of every completed step runs in
// reverse order, so the previous working state is restored; the error is a *StepError naming
// the step and what was undone. Cancelling ctx (Ctrl-C) fails the running step the same way:
// the undo runs to the end, whatever ctx says.
func RunSteps(ctx context.Context, steps []Step, p Progress) error {
	err, _ := runStepsUndo(ctx, steps, p)
	var se *StepError
	if errors.As(err, &se) {
		se.sayUndo = true
	}
	return err
}

// runStepsUndo is RunSteps that also returns what went wrong while undoing.
func runStepsUndo(ctx context.Context, steps []Step, p Progress) (error, error) {
	for i, s := range steps {
		if p != nil {
			p.Begin(i+1, len(steps), s.Name)
		}
		start := time.Now()
		err := s.Run(ctx)
		if p != nil {
			p.End(i+1, len(steps), s.Name, time.Since(start), err)
		}
		if err != nil {
			se := &StepError{Step: s.Name, Err: err}
			var undoErrs []error
			for j := i - 1; j >= 0; j-- {
				if steps[j].Undo != nil {
					if uerr := steps[j].Undo(context.WithoutCancel(ctx)); uerr != nil {
						undoErrs = append(undoErrs, fmt.Errorf("undo %s: %w", steps[j].Name, uerr))
					} else {
						se.Undone = append(se.Undone, steps[j].Name)
					}
				}
			}
			se.UndoErr = errors.Join(undoErrs...)
			return se, se.UndoErr
		}
	}
	return nil, nil
}

// LineProgress prints one line per step: "[3/7] install … ok (0.2s)", the outcome in colour on a
// terminal.
type LineProgress struct{ W io.Writer }

// Begin prints nothing: the line is printed when the step ends, so logs stay one line a step.
func (l LineProgress) Begin(int, int, string) {}

// End prints the step's outcome.
func (l LineProgress) End(i, n int, name string, d time.Duration, err error) {
	c := colour.For(l.W)
	status := c.OK("ok")
	switch {
	case errors.Is(err, context.Canceled):
		status = c.Warn("interrupted")
	case err != nil:
		status = c.Fail("failed")
	}
	fmt.Fprintf(l.W, "[%d/%d] %-12s %s (%s)\n", i, n, name, status, d.Round(10*time.Millisecond))
}
