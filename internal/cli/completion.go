package cli

import (
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/NationTech/harmony-agent/bootstrap/preflight"
	"github.com/NationTech/harmony-agent/launch"
)

// registerCompletions gives every flag and argument with a known set of values its shell
// completion: -o's formats, --runtime's names, --version/--to's pinned k3s versions, --context's
// contexts from the kubeconfig, and folders for the commands that take a project folder.
func registerCompletions(root *cobra.Command) {
	walk(root, func(cmd *cobra.Command) {
		for name, complete := range flagCompletions(cmd) {
			if cmd.Flags().Lookup(name) != nil {
				_ = cmd.RegisterFlagCompletionFunc(name, complete)
			}
		}
		switch cmd.CommandPath() {
		case "harmony launch", "harmony down", "harmony status":
			if cmd.ValidArgsFunction == nil {
				cmd.ValidArgsFunction = func(_ *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
					if len(args) > 0 {
						return nil, cobra.ShellCompDirectiveNoFileComp
					}
					return nil, cobra.ShellCompDirectiveFilterDirs // the project's folder
				}
			}
		}
	})
}

type completeFunc = cobra.CompletionFunc

// flagCompletions are the completions of cmd's flags, by flag name.
func flagCompletions(cmd *cobra.Command) map[string]completeFunc {
	m := map[string]completeFunc{
		"output":  fixed("json\tone JSON document on stdout"),
		"runtime": fixed("auto\tk3s on Linux, k3d elsewhere", "k3s\tk3s as a service on this Linux machine", "k3d\tk3s in Docker"),
		"context": completeContexts,
		// --skip-checks: the preflight checks' ids (harmony doctor).
		"skip-checks": func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
			return append(preflight.IDs(), "all"), cobra.ShellCompDirectiveNoFileComp
		},
	}
	switch cmd.CommandPath() {
	case "harmony bootstrap", "harmony runtime upgrade", "harmony runtime rollback":
		m["version"], m["to"] = pinnedVersions, pinnedVersions
	case "harmony launch":
		m["profile"] = completeProfiles
	}
	return m
}

// completeProfiles are the Skaffold profiles of the app the command would launch (its DIR
// argument, else the current folder).
func completeProfiles(_ *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
	dir := ""
	if len(args) > 0 {
		dir = args[0]
	}
	p, err := launch.Resolve(launch.Selection{Dir: dir, Command: "launch"})
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return p.SkaffoldProfiles(), cobra.ShellCompDirectiveNoFileComp
}

func fixed(values ...string) completeFunc {
	return func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
		return values, cobra.ShellCompDirectiveNoFileComp
	}
}

// pinnedVersions are the k3s versions of the newest trusted manifest, newest first.
func pinnedVersions(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
	m, err := currentManifest()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	def := m.DefaultRelease().Version.String()
	var out []cobra.Completion
	for _, v := range m.Versions() {
		if v == def {
			out = append(out, cobra.CompletionWithDesc(v, "default"))
			continue
		}
		out = append(out, v)
	}
	return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveKeepOrder
}

// completeContexts are the contexts of the kubeconfig the command would read (--kubeconfig, else
// KUBECONFIG, else ~/.kube/config), each with its cluster.
func completeContexts(cmd *cobra.Command, _ []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if f := cmd.Flags().Lookup("kubeconfig"); f != nil && f.Value.String() != "" {
		rules.ExplicitPath = f.Value.String()
	}
	cfg, err := rules.Load()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	names := make([]string, 0, len(cfg.Contexts))
	for name := range cfg.Contexts {
		names = append(names, name)
	}
	sort.Strings(names)
	out := make([]cobra.Completion, 0, len(names))
	for _, name := range names {
		desc := "cluster " + cfg.Contexts[name].Cluster
		if name == cfg.CurrentContext {
			desc += " (current)"
		}
		out = append(out, cobra.CompletionWithDesc(name, strings.TrimSpace(desc)))
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// walk calls fn on cmd and every command below it.
func walk(cmd *cobra.Command, fn func(*cobra.Command)) {
	fn(cmd)
	for _, c := range cmd.Commands() {
		walk(c, fn)
	}
}
