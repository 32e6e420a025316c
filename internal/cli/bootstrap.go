package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/NationTech/harmony-agent/bootstrap"
	"github.com/NationTech/harmony-agent/installer"
	"github.com/NationTech/harmony-agent/internal/buildinfo"
	"github.com/NationTech/harmony-agent/internal/hint"
	"github.com/NationTech/harmony-agent/manifests"
)

type bootstrapOptions struct {
	Runtime       string
	Version       string
	Airgap        bool
	Timeout       time.Duration
	SwitchContext bool
	HTTPPort      int
	HTTPSPort     int
	// Expose is --expose when given (nil: keep what the runtime has).
	Expose *bool
	// SkipChecks are the preflight checks not to run ("all": none).
	SkipChecks []string
}

func (o *bootstrapOptions) validate() error {
	if err := checkK3sVersion("version", &o.Version, true); err != nil {
		return err
	}
	if err := checkIDs("--skip-checks", o.SkipChecks); err != nil {
		return err
	}
	for _, p := range []int{o.HTTPPort, o.HTTPSPort} {
		if p < 0 || p > 65535 {
			return &usageError{fmt.Errorf("port %d: want 1-65535", p)}
		}
	}
	return checkTimeout(o.Timeout)
}

func newBootstrapCmd(g *globalOptions) *cobra.Command {
	opts := &bootstrapOptions{}
	var expose bool
	cmd := &cobra.Command{
		Use:   "bootstrap",
		Short: "Install and start the local Kubernetes runtime (k3s, or k3s in Docker with k3d)",
		Long: `Install the pinned k3s (verified against the digest built into harmony), start it and
wait until its API and node are ready, then add a "harmony" context to your kubeconfig.
Running it again on a healthy runtime does nothing.

With --runtime k3d (the default on macOS and Windows) k3s runs in Docker: one node container
from the k3s image pinned by digest (set HARMONY_REGISTRY to pull it from your own registry),
its data on the Docker volume k3d-harmony-data, the API on a free localhost port and the
cluster's HTTP and HTTPS on localhost (--http-port, --https-port).

With k3s, the cluster answers this machine only: a firewall rule harmony keeps (iptables' mangle
table) drops connections from the network to NodePorts, LoadBalancer Services, Traefik's 80 and
443, hostPorts, the API server and the kubelet. --expose takes it out, so the cluster answers on
every network interface as k3s does by default; --expose=false puts it back. Neither restarts k3s.

Before it installs anything, bootstrap runs the checks of 'harmony doctor' whose failure would
stop the runtime (cgroups, kernel modules, SELinux, nm-cloud-setup, ports, another Kubernetes,
disk, Docker's memory for k3d, proxy variables): a failing one stops it before any download, with its fix.
--skip-checks ID,... leaves checks out, for when you know better ("all": every one).`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("expose") {
				opts.Expose = &expose
			}
			if err := opts.validate(); err != nil {
				return err
			}
			return bootstrapRun(cmd.Context(), g, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Runtime, "runtime", "auto", "runtime: auto (k3s on Linux, k3d elsewhere), k3s or k3d")
	f.StringVar(&opts.Version, "version", "", "k3s version to install (default: the pinned default)")
	f.BoolVar(&opts.Airgap, "airgap", false, "also install the pinned air-gap image bundle, so the first start pulls nothing")
	f.DurationVar(&opts.Timeout, "timeout", bootstrap.DefaultTimeout, "how long to wait for the API server and the node")
	f.BoolVar(&opts.SwitchContext, "switch-context", false, "make harmony the current kubeconfig context even when another is set")
	f.IntVar(&opts.HTTPPort, "http-port", 0, "k3d: the localhost port for the cluster's HTTP (default 80)")
	f.IntVar(&opts.HTTPSPort, "https-port", 0, "k3d: the localhost port for the cluster's HTTPS (default 443)")
	f.StringSliceVar(&opts.SkipChecks, "skip-checks", nil, "preflight checks not to run, by id (see harmony doctor), or all")
	f.BoolVar(&expose, "expose", false, "k3s: answer on every network interface; --expose=false: this machine only again (a new k3s starts so; without the flag, nothing changes)")
	return cmd
}

// trust returns the manifest trust of this user with the keys built into the binary.
func trust() (manifests.Trust, error) {
	v, err := installer.NewVerifier(buildinfo.Keys())
	if err != nil {
		return manifests.Trust{}, err
	}
	return manifests.NewTrust(v)
}

// newRuntime returns the runtime bootstrap chooses for --runtime.
func newRuntime(g *globalOptions, name string) (bootstrap.Runtime, error) {
	t, err := trust()
	if err != nil {
		return nil, err
	}
	rt, err := bootstrap.New(name, bootstrap.Config{
		Home: t.Home, Trust: t, Out: g.Stderr, Quiet: g.Quiet,
		NoUpdateCheck: os.Getenv("HARMONY_NO_UPDATE_CHECK") != "",
	})
	if errors.Is(err, bootstrap.ErrUnknownRuntime) || errors.Is(err, bootstrap.ErrUnsupported) {
		return nil, &usageError{err}
	}
	return rt, err
}

func bootstrapRun(ctx context.Context, g *globalOptions, opts *bootstrapOptions) error {
	if err := checkMirror(); err != nil {
		return err
	}
	rt, err := newRuntime(g, opts.Runtime)
	if err != nil {
		return err
	}
	if why := rt.NeedsRoot("bootstrap"); why != "" {
		if opts.Expose != nil && rt.Name() == "k3s" {
			if st, err := rt.Status(ctx); err == nil && st.Installed {
				why = "change the firewall rules that keep the cluster on this machine"
			}
		}
		return rerunWithSudo(ctx, g, why,
			append([]string{"bootstrap", "--runtime", opts.Runtime, "--timeout", opts.Timeout.String()}, bootstrapExtraArgs(opts)...))
	}
	if err := checkHome(); err != nil {
		return err
	}
	// Where the install runs (as root for k3s: it reads what only root can), before it downloads.
	if err := preflightChecks(ctx, g, rt, opts); err != nil {
		return err
	}
	res, err := rt.Install(ctx, bootstrap.InstallOptions{
		Version: opts.Version, Airgap: opts.Airgap, Timeout: opts.Timeout, SwitchContext: opts.SwitchContext,
		HTTPPort: portString(opts.HTTPPort), HTTPSPort: portString(opts.HTTPSPort), Expose: opts.Expose,
	})
	if err != nil {
		return err
	}
	if res.AlreadyHealthy && opts.Expose != nil {
		fmt.Fprintf(g.out(), "%s %s is healthy\n", rt.Name(), res.Version)
	} else if res.AlreadyHealthy {
		fmt.Fprintf(g.out(), "%s %s is already installed and healthy: nothing to do\n", rt.Name(), res.Version)
	} else {
		fmt.Fprintf(g.out(), "%s %s is ready; kubeconfig context %q is in %s\n", rt.Name(), res.Version, bootstrap.ContextName, res.Kubeconfig)
	}
	if res.Available != "" {
		fmt.Fprintf(g.out(), "%s is available: harmony runtime upgrade\n", res.Available)
	}
	return nil
}

func portString(p int) string {
	if p == 0 {
		return ""
	}
	return strconv.Itoa(p)
}

func bootstrapExtraArgs(o *bootstrapOptions) []string {
	var args []string
	if o.Version != "" {
		args = append(args, "--version", o.Version)
	}
	if o.Airgap {
		args = append(args, "--airgap")
	}
	if o.SwitchContext {
		args = append(args, "--switch-context")
	}
	if o.HTTPPort != 0 {
		args = append(args, "--http-port", strconv.Itoa(o.HTTPPort))
	}
	if o.HTTPSPort != 0 {
		args = append(args, "--https-port", strconv.Itoa(o.HTTPSPort))
	}
	if o.Expose != nil {
		args = append(args, "--expose="+strconv.FormatBool(*o.Expose))
	}
	if len(o.SkipChecks) > 0 {
		args = append(args, "--skip-checks", strings.Join(o.SkipChecks, ","))
	}
	return args
}

// rerunWithSudo re-runs the privileged harmony command args as root, after telling the user
// exactly what and why. Only that step runs as root; the rest stays with the user.
func rerunWithSudo(ctx context.Context, g *globalOptions, why string, args []string) error {
	sudo, err := exec.LookPath("sudo")
	if err != nil {
		return noSudo(ctx, why, args)
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	target, err := bootstrap.UserKubeconfigPath()
	if err != nil {
		return err
	}
	fmt.Fprintf(g.Stderr, "harmony needs root to %s.\nRunning: sudo %s %s\n", why, self, strings.Join(args, " "))
	cmd := exec.CommandContext(ctx, sudo, sudoArgs(self, args)...)
	// Ctrl-C reaches the re-run too: let it undo its steps and exit, never kill it half-way.
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.Env = append(os.Environ(), bootstrap.UserKubeconfigEnv+"="+target) // root keeps its own cache and state (installer.Home)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, g.Stdout, g.Stderr
	if err := cmd.Run(); err != nil {
		return &silentError{err}
	}
	return nil
}

// sudoKeepEnv is what the privileged re-run keeps of the user's environment: harmony's own
// settings, and the proxy and CA settings its downloads need (both spellings of the proxy
// variables: many setups only have the lowercase ones). Nothing else crosses over.
var sudoKeepEnv = []string{bootstrap.UserKubeconfigEnv, installer.MirrorEnv, installer.HomeEnv, bootstrap.RootEnv,
	"HARMONY_NO_UPDATE_CHECK", "NO_COLOR",
	"HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "https_proxy", "http_proxy", "no_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR"}

// sudoArgs returns sudo's arguments to run harmony (self) with args, keeping sudoKeepEnv.
func sudoArgs(self string, args []string) []string {
	return append([]string{"--preserve-env=" + strings.Join(sudoKeepEnv, ","), self}, args...)
}

// silentError carries a failure already reported (by a child process) without printing it again.
type silentError struct{ err error }

func (s *silentError) Error() string { return s.err.Error() }
func (s *silentError) Unwrap() error { return s.err }

type runtimeStatusOptions struct{ Output outputFlag }

type runtimeUninstallOptions struct {
	Purge bool
	Yes   bool
}

func newRuntimeStatusCmd(g *globalOptions) *cobra.Command {
	opts := &runtimeStatusOptions{}
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the installed runtime: version, policy, process, API and node health, newer patch",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := opts.Output.validate(); err != nil {
				return err
			}
			k, err := newRuntime(g, "auto")
			if err != nil {
				return err
			}
			st, err := k.Status(cmd.Context())
			if err != nil {
				return err
			}
			if opts.Output.json() {
				return printJSON(g.Stdout, st)
			}
			if !st.Installed && st.ForeignInstall == "" {
				fmt.Fprintf(g.Stdout, "%s is not installed — run: harmony bootstrap\n", st.Runtime)
			}
			w := tabwriter.NewWriter(g.Stdout, 0, 0, 2, ' ', 0)
			row := func(k, v string) { fmt.Fprintf(w, "%s\t%s\n", k, v) }
			yes := map[bool]string{true: "yes", false: "no"}
			row("runtime", st.Runtime)
			row("installed", yes[st.Installed]+" "+st.Version)
			if st.ForeignInstall != "" {
				row("note", st.ForeignInstall)
			}
			row("policy", st.Policy)
			row("running", fmt.Sprintf("%s (%s)", yes[st.Running], st.Supervisor))
			row("API healthy", yes[st.APIHealthy])
			row("node ready", yes[st.NodeReady])
			switch st.Network {
			case "localhost":
				row("network", "answers this machine only")
			case "localhost-not-in-force":
				row("network", "should answer this machine only, but the firewall rules are not in: sudo harmony bootstrap --expose=false says why")
			case "every-interface":
				row("network", "answers on every network interface (harmony bootstrap --expose=false puts it back on this machine only)")
			case "every-interface-old":
				row("network", "answers on every network interface, as k3s did before harmony kept it on this machine (harmony bootstrap --expose=false keeps it here)")
			}
			if st.NewerPatch != "" {
				row("newer patch", st.NewerPatch+" available: harmony runtime upgrade")
			}
			if j := st.PendingSwitch; j != nil {
				row("unfinished", fmt.Sprintf("%s %s → %s (stopped at %s): harmony runtime rollback", j.Op, j.From, j.To, j.Phase))
			}
			if st.Agent != nil {
				printAgentStatus(w, *st.Agent)
			}
			lastSeen := "never"
			if !st.ManifestLastSeen.IsZero() {
				lastSeen = st.ManifestLastSeen.Local().Format(time.DateTime)
			}
			row("manifest", fmt.Sprintf("serial %d, expires %s, remote last seen %s", st.ManifestSerial, st.ManifestExpires.Format(time.DateOnly), lastSeen))
			for _, w := range st.Warnings {
				row("warning", w)
			}
			return w.Flush()
		},
	}
	opts.Output.bind(cmd, true)
	return cmd
}

