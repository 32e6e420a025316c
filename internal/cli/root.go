// Package cli is harmony's command tree: one file per command, each an options struct filled by
// flags and a run function that only calls library code. Only Main turns errors into exit codes
// and prints them.
package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/NationTech/harmony-agent/internal/buildinfo"
	"github.com/NationTech/harmony-agent/internal/colour"
	"github.com/NationTech/harmony-agent/internal/hint"
	"github.com/NationTech/harmony-agent/launch"
)

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
	// exitInterrupted is a command stopped by Ctrl-C (or SIGTERM), as shells report 128+SIGINT.
	exitInterrupted = 130
)

// globalOptions are the flags every command shares.
type globalOptions struct {
	Quiet  bool
	Stdout io.Writer
	Stderr io.Writer
	// Args are harmony's arguments as given, for a message naming the same command again.
	Args []string
}

// usageError marks a mistake in how harmony was called (exit code 2).
type usageError struct{ err error }

func (u *usageError) Error() string { return u.err.Error() }
func (u *usageError) Unwrap() error { return u.err }

// usageArgs makes check's failure a usage error. A command that groups others (root, runtime,
// agent) answers an unknown word with cobra's suggestions, as kubectl and gh do.
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			if cmd.HasSubCommands() && len(args) > 0 {
				return unknownCommand(cmd, args[0])
			}
			return &usageError{err}
		}
		return nil
	}
}

// unknownCommandError is a name that is not a subcommand, with the names it is close to.
type unknownCommandError struct {
	name, parent string
	suggestions  []string
}

func (e *unknownCommandError) Error() string {
	return fmt.Sprintf("unknown command %q for %q", e.name, e.parent)
}

// nestedSuggestions are commands below the root that words users type at the root mean.
var nestedSuggestions = map[string][]string{
	"upgrade":   {"runtime upgrade"},
	"uninstall": {"runtime uninstall"},
	"rollback":  {"runtime rollback"},
	"restart":   {"runtime restart"},
	"start":     {"runtime start"},
	"stop":      {"runtime stop"},
	"install":   {"bootstrap"},
	"init":      {"bootstrap"},
	"logs":      {"status"},
	"ps":        {"status"},
}

// unknownCommand is the usage error for a name that is not a subcommand of cmd.
func unknownCommand(cmd *cobra.Command, name string) error {
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2 // cobra's own default, set only on its own path
	}
	suggestions := cmd.SuggestionsFor(name)
	if !cmd.HasParent() {
		// Words that name a command one level down: 'harmony uninstall' is 'harmony runtime uninstall'.
		for _, s := range nestedSuggestions[strings.ToLower(name)] {
			if !slices.Contains(suggestions, s) {
				suggestions = append(suggestions, s)
			}
		}
	}
	return &usageError{&unknownCommandError{name: name, parent: cmd.CommandPath(), suggestions: suggestions}}
}

// newHelpCmd replaces cobra's help command, which prints the root's help (exit 0) for a topic
// that does not exist: here an unknown topic is a usage error with suggestions.
func newHelpCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		Long:  "Help prints the full help of any command: 'harmony help runtime status' is 'harmony runtime status --help'.",
		ValidArgsFunction: func(c *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			cmd, _, err := c.Root().Find(args)
			if err != nil || cmd == nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var names []cobra.Completion
			for _, sub := range cmd.Commands() {
				if sub.IsAvailableCommand() && strings.HasPrefix(sub.Name(), toComplete) {
					names = append(names, cobra.CompletionWithDesc(sub.Name(), sub.Short))
				}
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(c *cobra.Command, args []string) error {
			cmd, rest, err := c.Root().Find(args)
			if err != nil {
				return &usageError{err}
			}
			if len(rest) > 0 {
				return unknownCommand(cmd, rest[0])
			}
			cmd.InitDefaultHelpFlag()
			return cmd.Help()
		},
	}
}

// errNotImplemented is what a command returns until its issue lands; it never pretends to work.
var errNotImplemented = errors.New("not implemented yet")

func notImplemented(what string) error {
	return hint.With(fmt.Errorf("%s: %w", what, errNotImplemented),
		"this command arrives in a later harmony release; run 'harmony --help' for what works today")
}

