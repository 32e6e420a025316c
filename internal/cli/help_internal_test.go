package cli

import (
	"io"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// Every command has examples in gh's style and a long help that says more than its short line
// (issue 18 item 17), and every example is a command line harmony accepts.
func TestEveryCommandHasHelp(t *testing.T) {
	t.Parallel()
	root := newRootCmd(&globalOptions{Stdout: io.Discard, Stderr: io.Discard})
	n := 0
	walk(root, func(cmd *cobra.Command) {
		if cmd.Hidden || cmd.Deprecated != "" {
			return
		}
		n++
		path := cmd.CommandPath()
		if !strings.Contains(cmd.Example, "$ harmony ") && !strings.Contains(cmd.Example, "harmony completion") {
			t.Errorf("%s: no example in gh's style (\"$ harmony …\"): %q", path, cmd.Example)
		}
		if long := strings.TrimSpace(cmd.Long); len(long) <= len(cmd.Short) || long == cmd.Short {
			t.Errorf("%s: the long help says no more than the short line %q", path, cmd.Short)
		}
		for _, line := range strings.Split(cmd.Example, "\n") {
			args, ok := exampleArgs(line)
			if !ok {
				continue
			}
			fresh := newRootCmd(&globalOptions{Stdout: io.Discard, Stderr: io.Discard})
			c, rest, err := fresh.Find(args)
			if err != nil {
				t.Errorf("%s: example %q: %v", path, line, err)
				continue
			}
			if err := c.ParseFlags(rest); err != nil {
				t.Errorf("%s: example %q: %v", path, line, err)
				continue
			}
			if c.Args != nil {
				if err := c.Args(c, c.Flags().Args()); err != nil {
					t.Errorf("%s: example %q: %v", path, line, err)
				}
			}
		}
	})
	if n < 25 {
		t.Fatalf("walked %d commands: the tree is not what this test thinks", n)
	}
	if _, ok := helps["harmony help"]; !ok {
		t.Fatal("no help for help")
	}
}

// exampleArgs returns the arguments of an example line that runs harmony, up to a redirection
// or a pipe.
func exampleArgs(line string) ([]string, bool) {
	line = strings.TrimSpace(line)
	for _, prefix := range []string{"$ sudo harmony", "$ harmony", "PS> harmony"} {
		if rest, ok := strings.CutPrefix(line, prefix); ok {
			var args []string
			for _, f := range strings.Fields(rest) {
				if f == ">" || f == "|" || f == "&&" {
					break
				}
				args = append(args, f)
			}
			return args, true
		}
	}
	return nil, false
}
