package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/NationTech/harmony-agent/bootstrap"
	"github.com/NationTech/harmony-agent/internal/hint"
)

// The messages here say, for the state the machine is in, the one next command that works:
// harmony's runtime not installed, stopped, or running without a context in the kubeconfig;
// root needed and no sudo; a kubeconfig that knows other clusters.

// runtimeState is harmony's own runtime as seen from here, without touching the network.
type runtimeState struct {
	name      string // k3s or k3d
	installed bool
	foreign   string // a runtime installed by something else
	version   string // installed, else the one bootstrap would install
	running   bool
	healthy   bool   // its API answers
	needsRoot string // why bootstrap needs root this process lacks ("" when it does not)
}

// probeRuntime reads the state of the runtime harmony would use ("auto").
func probeRuntime(ctx context.Context, g *globalOptions) (*runtimeState, error) {
	rt, err := newRuntime(&globalOptions{Quiet: true, Stdout: g.Stdout, Stderr: g.Stderr}, "auto")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st, err := rt.Status(ctx)
	if err != nil {
		return nil, err
	}
	s := &runtimeState{name: rt.Name(), installed: st.Installed, foreign: st.ForeignInstall, version: st.Version,
		running: st.Running, healthy: st.APIHealthy, needsRoot: rt.NeedsRoot("bootstrap")}
	if !s.installed {
		s.version = ""
		if m, err := currentManifest(); err == nil {
			s.version = m.K3s.Default.String()
		}
	}
	return s, nil
}

// useAsIs are the flags that point harmony at a runtime another installer put in its way: the
// kubeconfig k3s writes, or the context k3d adds for its cluster named harmony.
func (s *runtimeState) useAsIs() []string {
	if s.name == "k3d" {
		return []string{"--context", "k3d-" + bootstrap.ContextName}
	}
	return []string{"--kubeconfig", "/etc/rancher/k3s/k3s.yaml"}
}

// sudoAvailable reports whether harmony can ask sudo for the steps that need root.
func sudoAvailable() bool {
	_, err := exec.LookPath("sudo")
	return err == nil
}

// dockerAvailable reports whether a Docker engine answers (k3d can run k3s in it).
func dockerAvailable(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	e, err := bootstrap.DiagnoseDocker(ctx)
	if err != nil {
		return false
	}
	e.Client.Close()
	return true
}

// rootNote is what a step that needs root adds to the sentence announcing it.
func (s *runtimeState) rootNote() string {
	switch {
	case s.needsRoot == "":
		return ""
	case sudoAvailable():
		return " — needs root (harmony asks sudo for that step)"
	}
	return " — needs root, and sudo is not available"
}

// asRoot is the command that runs harmony's args as root when that is needed and sudo (which
// harmony asks by itself) is not there.
func (s *runtimeState) asRoot(args string) string {
	if s.needsRoot == "" || sudoAvailable() {
		return "harmony " + args
	}
	return suCommand(strings.Fields(args)...)
}

// suCommand runs harmony's args as root through su, naming this very program (root's PATH may
// not hold it).
func suCommand(args ...string) string {
	self, err := os.Executable()
	if err != nil {
		self = "harmony"
	}
	return suLine(self, args...)
}

// suLine is `su -c` running self with args: quoted for su's shell, then for the user's.
func suLine(self string, args ...string) string {
	return "su -c " + hint.Command(hint.Command(append([]string{self}, args...)...))
}

// firstStep says what launch does before applying anything when harmony's runtime does not
// answer, and the next command: the one that does that step alone, then again (the dry run as
// typed) to check the objects against the cluster.
func (s *runtimeState) firstStep(again string) (sentence, next string) {
	var step, command string
	switch {
	case s.foreign != "":
		return fmt.Sprintf("launch would stop there: %s, and harmony never replaces it", s.foreign),
			"to use it as it is: " + again + " " + strings.Join(s.useAsIs(), " ")
	case !s.installed && s.name == "k3d":
		step, command = fmt.Sprintf("run k3s %s in Docker (k3d)", s.version), "harmony bootstrap"
	case !s.installed:
		step, command = fmt.Sprintf("install k3s %s%s", s.version, s.rootNote()), s.asRoot("bootstrap")
	case !s.running:
		step, command = fmt.Sprintf("start %s %s%s", s.name, s.version, s.rootNote()), s.asRoot("runtime start")
	case s.healthy:
		step, command = fmt.Sprintf("add the %q context of %s %s to your kubeconfig", bootstrap.ContextName, s.name, s.version), "harmony bootstrap"
	default:
		step, command = fmt.Sprintf("wait for %s %s, which runs but does not answer", s.name, s.version), s.asRoot("runtime restart")
	}
	return "launch would first " + step, fmt.Sprintf("%s, then %s checks these against the cluster", command, again)
}