// Main runs harmony with os.Args and returns the process exit code.
// The first Ctrl-C (or SIGTERM) cancels the command's context: it stops what it is doing, undoes
// what it must and says so. A second one ends the process at once, wherever it is.
func Main() int {
	if len(os.Args) == 2 && os.Args[1] == launch.RenderChildCommand {
		// A launch's renderer (launch/renderjob.go), in a process group of its own: the launch
		// that started it ends it.
		return launch.ServeRenderChild(context.Background(), os.Stdin, os.Stdout)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sig := make(chan os.Signal, 2)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go onSignals(sig, cancel, os.Exit, os.Stderr)
	return Run(ctx, os.Args[1:], os.Stdout, os.Stderr)
}

// onSignals cancels on the first signal and exits (exit code 130) on the second.
func onSignals(sig <-chan os.Signal, cancel func(), exit func(int), stderr io.Writer) {
	<-sig
	cancel()
	<-sig
	fmt.Fprintln(stderr, "\nharmony: interrupted again: stopped at once")
	exit(exitInterrupted)
}

// Run runs harmony with the given arguments and streams and returns the exit code.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	n := startUpdateNotice(ctx, args, stderr)
	code := execute(ctx, args, stdout, stderr)
	n.finish(stderr)
	return code
}

func execute(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	g := &globalOptions{Stdout: stdout, Stderr: stderr, Args: args}
	root := newRootCmd(g)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	var silent *silentError
	if errors.As(err, &silent) {
		if ctx.Err() != nil {
			return exitInterrupted // the privileged re-run was interrupted too, and said so
		}
		return exitFailure // already reported by the process that failed
	}
	if ctx.Err() != nil {
		return interrupted(stderr, err)
	}
	fmt.Fprintf(stderr, "harmony: %s: %s\n", colour.For(stderr).Fail("error"), printable(err.Error()))
	var unknown *unknownCommandError
	if errors.As(err, &unknown) && len(unknown.suggestions) > 0 {
		fmt.Fprintln(stderr, "\nDid you mean this?")
		for _, s := range unknown.suggestions {
			fmt.Fprintf(stderr, "\t%s\n", s)
		}
		fmt.Fprintln(stderr)
	}
	for _, h := range hint.Of(err) {
		fmt.Fprintf(stderr, "harmony: hint: %s\n", printable(h))
	}
	var u *usageError
	if errors.As(err, &u) {
		path := commandPath(root, args)
		if unknown != nil {
			path = unknown.parent // 'harmony help lauch' is about harmony, not about help
		}
		fmt.Fprintf(stderr, "harmony: hint: run '%s --help' for usage\n", path)
		return exitUsage
	}
	return exitFailure
}

func commandPath(root *cobra.Command, args []string) string {
	cmd, _, err := root.Find(args)
	if err != nil || cmd == nil {
		return root.Name()
	}
	return cmd.CommandPath()
}

func newRootCmd(g *globalOptions) *cobra.Command {
	root := &cobra.Command{
		Use:   "harmony",
		Short: "Run any repository's Kubernetes manifests on a local runtime",
		Long: `harmony installs a lightweight, pinned Kubernetes (k3s) by itself and runs a
repository's manifests on it: clone a repo, run 'harmony launch', and the project runs.`,
		Args:          usageArgs(cobra.NoArgs),
		SilenceErrors: true,
		SilenceUsage:  true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkEnv(cmd); err != nil {
				return err
			}
			return recoverInterrupted(cmd, g)
		},
	}
	root.PersistentFlags().BoolVarP(&g.Quiet, "quiet", "q", false, "hide progress and chatter (errors and the answer of read-only commands still print)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err} })
	root.SetHelpCommand(newHelpCmd())
	root.Version = buildinfo.Get().Version // harmony --version, as other CLIs answer it
	root.SetVersionTemplate("harmony {{.Version}}\n")
	root.AddCommand(
		newVersionCmd(g),
		newBootstrapCmd(g),
		newRuntimeCmd(g),
		newKubeconfigCmd(g),
		newLaunchCmd(g),
		newDownCmd(g),
		newStatusCmd(g),
		newListCmd(g),
		newForwardCmd(g),
		newLogsCmd(g),
		newDoctorCmd(g),
		newAgentCmd(g),
		newSelfUpdateCmd(g),
	)
	completionArgs(root)
	registerCompletions(root)
	applyHelp(root)
	return root
}

// out is where a command writes progress and chatter: nowhere under --quiet. The answer of a
// read-only command (version, runtime versions, runtime status, status, agent status/log) goes
// to g.Stdout: quiet never hides the result asked for.
func (g *globalOptions) out() io.Writer {
	if g.Quiet {
		return io.Discard
	}
	return g.Stdout
}

// printJSON writes v as indented JSON: the machine-readable output of every command.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
