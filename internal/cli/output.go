package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// outputFlag is -o/--output, with --json kept as an alias where a command had it.
type outputFlag struct {
	Format string
	JSON   bool
	// YAML is true where -o yaml is offered (launch --dry-run: the objects it would apply).
	YAML bool
}

func (o *outputFlag) bind(cmd *cobra.Command, jsonAlias bool) {
	cmd.Flags().StringVarP(&o.Format, "output", "o", "", "output format: json")
	if jsonAlias {
		cmd.Flags().BoolVar(&o.JSON, "json", false, "print as JSON (same as -o json)")
	}
}

func (o *outputFlag) validate() error {
	switch {
	case o.Format == "yaml" && o.YAML:
	case o.Format != "" && o.Format != "json" && o.YAML:
		return &usageError{fmt.Errorf("--output %q: json or yaml", o.Format)}
	case o.Format != "" && o.Format != "json":
		return &usageError{fmt.Errorf("--output %q: only json is supported", o.Format)}
	}
	return nil
}

func (o *outputFlag) json() bool { return o.JSON || o.Format == "json" }

// yaml is -o yaml: the document on stdout, as json's.
func (o *outputFlag) yaml() bool { return o.Format == "yaml" }

// chatter is where a command writes progress and notes: stdout, except under -o json, where
// stdout holds only the JSON document and chatter goes to stderr; nowhere under --quiet.
func (o *outputFlag) chatter(g *globalOptions) io.Writer {
	switch {
	case g.Quiet:
		return io.Discard
	case o.json(), o.yaml():
		return g.Stderr
	}
	return g.Stdout
}
