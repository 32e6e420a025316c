package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/NationTech/harmony-agent/bootstrap"
)

// needsRoot reports whether the runtime's system changes need privileges this process lacks.
func needsRoot(rt bootstrap.Runtime) bool { return rt.NeedsRoot("upgrade") != "" }

// recoverInterrupted runs before every command: when a killed harmony left an upgrade or a
// rollback unfinished, it is completed or reverted first, and the user is told. Without the
// privileges to do it, the user is told which command does.
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
