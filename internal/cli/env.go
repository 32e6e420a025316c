package cli

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/NationTech/harmony-agent/installer"
)

// Checks of the environment harmony reads, made before a command does anything.

// downloads are the commands that fetch from HARMONY_MIRROR (launch only when it bootstraps,
// which bootstrapRun checks).
var downloads = map[string]bool{
	"harmony bootstrap":           true,
	"harmony runtime upgrade":     true,
	"harmony runtime install-cli": true,
	"harmony self-update":         true,
}

// checkEnv checks, before cmd runs, the environment it depends on. bootstrap and the runtime
// switches check harmony's data folder themselves: when they re-run through sudo, root uses
// its own.
func checkEnv(cmd *cobra.Command) error {
	if !downloads[cmd.CommandPath()] {
		return nil
	}
	if err := checkMirror(); err != nil {
		return err
	}
	switch cmd.CommandPath() {
	case "harmony runtime install-cli", "harmony self-update":
		return checkHome()
	}
	return nil
}

// checkHome checks, before a command writes harmony's data folder (its download cache, state),
// that the user it runs as can: the error names the owner and the command that fixes it.
func checkHome() error {
	if os.Geteuid() == 0 {
		return nil // root's own folder, installer.SystemHome
	}
	home, err := installer.Home()
	if err != nil {
		return err
	}
	return installer.CheckHome(home)
}

// checkMirror checks HARMONY_MIRROR up front: a mistake there is reported with an example of a
// valid value, not as a failed download after retries.
func checkMirror() error {
	return installer.CheckMirror(os.Getenv(installer.MirrorEnv))
}
