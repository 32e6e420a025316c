package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/NationTech/harmony-agent/bootstrap"
)

// needsRoot reports whether the runtime's system changes need privileges this process lacks.
func needsRoot(rt bootstrap.Runtime) bool { return rt.NeedsRoot("upgrade") != "" }

// recoverInterrupted runs before every command: when a killed harmony left an upgrade or a
// rollback unfinished, a runtime command (harmony runtime …) completes or reverts it first, and
// the user is told; every other command only says so, in one line, and goes on: a recovery can
// take minutes, and a launch or a status must not spend them unasked. Without the privileges to
// do it, the user is told which command does.
func recoverInterrupted(cmd *cobra.Command, g *globalOptions) error {
	switch cmd.Name() {
	case "version", "completion", "help", "__complete":
		return nil
	}
	rt, err := newRuntime(g, "auto")
	if err != nil {
		return nil // no runtime here: nothing to recover
	}
	pending, ok := any(rt).(interface {
		PendingSwitch() (*bootstrap.Journal, error)
	})
	if !ok {
		return nil
	}
	j, err := pending.PendingSwitch()
	if err != nil || j == nil {
		return err
	}
	if !recovers(cmd) {
		fmt.Fprintf(g.Stderr, "harmony: note: an interrupted %s of %s (%s → %s, stopped at %q) is unfinished; harmony runtime rollback finishes it "+
			"(harmony runtime rollback --abandon leaves the runtime as it is)\n", j.Op, j.Runtime, j.From, j.To, j.Phase)
		return nil
	}
	if needsRoot(rt) {
		fmt.Fprintf(g.Stderr, "harmony: note: an interrupted %s of %s (%s → %s) is unfinished; harmony finishes it when it runs as root (e.g. harmony runtime rollback)\n", j.Op, j.Runtime, j.From, j.To)
		return nil
	}
	rec, err := rt.Recover(cmd.Context())
	if err != nil {
		if cmd.Name() == "status" {
			fmt.Fprintf(g.Stderr, "harmony: error: %v\n", err)
			return nil
		}
		return err
	}
	if rec != nil {
		fmt.Fprintf(g.Stderr, "harmony: %s\n", rec.Message())
	}
	return nil
}

// recovers reports whether cmd finishes an interrupted switch before it runs: the runtime
// commands do (upgrade and rollback also do it themselves), except rollback --abandon, which
// ends one that cannot finish.
func recovers(cmd *cobra.Command) bool {
	if cmd.Parent() == nil || cmd.Parent().Name() != "runtime" {
		return false
	}
	if f := cmd.Flags().Lookup("abandon"); f != nil && f.Changed {
		return false
	}
	return true
}