func newRuntimeLifecycleCmd(g *globalOptions, name, short string, run func(ctx context.Context, rt bootstrap.Runtime) error) *cobra.Command {
	return &cobra.Command{
		Use:   name,
		Short: short,
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			rt, err := newRuntime(g, "auto")
			if err != nil {
				return err
			}
			if name == "stop" {
				if inst, err := rt.Detect(cmd.Context()); err == nil && !inst.Installed && inst.Foreign == "" {
					fmt.Fprintf(g.out(), "%s is not installed: nothing to stop\n", rt.Name())
					return nil
				}
			}
			if why := rt.NeedsRoot(name); why != "" {
				return rerunWithSudo(cmd.Context(), g, why, []string{"runtime", name})
			}
			if err := run(cmd.Context(), rt); err != nil {
				return err
			}
			fmt.Fprintf(g.out(), "%s: %s done\n", rt.Name(), name)
			return nil
		},
	}
}

func newRuntimeUninstallCmd(g *globalOptions) *cobra.Command {
	opts := &runtimeUninstallOptions{}
	cmd := &cobra.Command{
		Use:   "uninstall",
		Short: "Stop and remove the runtime harmony installed (--purge also removes its data)",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if opts.Purge && !opts.Yes {
				if !confirm(g, "--purge deletes every cluster object and volume under /var/lib/rancher/k3s. Continue? [y/N] ") {
					return hint.With(fmt.Errorf("uninstall --purge not confirmed"), "add --yes to confirm without a prompt")
				}
			}
			rt, err := newRuntime(g, "auto")
			if err != nil {
				return err
			}
			// With --purge, data an earlier uninstall kept (k3d's volume) is still to remove: the
			// runtime itself says when there is nothing.
			if inst, err := rt.Detect(cmd.Context()); err == nil && !inst.Installed && inst.Foreign == "" && !(opts.Purge && hasLeftovers(rt)) {
				fmt.Fprintf(g.out(), "%s is not installed: nothing to uninstall\n", rt.Name())
				return nil
			}
			if why := rt.NeedsRoot("uninstall"); why != "" {
				args := []string{"runtime", "uninstall"}
				if opts.Purge {
					args = append(args, "--purge", "--yes")
				}
				return rerunWithSudo(cmd.Context(), g, why, args)
			}
			if err := rt.Uninstall(cmd.Context(), opts.Purge); errors.Is(err, bootstrap.ErrNotInstalled) {
				fmt.Fprintf(g.out(), "%s is not installed: nothing to uninstall\n", rt.Name())
				return nil
			} else if err != nil {
				return err
			}
			fmt.Fprintf(g.out(), "%s uninstalled\n", rt.Name())
			return nil
		},
	}
	cmd.Flags().BoolVar(&opts.Purge, "purge", false, "also remove k3s's data and configuration")
	cmd.Flags().BoolVarP(&opts.Yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

// hasLeftovers reports data an uninstall without --purge kept: k3s's data and configuration
// directories, or (k3d, checked by its Uninstall) the data volume.
func hasLeftovers(rt bootstrap.Runtime) bool {
	k, ok := rt.(*bootstrap.K3s)
	if !ok {
		return true
	}
	for _, dir := range []string{k.Paths.DataDir(), k.Paths.ConfigDir()} {
		if _, err := os.Lstat(dir); err == nil {
			return true
		}
	}
	return false
}

// confirm asks on the terminal; without one (CI, pipes) the answer is no.
func confirm(g *globalOptions, question string) bool {
	fmt.Fprint(g.Stderr, question)
	var answer string
	if _, err := fmt.Fscanln(os.Stdin, &answer); err != nil {
		return false
	}
	return strings.EqualFold(answer, "y") || strings.EqualFold(answer, "yes")
}

func newKubeconfigCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "kubeconfig",
		Short: "Print the kubeconfig of the local runtime (context \"harmony\")",
		Args:  usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, err := newRuntime(g, "auto")
			if err != nil {
				return err
			}
			b, err := k.Kubeconfig(cmd.Context())
			if err != nil {
				return err
			}
			_, err = g.Stdout.Write(b)
			return err
		},
	}
}