// kubeContexts lists the contexts of the kubeconfig the user would name with --context
// (--kubeconfig's, else KUBECONFIG's or ~/.kube/config's), leaving out harmony's own.
func kubeContexts(kubeconfig string) []string {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if kubeconfig != "" {
		rules.ExplicitPath = kubeconfig
	}
	cfg, err := rules.Load()
	if err != nil {
		return nil
	}
	var names []string
	for name := range cfg.Contexts {
		if name != bootstrap.ContextName || kubeconfig != "" {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

// contextHint names the other clusters the kubeconfig knows ("" when none). Never as a command
// to paste: that would launch into whatever cluster comes first, a work cluster included.
func contextHint(command, kubeconfig string) string {
	names := kubeContexts(kubeconfig)
	if len(names) == 0 {
		return ""
	}
	return fmt.Sprintf("or, knowingly, another cluster your kubeconfig knows (%s): %s --context NAME", strings.Join(names, ", "), command)
}

// errNothingInstalled means harmony's runtime is not installed, so nothing can be launched.
var errNothingInstalled = errors.New("is not installed")

// runtimeDown is the error of a command that needs harmony's runtime when it does not answer:
// it keeps the state found, so a dry run can say what launch would do first.
type runtimeDown struct {
	state *runtimeState // nil when it could not be read
	err   error
}

func (r *runtimeDown) Error() string { return r.err.Error() }
func (r *runtimeDown) Unwrap() error { return r.err }

// notRunning is the error of status, down and a dry run (which never bootstrap) when harmony's
// runtime does not answer: each hint is the command that works in that state.
//
// command is the command run, on the cluster its argument names (nil: harmony's runtime).
func notRunning(ctx context.Context, g *globalOptions, command func(cluster []string, flags ...string) string, cause error) error {
	s, err := probeRuntime(ctx, g)
	if err != nil {
		// Why the runtime cannot even be looked at (k3d: no Docker engine) comes with its fix.
		return &runtimeDown{err: fmt.Errorf("harmony's runtime is not running: %w", err)}
	}
	var hints []string
	var e error
	switch {
	case s.foreign != "":
		e = fmt.Errorf("harmony's runtime is not installed: %s, and harmony never replaces it", s.foreign)
		hints = append(hints, "to use it as it is: "+command(s.useAsIs()))
	case !s.installed:
		e = fmt.Errorf("%s %w: nothing is launched", s.name, errNothingInstalled)
		hints = append(hints, "install it: "+s.asRoot("bootstrap")+" (harmony launch installs it too)")
	case !s.running:
		e = fmt.Errorf("%s %s is installed but not running", s.name, s.version)
		hints = append(hints, "start it: "+s.asRoot("runtime start"))
	case s.healthy:
		e = fmt.Errorf("%s %s is running, but your kubeconfig has no %q context: %w", s.name, s.version, bootstrap.ContextName, cause)
		hints = append(hints, "write it there again: harmony bootstrap")
	default:
		e = fmt.Errorf("%s %s is running but its API does not answer: %w", s.name, s.version, cause)
		hints = append(hints, "restart it: "+s.asRoot("runtime restart"))
	}
	if h := contextHint(command(nil), ""); h != "" {
		hints = append(hints, h)
	}
	return &runtimeDown{state: s, err: hint.With(e, hints...)}
}

// unreachable is the error for a cluster named with --kubeconfig/--context that cannot be used;
// command is the command run, on the cluster its argument names (nil: harmony's runtime).
func unreachable(command func(cluster []string, flags ...string) string, kubeconfig, context string, cause error) error {
	if kubeconfig != "" {
		if _, err := os.Stat(kubeconfig); errors.Is(err, fs.ErrNotExist) {
			return &usageError{hint.With(fmt.Errorf("--kubeconfig %s: no such file", kubeconfig),
				"name an existing kubeconfig file, or drop --kubeconfig to use harmony's own runtime: "+command(nil))}
		}
	}
	names := kubeContexts(kubeconfig)
	var hints []string
	switch {
	case context == bootstrap.ContextName && !slices.Contains(names, context):
		// Never another context here: pasting it would launch into a work cluster.
		hints = append(hints, fmt.Sprintf("the %q context is written by: harmony bootstrap (it installs and starts harmony's runtime)", context))
	case context != "" && len(names) == 0:
		hints = append(hints, "no kubeconfig context exists")
	case context != "" && !slices.Contains(names, context):
		hints = append(hints, fmt.Sprintf("the contexts that exist: %s (--context NAME picks one)", strings.Join(names, ", ")))
	default:
		hints = append(hints, "check it with: kubectl cluster-info"+kubectlFlags(kubeconfig, context))
	}
	hints = append(hints, "or drop --kubeconfig/--context to use harmony's own runtime: "+command(nil))
	return hint.With(fmt.Errorf("cluster unreachable: %w", cause), hints...)
}

func kubectlFlags(kubeconfig, context string) string {
	s := ""
	if kubeconfig != "" {
		s += " " + hint.Command("--kubeconfig", kubeconfig)
	}
	if context != "" {
		s += " " + hint.Command("--context", context)
	}
	return s
}

// noSudo is the error of a step that needs root when sudo is not there: run it as root, or
// (bootstrap, with a Docker engine answering) run k3s in Docker instead.
func noSudo(ctx context.Context, why string, args []string) error {
	hints := []string{"run it as root: " + suCommand(args...)}
	if len(args) > 0 && args[0] == "bootstrap" && dockerAvailable(ctx) {
		hints = append(hints, "or run k3s in Docker, which needs no root: harmony bootstrap --runtime k3d")
	}
	return hint.With(fmt.Errorf("harmony needs root to %s, and sudo is not available", why), hints...)
}

// quoteArgs quotes the arguments a shell would split or expand, for a command line to copy.
func quoteArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = hint.Command(a)
	}
	return out
}
