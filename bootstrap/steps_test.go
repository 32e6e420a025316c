package bootstrap_test

import (
	"bytes"
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/NationTech/harmony-agent/bootstrap"
)

// An interrupted step (Ctrl-C cancels ctx) is undone like a failed one: every completed step's
// Undo runs, last first, with a context that is not cancelled, and the error says what was undone.
func TestRunStepsInterruptedUndoesCompletedSteps(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	var log []string
	undo := func(name string) func(context.Context) error {
		return func(ctx context.Context) error {
			if ctx.Err() != nil {
				return errors.New("undo got a cancelled context")
			}
			log = append(log, "undo "+name)
			return nil
		}
	}
	run := func(name string) func(context.Context) error {
		return func(context.Context) error { log = append(log, name); return nil }
	}
	steps := []bootstrap.Step{
		{Name: "install", Run: run("install"), Undo: undo("install")},
		{Name: "verify", Run: run("verify")},
		{Name: "service", Run: run("service"), Undo: undo("service")},
		{Name: "wait", Run: func(ctx context.Context) error {
			cancel() // the user presses Ctrl-C while harmony waits
			<-ctx.Done()
			return ctx.Err()
		}},
		{Name: "never", Run: run("never")},
	}
	var out bytes.Buffer
	err := bootstrap.RunSteps(ctx, steps, bootstrap.LineProgress{W: &out})
	var se *bootstrap.StepError
	if !errors.As(err, &se) || !errors.Is(err, context.Canceled) || se.Step != "wait" || se.UndoErr != nil {
		t.Fatalf("error %#v (%v)", err, err)
	}
	if want := []string{"service", "install"}; !reflect.DeepEqual(se.Undone, want) {
		t.Fatalf("undone %v, want %v", se.Undone, want)
	}
	if want := []string{"install", "verify", "service", "undo service", "undo install"}; !reflect.DeepEqual(log, want) {
		t.Fatalf("ran %v, want %v", log, want)
	}
	if !strings.Contains(out.String(), "[4/5] wait         interrupted (") {
		t.Fatalf("progress:\n%s", out.String())
	}
}

// A failing Undo is reported, never dropped: the machine is not back where it was.
func TestRunStepsReportsAFailedUndo(t *testing.T) {
	t.Parallel()
	steps := []bootstrap.Step{
		{Name: "install", Run: func(context.Context) error { return nil }, Undo: func(context.Context) error { return errors.New("busy") }},
		{Name: "start", Run: func(context.Context) error { return errors.New("no port") }},
	}
	err := bootstrap.RunSteps(context.Background(), steps, bootstrap.LineProgress{W: &bytes.Buffer{}})
	if err == nil || err.Error() != "start: no port; undoing the steps before it failed too: undo install: busy" {
		t.Fatalf("error %v", err)
	}
}

// On a terminal (here forced with CLICOLOR_FORCE) a step's outcome is in colour; NO_COLOR
// turns it off.
func TestLineProgressColours(t *testing.T) {
	t.Setenv("CLICOLOR_FORCE", "1")
	t.Setenv("NO_COLOR", "")
	var out bytes.Buffer
	p := bootstrap.LineProgress{W: &out}
	p.End(1, 3, "download", 0, nil)
	p.End(2, 3, "verify", 0, errors.New("bad"))
	p.End(3, 3, "start", 0, context.Canceled)
	want := "[1/3] download     \x1b[32mok\x1b[0m (0s)\n[2/3] verify       \x1b[31mfailed\x1b[0m (0s)\n[3/3] start        \x1b[33minterrupted\x1b[0m (0s)\n"
	if out.String() != want {
		t.Fatalf("got %q, want %q", out.String(), want)
	}
	t.Setenv("NO_COLOR", "1")
	out.Reset()
	p.End(1, 1, "download", 0, nil)
	if out.String() != "[1/1] download     ok (0s)\n" {
		t.Fatalf("NO_COLOR: %q", out.String())
	}
}
