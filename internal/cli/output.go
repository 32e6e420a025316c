package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

// outputFlag is -o/--output, with --json kept as an alias where a command had it.
type outputFlag struct {
	Format string
	JSON   bool
}

func (o *outputFlag) bind(cmd *cobra.Command, jsonAlias bool) {
	cmd.Flags().StringVarP(&o.Format, "output", "o", "", "output format: json")
	if jsonAlias {
		cmd.Flags().BoolVar(&o.JSON, "json", false, "print as JSON (same as -o json)")
	}
}

func (o *outputFlag) validate() error {
	if o.Format != "" && o.Format != "json" {
		return &usageError{fmt.Errorf("--output %q: only json is supported", o.Format)}
	}
	return nil
}

func (o *outputFlag) json() bool { return o.JSON || o.Format == "json" }
