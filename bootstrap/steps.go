package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
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

// RunSteps runs steps in order. When one fails, the Undo of every completed step runs in
// reverse order, so the previous working state is restored, and the error names the step.
func RunSteps(ctx context.Context, steps []Step, p Progress) error {
	err, _ := runStepsUndo(ctx, steps, p)
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
			var undoErrs []error
			for j := i - 1; j >= 0; j-- {
				if steps[j].Undo != nil {
					if uerr := steps[j].Undo(context.WithoutCancel(ctx)); uerr != nil {
						undoErrs = append(undoErrs, fmt.Errorf("undo %s: %w", steps[j].Name, uerr))
					}
				}
			}
			return fmt.Errorf("%s: %w", s.Name, err), errors.Join(undoErrs...)
		}
	}
	return nil, nil
}

// LineProgress prints one line per step: "[3/7] install … ok (0.2s)".
type LineProgress struct{ W io.Writer }

// Begin prints nothing: the line is printed when the step ends, so logs stay one line a step.
func (l LineProgress) Begin(int, int, string) {}

// End prints the step's outcome.
func (l LineProgress) End(i, n int, name string, d time.Duration, err error) {
	status := "ok"
	if err != nil {
		status = "failed"
	}
	fmt.Fprintf(l.W, "[%d/%d] %-12s %s (%s)\n", i, n, name, status, d.Round(10*time.Millisecond))
}
