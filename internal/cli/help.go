package cli

import (
	"strings"

	"github.com/spf13/cobra"
)

// commandHelp is the help a command shows beyond its one-line Short: Long when the command's
// own says no more than Short, and its examples, written as gh writes them ("$ harmony …",
// a "#" line before what needs saying).
type commandHelp struct {
	long    string
	example string
}

// helps holds the help of every command, by command path; TestEveryCommandHasHelp keeps it whole.
var helps = map[string]commandHelp{
	"harmony": {example: `
# Install the local runtime, then launch the repository in the current folder
$ harmony bootstrap
$ harmony launch

# What harmony launched, and how it is doing
$ harmony status`},
	"harmony version": {
		long: "Print harmony's version, the commit it was built from, the build date, the Go version and the\nplatform. 'harmony --version' prints the first line only.",
		example: `
$ harmony version
$ harmony version -o json`},
	"harmony bootstrap": {example: `
# Install the pinned default k3s and wait until it is ready
$ harmony bootstrap

# A given pinned version (the list: harmony runtime versions)
$ harmony bootstrap --version v1.36.3+k3s1

# k3s in Docker, with the cluster's HTTP on localhost:8080
$ harmony bootstrap --runtime k3d --http-port 8080`},
	"harmony runtime": {
		long: "Inspect and manage the runtime harmony installed: its pinned versions, its status, start and\nstop, patch upgrades and rollbacks, and removal.",
		example: `
$ harmony runtime status
$ harmony runtime versions
$ harmony runtime upgrade --dry-run`},
	"harmony runtime versions": {
		long: "List the k3s versions the runtime manifest pins (the newest trusted one: built into harmony,\nor a newer signed one from the mirror), which of them is the default, whether each has a\nbinary, air-gap images and a node image for this platform, and the upgrade policy.",
		example: `
$ harmony runtime versions
$ harmony runtime versions -o json`},
	"harmony runtime status": {
		long: "Show the installed runtime: its version and policy, whether it runs and under which supervisor,\nwhether its API and node are healthy, a newer patch when there is one, an unfinished upgrade,\nthe agent's last run and the runtime manifest in use.",
		example: `
$ harmony runtime status
$ harmony runtime status -o json`},
	"harmony runtime start": {
		long: "Start the installed runtime (its service, or its k3d containers) and wait until its API and\nnode are ready. It does not install anything: that is 'harmony bootstrap'.",
		example: `
$ harmony runtime start`},
	"harmony runtime stop": {
		long: "Stop the runtime. Its data stays: 'harmony runtime start' brings back everything that ran.\nWith nothing installed it says so and succeeds.",
		example: `
$ harmony runtime stop`},
	"harmony runtime restart": {
		long: "Stop the runtime, then start it again and wait until its API and node are ready.",
		example: `
$ harmony runtime restart`},
	"harmony runtime upgrade": {example: `
# See what an upgrade would do, then do it
$ harmony runtime upgrade --dry-run
$ harmony runtime upgrade

# A given version (a minor upgrade only when asked)
$ harmony runtime upgrade --to v1.37.1+k3s1`},
	"harmony runtime rollback": {example: `
$ harmony runtime rollback
$ harmony runtime rollback --dry-run
$ harmony runtime rollback --abandon`},
	"harmony runtime uninstall": {
		long: "Stop the runtime harmony installed and remove it: binaries, service, links and the \"harmony\"\nkubeconfig context. Its data (cluster objects, volumes) stays unless --purge, which asks\nfirst. With nothing installed it says so and succeeds.",
		example: `
$ harmony runtime uninstall

# Also delete every cluster object and volume, without a prompt
$ harmony runtime uninstall --purge --yes`},
	"harmony runtime install-cli": {
		long: "Install the k3d CLI pinned in the runtime manifest, verified against its pinned digest, for\nthose who want to use it directly. harmony itself drives k3d through its library and never\nneeds it.",
		example: `
$ harmony runtime install-cli k3d`},
	"harmony kubeconfig": {
		long: "Print the kubeconfig of the local runtime, with its context named \"harmony\". bootstrap already\nmerges that context into your kubeconfig; this is for tools that want a file of their own.",
		example: `
$ harmony kubeconfig > harmony.yaml
$ KUBECONFIG=harmony.yaml kubectl get nodes`},
	"harmony launch": {example: `
# Launch the repository in the current folder (from any folder inside it)
$ harmony launch

# See what would be applied and what would change, without changing anything
$ harmony launch --dry-run

# Launch only these manifests, in a namespace of your choice
$ harmony launch -f deploy/app.yaml -n shop

# Launch on another cluster
$ harmony launch --context work

# Launch, then launch again on each save, with the services forwarded
$ harmony launch --watch`},
	"harmony down": {
		long: "Remove every object harmony launched for the project DIR belongs to (default: the current\ndirectory), and the inventory that lists them, then wait until they are gone. Objects harmony\ndid not create are never touched. CRDs from a Helm chart's crds/ folder are kept (as Helm\nkeeps them), and so is any CRD whose kind still has resources that are not the project's:\ndeleting a CRD deletes every resource of its kind.",
		example: `
$ harmony down
$ harmony down ~/src/shop --timeout 5m`},
	"harmony status": {
		long: "Show each object harmony launched for the project DIR belongs to (default: the current\ndirectory): its readiness and, when it is not ready, why.",
		example: `
$ harmony status
$ harmony status -o json`},
	"harmony list": {example: `
$ harmony list
$ harmony list -o json`},
	"harmony forward": {example: `
# Reach the services of this folder's app until Ctrl-C
$ harmony forward

# Another app of the repository
$ harmony forward services/api`},
	"harmony logs": {example: `
# Every workload of this folder's app, following new pods
$ harmony logs -f

# One workload's last 50 lines
$ harmony logs web --tail 50`},
	"harmony agent": {example: `
# The agent's settings, schedule and last run
$ harmony agent

# Run one cycle now
$ harmony agent --once`},
	"harmony agent enable": {
		long: "Turn auto-patching on: the agent applies the patches the policy allows, within the\nmaintenance window when one is set. The agent is scheduled if it is not.",
		example: `
$ harmony agent enable
$ harmony agent enable --window 02:00-05:00`},
	"harmony agent disable": {
		long: "Turn auto-patching off. The agent keeps checking the signed manifest and logs what it would\napply, so 'harmony agent log' still tells you when a patch is available.",
		example: `
$ harmony agent disable`},
	"harmony agent log": {
		long: "Show what the agent checked, decided and did at each run, newest last.",
		example: `
$ harmony agent log
$ harmony agent log -o json`},
	"harmony self-update": {example: `
$ harmony self-update

# Only say whether a newer release exists
$ harmony self-update --check

# Go back to an older release
$ harmony self-update --version v1.3.2 --yes`},
	"harmony doctor": {example: `
# Every check, with the fix of what is wrong
$ harmony doctor

# Only some checks; for k3s in Docker
$ harmony doctor cgroups ports
$ harmony doctor --runtime k3d

# For scripts: exit 1 when a check fails
$ harmony doctor -o json`},
	"harmony help": {example: `
$ harmony help launch
$ harmony help runtime status`},
	"harmony completion": {
		long: "Print the script that makes your shell complete harmony's commands, flags and their values\n(pinned versions, kubeconfig contexts, folders). Each shell's help says where to put it.",
		example: `
$ harmony completion bash > ~/.local/share/bash-completion/completions/harmony
$ harmony completion zsh > "${fpath[1]}/_harmony"
$ harmony completion fish > ~/.config/fish/completions/harmony.fish`},
	"harmony completion bash": {example: `
$ source <(harmony completion bash)`},
	"harmony completion zsh": {example: `
$ harmony completion zsh > "${fpath[1]}/_harmony"`},
	"harmony completion fish": {example: `
$ harmony completion fish | source`},
	"harmony completion powershell": {example: `
PS> harmony completion powershell | Out-String | Invoke-Expression`},
}

// applyHelp gives every command its examples, and a long help where its own says no more than
// its short line.
func applyHelp(root *cobra.Command) {
	root.InitDefaultHelpCmd() // cobra adds it only when it runs: add it now, so it gets its help too
	walk(root, func(cmd *cobra.Command) {
		h, ok := helps[cmd.CommandPath()]
		if !ok {
			return
		}
		if h.long != "" && len(strings.TrimSpace(cmd.Long)) <= len(cmd.Short) {
			cmd.Long = h.long
		}
		if h.example != "" {
			cmd.Example = indent(strings.TrimPrefix(h.example, "\n"))
		}
	})
}

func indent(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = "  " + l
		}
	}
	return strings.Join(lines, "\n")
}
