package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/NationTech/harmony-agent/bootstrap"
)

// needsRoot reports whether the runtime's system changes need privileges this process lacks.
func needsRoot(rt bootstrap.Runtime) bool { return rt.NeedsRoot("upgrade") != "" }

// recoverInterrupted runs before every command: when a killed harmony left an upgrade or a
// rollback unfinished, harmony runtime start and restart complete or revert it first, and the
// user is told (runtime upgrade and rollback do it themselves, and the agent in its cycle); every
// other command only says so, in one line, and goes on: a recovery can take minutes, and a
// launch, a status or a stop must not spend them unasked. Without the privileges to do it, the
// user is told which command does.
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
	if switches(cmd) {
		return nil // runtime upgrade and rollback finish (or, --abandon, end) it themselves, and say so
	}
	j, err := pending.PendingSwitch()
	if err != nil && (!recovers(cmd) || needsRoot(rt)) { // as root, the command's own sudo run recovers
		fmt.Fprintf(g.Stderr, "harmony: note: %v (harmony runtime rollback --abandon removes it)\n", err)
		return nil
	}
	if err != nil || j == nil {
		return err
	}
	if running, ok := any(rt).(interface{ SwitchRunning() bool }); ok && running.SwitchRunning() {
		fmt.Fprintf(g.Stderr, "harmony: note: an %s of %s (%s → %s) is in progress (harmony process %d)\n", j.Op, j.Runtime, j.From, j.To, j.PID)
		return nil
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

// recovers reports whether cmd finishes an interrupted switch before it runs: runtime start and
// restart, which would otherwise start whichever version the switch left.
func recovers(cmd *cobra.Command) bool {
	if cmd.Parent() == nil || cmd.Parent().Name() != "runtime" {
		return false
	}
	return cmd.Name() == "start" || cmd.Name() == "restart"
}

// switches reports whether cmd is runtime upgrade or rollback, which deal with an unfinished
// switch themselves.
func switches(cmd *cobra.Command) bool {
	return cmd.Parent() != nil && cmd.Parent().Name() == "runtime" && (cmd.Name() == "upgrade" || cmd.Name() == "rollback")
}
