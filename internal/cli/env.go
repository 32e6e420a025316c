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

// checkEnv checks, before cmd runs, the environment it depends on.
func checkEnv(cmd *cobra.Command) error {
	if downloads[cmd.CommandPath()] {
		return checkMirror()
	}
	return nil
}

// checkMirror checks HARMONY_MIRROR up front: a mistake there is reported with an example of a
// valid value, not as a failed download after retries.
func checkMirror() error {
	return installer.CheckMirror(os.Getenv(installer.MirrorEnv))
}
