package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/docker/docker/client"
	"github.com/spf13/cobra"
	"golang.org/x/term"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/NationTech/harmony-agent/bootstrap"
	"github.com/NationTech/harmony-agent/installer"
	"github.com/NationTech/harmony-agent/internal/hint"
	"github.com/NationTech/harmony-agent/internal/state"
	"github.com/NationTech/harmony-agent/launch"
	"github.com/NationTech/harmony-agent/manifests"
)

// clusterOptions pick the cluster: harmony's own runtime unless --kubeconfig/--context say otherwise.
type clusterOptions struct {
	Kubeconfig string
	Context    string
	Namespace  string
	Output     outputFlag

	command string          // launch, status or down: the hints name it
	proj    *launch.Project // the project resolved, for the commands hints name
	// mode are the flags that change what the command does (--dry-run, -o): every hint that
	// names the command again keeps them, so pasting one never turns a dry run into a launch.
	mode []string
}

// clusterFlags are --kubeconfig and --context as given, for hints that repeat the command.
func (c *clusterOptions) clusterFlags() []string {
	var out []string
	if c.Kubeconfig != "" {
		out = append(out, "--kubeconfig", c.Kubeconfig)
	}
	if c.Context != "" {
		out = append(out, "--context", c.Context)
	}
	return out
}

// commandOn is the command being run, for the project as the user named it (its folder, -n),
// on cluster (--kubeconfig/--context flags; nil: harmony's runtime), for a hint.
func (c *clusterOptions) commandOn(cluster []string, flags ...string) string {
	flags = append(append([]string{}, c.mode...), flags...)
	if c.proj == nil {
		return hint.Command(append(append([]string{"harmony", c.command}, flags...), cluster...)...)
	}
	return c.proj.CommandOn(cluster, c.command, flags...)
}

func (c *clusterOptions) bind(cmd *cobra.Command) {
	c.command = cmd.Name()
	f := cmd.Flags()
	f.StringVar(&c.Kubeconfig, "kubeconfig", "", "use this kubeconfig instead of harmony's runtime")
	f.StringVar(&c.Context, "context", "", "use this kubeconfig context instead of harmony's runtime")
	f.StringVarP(&c.Namespace, "namespace", "n", "", "namespace for objects that name none (default: harmony.yaml's, else the project folder's name)")
	c.Output.bind(cmd, false)
}

func (c *clusterOptions) validate() error {
	if err := c.Output.validate(); err != nil {
		return err
	}
	if c.Output.Format != "" {
		c.mode = append(c.mode, "-o", c.Output.Format)
	} else if c.Output.JSON {
		c.mode = append(c.mode, "-o", "json")
	}
	return checkNamespace(c.Namespace)
}

func (c *clusterOptions) explicit() bool { return c.Kubeconfig != "" || c.Context != "" }

// restConfig loads the chosen cluster's config. Without --kubeconfig/--context it is the
// "harmony" context of the user's kubeconfig.
func (c *clusterOptions) restConfig() (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	overrides := &clientcmd.ConfigOverrides{CurrentContext: c.Context}
	if c.Kubeconfig != "" {
		rules.ExplicitPath = c.Kubeconfig
	}
	if !c.explicit() {
		path, err := bootstrap.UserKubeconfigPath()
		if err != nil {
			return nil, err
		}
		rules = &clientcmd.ClientConfigLoadingRules{ExplicitPath: path}
		overrides.CurrentContext = bootstrap.ContextName
	}
	return clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
}

// reachable asks the API server's /readyz, briefly.
func reachable(ctx context.Context, cfg *rest.Config) error {
	c := rest.CopyConfig(cfg)
	c.Timeout = 3 * time.Second
	return bootstrap.APIReady(ctx, c)
}

// cluster returns a config for a reachable cluster; when harmony's runtime is not up and
// mayBootstrap, it bootstraps it first (with the same progress display as harmony bootstrap).
func (c *clusterOptions) cluster(ctx context.Context, g *globalOptions, mayBootstrap bool) (*rest.Config, error) {
	cfg, err := c.restConfig()
	if err == nil {
		if err = reachable(ctx, cfg); err == nil {
			return cfg, nil
		}
	}
	if c.explicit() {
		return nil, unreachable(c.commandOn, c.Kubeconfig, c.Context, err)
	}
	if !mayBootstrap {
		return nil, notRunning(ctx, g, c.commandOn, err)
	}
	if s, perr := probeRuntime(ctx, g); perr == nil && s.foreign != "" {
		// Bootstrapping would refuse it too, with a hint that cannot name the project.
		return nil, notRunning(ctx, g, c.commandOn, err)
	}
	fmt.Fprintln(g.Stderr, "harmony's runtime is not running: bootstrapping it first")
	if err := bootstrapRun(ctx, g, &bootstrapOptions{Runtime: "auto", Timeout: bootstrap.DefaultTimeout}); err != nil {
		return nil, err
	}
	if cfg, err = c.restConfig(); err != nil {
		return nil, err
	}
	return cfg, reachable(ctx, cfg)
}

type launchOptions struct {
	clusterOptions
	Files   []string
	DryRun  bool
	Adopt   bool
	NoWait  bool
	Timeout time.Duration
	// AllowRemote lets launch fetch what the repository refers to remotely (kustomize remote
	// resources; a chart's dependencies that are not vendored).
	AllowRemote bool
	// Profile activates a skaffold.yaml profile.
	Profile string
	// Allow are the risks allowed (--allow): see launch.Risk.
	Allow []string
	risks []launch.Risk
	// RenderTimeout, RenderMemory (MiB) and MaxObjects bound rendering (launch.RenderLimits).
	RenderTimeout time.Duration
	RenderMemory  uint64
	MaxObjects    int
	// Verbose prints each object's state as it changes while waiting.
	Verbose bool
	// Watch launches again on each change; NoForward leaves its services unforwarded.
	Watch     bool
	NoForward bool
	// Set and Values are a chart's --set and --values, as Helm spells them.
	Set    []string
	Values []string
}

func newLaunchCmd(g *globalOptions) *cobra.Command {
	opts := &launchOptions{}
	cmd := &cobra.Command{
		Use:   "launch [DIR]",
		Short: "Find a repository's manifests, apply them and wait until they run",
		// Words other tools use for it: 'harmony up' answers "Did you mean this? launch".
		SuggestFor: []string{"up", "deploy", "apply", "run", "dev"},
		Long: `Launch the app DIR (default: the current directory) belongs to: an app is a repository (its
git repository, else the folder holding harmony.yaml, else DIR itself) plus a path: DIR when it
holds something deployable, else the nearest such folder above it, else the repository. The
usual manifests folders (k8s/, deploy/, charts/, …) belong to the app above them. Each app has
its own namespace and inventory: two apps of a monorepo launch side by side.
Find what to deploy in the app's folder: -f, else harmony.yaml, else what skaffold.yaml names, else a root
kustomization.yaml, else a manifests/ (deploy/, k8s/, …) folder, else a scan for Kubernetes
YAML. Images the project builds itself (skaffold.yaml's build.artifacts, harmony.yaml's
images) are built and substituted before anything is applied: on k3s by BuildKit, straight into
k3s's containerd (harmony's buildkitd, or the daemon BUILDKIT_HOST names); on k3d (or k3s without
a BuildKit daemon) with Docker, then loaded into the runtime. They are named
harmony.invalid/NAME:harmony-HASH: no registry serves that name, so a node that lost one never
pulls someone else's image (launch again to build or load it again).
Make sure the runtime is up (bootstrapping it when needed), check every object with a
server-side dry run, apply what changed with server-side apply, remove what was deleted since
the last launch, wait until everything is ready, and print how to reach it.
An object that already exists and is not this project's stops the launch before anything is
written; --adopt takes over those nobody owns (never another project's or a Helm release's).
What the objects ask for beyond the project's own namespaces (host-access: pods beyond Pod
Security's baseline, host paths; cluster-wide: cluster roles and bindings, admission webhooks;
other-namespaces: objects in namespaces it did not create) is listed before anything is written
and applied only with your yes on a terminal or --allow; the namespaces a project creates
enforce Pod Security's baseline.`,
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := opts.validate(); err != nil {
				return err
			}
			if opts.Watch && (opts.DryRun || opts.Output.json() || opts.Output.yaml()) {
				return &usageError{errors.New("--watch launches and keeps launching: not with --dry-run or -o")}
			}
			if opts.NoForward && !opts.Watch {
				return &usageError{errors.New("--no-forward goes with --watch (harmony launch forwards nothing otherwise)")}
			}
			if opts.Output.yaml() && !opts.DryRun {
				return &usageError{errors.New("-o yaml prints what a dry run would apply: add --dry-run")}
			}
			if opts.DryRun {
				opts.mode = append(opts.mode, "--dry-run")
			}
			risks, err := launch.ParseRisks(opts.Allow)
			if err != nil {
				return &usageError{err}
			}
			opts.risks = risks
			if opts.RenderTimeout <= 0 || opts.RenderMemory == 0 || opts.MaxObjects <= 0 {
				return &usageError{errors.New("--render-timeout, --render-memory and --max-objects must be positive (e.g. --render-timeout 5m)")}
			}
			if !cmd.Flags().Changed("timeout") {
				opts.Timeout = 0 // harmony.yaml's, else the default
			} else if err := checkTimeout(opts.Timeout); err != nil {
				return err
			}
			return launchRun(cmd.Context(), g, opts, dirArg(args))
		},
	}
	opts.bind(cmd)
	opts.Output.YAML = true
	cmd.Flags().Lookup("output").Usage = "output format: json, or yaml with --dry-run (the objects it would apply, images rewritten, as helm template prints them)"
	f := cmd.Flags()
	f.StringArrayVarP(&opts.Files, "filename", "f", nil, "launch these files or folders of the project instead of discovering (relative to DIR, else to the project root)")
	f.BoolVar(&opts.DryRun, "dry-run", false, "show what was found and what would change (create/update/unchanged/prune); change nothing")
	f.BoolVar(&opts.Adopt, "adopt", false, "take over existing objects nobody owns (no inventory, no Helm release, no controller)")
	f.BoolVar(&opts.NoWait, "no-wait", false, "do not wait for readiness")
	f.DurationVar(&opts.Timeout, "timeout", launch.DefaultTimeout, "how long to wait for readiness (default: harmony.yaml's timeout, else 5m)")
	f.BoolVar(&opts.AllowRemote, "allow-remote", false, "let kustomizations use URL and git resources, bases and components (fetched with a time and size limit), and fetch a chart's dependencies that are not vendored (the versions Chart.lock pins)")
	f.StringVarP(&opts.Profile, "profile", "p", "", "activate this profile of the project's skaffold.yaml")
	f.DurationVar(&opts.RenderTimeout, "render-timeout", launch.DefaultRenderTimeout, "stop rendering manifests or a chart after this long")
	f.Uint64Var(&opts.RenderMemory, "render-memory", launch.DefaultRenderMemory>>20, "stop rendering when it needs more than this many MiB of memory")
	f.IntVar(&opts.MaxObjects, "max-objects", launch.DefaultMaxObjects, "refuse a rendering of more objects than this")
	f.StringSliceVar(&opts.Allow, "allow", nil, "risks to allow: host-access, cluster-wide, other-namespaces")
	f.BoolVarP(&opts.Verbose, "verbose", "v", false, "print every object's state as it changes while waiting (default: the count, and what fails)")
	f.BoolVarP(&opts.Watch, "watch", "w", false, "after the launch, launch again on each change of the repository's files (and forward its services) until Ctrl-C")
	f.BoolVar(&opts.NoForward, "no-forward", false, "with --watch: do not forward the services to this machine")
	f.StringArrayVar(&opts.Set, "set", nil, "a chart's value, as helm spells it: key=value (repeat it; merged last)")
	f.StringArrayVar(&opts.Values, "values", nil, "a chart's values file (repeat it; merged in order, over the chart's and harmony.yaml's)")
	return cmd
}

func dirArg(args []string) string {
	if len(args) == 1 {
		return args[0]
	}
	return ""
}

func launchRun(ctx context.Context, g *globalOptions, opts *launchOptions, dir string) error {
	sel, err := selection("launch", dir, opts.Files, opts.Namespace)
	if err != nil {
		return err
	}
	sel.Profile = opts.Profile
	sel.Cluster = opts.clusterFlags()
	if err := launch.CheckSet(opts.Set); err != nil {
		return &usageError{err}
	}
	req := launch.Request{
		Selection: sel, Render: launch.RenderOptions{AllowRemote: opts.AllowRemote},
		Limits: launch.RenderLimits{Timeout: opts.RenderTimeout, MaxMemory: opts.RenderMemory << 20, MaxObjects: opts.MaxObjects},
		Set:    opts.Set, KubeVersion: pinnedKubeVersion(), ChartCache: chartCache(),
		Launch:      launch.Options{DryRun: opts.DryRun, Adopt: opts.Adopt, NoWait: opts.NoWait, Timeout: opts.Timeout, Allow: opts.risks, Verbose: opts.Verbose},
		ObjectsOnly: opts.Output.yaml(), ExplicitCluster: opts.explicit(),
	}
	if len(opts.Files) == 0 && len(sel.Manifests) == 1 {
		req.Reason = "the file " + dir
	}
	for _, name := range opts.Values {
		vf, err := launch.ReadValuesFile(name)
		if err != nil {
			return &usageError{err}
		}
		req.ValuesFiles = append(req.ValuesFiles, vf)
	}
	out := opts.Output.chatter(g)
	live := false
	if f, ok := g.Stderr.(*os.File); ok && !opts.Output.json() && !g.Quiet {
		live = term.IsTerminal(int(f.Fd()))
	}
	sink := launch.Sink{Progress: out, Warnings: g.Stderr, Live: live, Confirm: askPrivileges(g, opts)}
	if opts.Watch {
		return watchRun(ctx, g, opts, req, sink)
	}
	res, err := launch.Run(ctx, req, launchHost(g, opts), sink)
	if res != nil {
		opts.proj = res.Project
	}
	var ue *launch.UsageError
	if errors.As(err, &ue) {
		return &usageError{ue.Err}
	}
	if err == nil && opts.Output.yaml() {
		return launch.PrintYAML(g.Stdout, res.Project.Namespace, res.Objects)
	}
	if err == nil && res.NoCluster != nil {
		return printUnchecked(g, opts, out, res)
	}
	if res != nil && res.Report != nil && opts.Output.json() {
		if jerr := printJSON(g.Stdout, res.Output(opts.DryRun)); jerr != nil {
			return jerr
		}
	}
	if err != nil {
		return err
	}
	if opts.Output.json() {
		return nil
	}
	rep, proj := res.Report, res.Project
	if opts.DryRun {
		answer := dryRunAnswer(g, out)
		launch.PrintImages(answer, res.Images)
		launch.PrintPlan(answer, rep.Plan)
		launch.PrintPrivileges(answer, rep.Privileges, opts.risks, func(flags ...string) string { return proj.Command("launch", flags...) })
		fmt.Fprintln(answer, "dry run: nothing was changed")
		return nil
	}
	launch.PrintSummary(out, rep, proj.Command("forward"))
	if res.Chart != nil && res.Chart.Chart.Notes != "" {
		fmt.Fprintf(out, "\nNOTES:\n%s\n", printable(res.Chart.Chart.Notes))
	}
	return nil
}

// launchHost is what launch.Run needs from this machine: the cluster (bootstrapping harmony's
// runtime when it may), Docker, the way into the runtime, the privileges accepted before.
func launchHost(g *globalOptions, opts *launchOptions) launch.Host {
	return launch.Host{
		Cluster: func(ctx context.Context, p *launch.Project, mayBootstrap bool) (*rest.Config, error) {
			opts.proj = p // the hints name it
			return opts.cluster(ctx, g, mayBootstrap)
		},
		Docker: func(ctx context.Context) (client.APIClient, error) {
			e, err := bootstrap.DiagnoseDocker(ctx)
			if err != nil {
				return nil, err
			}
			return e.Client, nil
		},
		Loader: func(ctx context.Context, docker client.APIClient, dryRun bool) (launch.ImageLoader, error) {
			rt, err := newRuntime(g, "auto")
			if err != nil {
				return nil, err
			}
			if dryRun && rt.NeedsRoot("load images into") != "" {
				return nil, nil // a dry run never asks for sudo: the runtime is not asked what it has
			}
			return bootstrap.ImageStoreOf(ctx, rt, docker)
		},
		BuildKit: func(ctx context.Context, dryRun bool) (*launch.BuildKitd, error) {
			rt, err := newRuntime(g, "auto")
			if err != nil {
				return nil, err
			}
			return runtimeBuildKit(rt, dryRun), nil
		},
		Accepted: acceptedPrivileges,
		Remember: rememberPrivileges,
	}
}

// runtimeBuildKit is the k3s runtime's builder: the BuildKit daemon BUILDKIT_HOST names, else
// harmony's own when its socket is there; nil (Docker builds, then k3s imports) otherwise, and
// on k3d. A dry run that would need sudo to list k3s's images does not list them.
func runtimeBuildKit(rt bootstrap.Runtime, dryRun bool) *launch.BuildKitd {
	k, ok := rt.(*bootstrap.K3s)
	if !ok {
		return nil
	}
	bk := &launch.BuildKitd{Address: os.Getenv(launch.BuildKitHostEnv)}
	if bk.Address == "" {
		sock := k.Paths.BuildKitSocket()
		if _, err := os.Stat(sock); err != nil {
			return nil
		}
		bk.Address = "unix://" + sock
	}
	if !dryRun || rt.NeedsRoot("list the images of") == "" {
		bk.Store = bootstrap.K3sImageList{K3s: k}
	}
	return bk
}

// dryRunAnswer is where a dry run prints its plan: it is the answer the user asked for, so -q
// (which silences progress, out) never hides it.
func dryRunAnswer(g *globalOptions, out io.Writer) io.Writer {
	if out == io.Discard {
		return g.Stdout
	}
	return out
}

// askPrivileges shows what the repository asks for beyond its own namespaces and asks the user,
// on a terminal only: a launch from a script, CI or a pipe applies none of it without --allow.
func askPrivileges(g *globalOptions, opts *launchOptions) func([]launch.Privilege) (bool, error) {
	f, ok := g.Stderr.(*os.File)
	if !ok || opts.Output.json() || !term.IsTerminal(int(os.Stdin.Fd())) || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return func(asked []launch.Privilege) (bool, error) {
		fmt.Fprintln(g.Stderr, "this repository asks for more than its own namespaces:")
		for _, pr := range asked {
			fmt.Fprintf(g.Stderr, "  %s\n", printable(pr.String()))
		}
		return confirm(g, "launching it gives it all of the above (asked again only when what it asks for changes). Launch it? [y/N] "), nil
	}
}

// acceptedPrivileges are the privileges the user allowed this project before (state.json).
func acceptedPrivileges(p *launch.Project) []string {
	home, err := installer.Home()
	if err != nil {
		return nil
	}
	s, err := state.Load(home)
	if err != nil {
		return nil
	}
	return s.AcceptedPrivileges[p.InventoryID]
}

// rememberPrivileges records what the project was allowed, so the next launch asks only for
// what changed. A failure to record only means asking again.
func rememberPrivileges(ctx context.Context, p *launch.Project, privs []launch.Privilege) {
	home, err := installer.Home()
	if err != nil {
		return
	}
	keys := make([]string, len(privs))
	for i, pr := range privs {
		keys[i] = pr.Key()
	}
	_ = state.Update(context.WithoutCancel(ctx), home, func(s *state.State) error {
		if s.AcceptedPrivileges == nil {
			s.AcceptedPrivileges = map[string][]string{}
		}
		s.AcceptedPrivileges[p.InventoryID] = keys
		return nil
	})
}

// chartCache is where fetched chart dependencies are cached: in HARMONY_HOME's cache.
func chartCache() string {
	home, err := installer.Home()
	if err != nil {
		return ""
	}
	return filepath.Join(home, "cache", "helm")
}

// pinnedKubeVersion is the Kubernetes version of the runtime harmony installs by default.
func pinnedKubeVersion() string {
	m, err := manifests.Load()
	if err != nil {
		return ""
	}
	return m.DefaultRelease().Version.String()
}

// printUnchecked is a dry run without a cluster: what launch would do first (down says why no
// cluster answers), then the images it would build and the objects that would be applied,
// which no server has checked.
func printUnchecked(g *globalOptions, opts *launchOptions, out io.Writer, res *launch.Result) error {
	down, rep := res.NoCluster, res.Report
	again := "harmony " + strings.Join(quoteArgs(g.Args), " ")
	var next []string
	var rd *runtimeDown
	if errors.As(down, &rd) && rd.state != nil {
		sentence, n := rd.state.firstStep(again)
		fmt.Fprintf(out, "no cluster is running: %s\n", sentence)
		next = []string{n}
	} else {
		fmt.Fprintf(out, "no cluster is running: %s\n", printable(fmt.Sprint(down)))
		next = hint.Of(down)
	}
	if opts.Output.json() {
		return printJSON(g.Stdout, res.Output(true)) // no engine: versions as the objects give them
	}
	answer := dryRunAnswer(g, out)
	fmt.Fprintln(answer, "what it would apply, not checked by a server:")
	launch.PrintImages(answer, res.Images)
	launch.PrintPlan(answer, rep.Plan)
	launch.PrintPrivileges(answer, rep.Privileges, opts.risks, func(flags ...string) string { return opts.proj.Command("launch", flags...) })
	fmt.Fprintln(answer, "dry run: nothing was changed")
	for _, n := range next {
		fmt.Fprintf(out, "next: %s\n", printable(n))
	}
	if h := contextHint(again, ""); h != "" {
		fmt.Fprintln(out, printable(h))
	}
	return nil
}

type downOptions struct {
	clusterOptions
	Timeout time.Duration
}

func newDownCmd(g *globalOptions) *cobra.Command {
	opts := &downOptions{}
	cmd := &cobra.Command{
		Use:        "down [DIR]",
		Short:      "Remove everything harmony launched for a repository",
		SuggestFor: []string{"delete", "destroy", "remove", "rm", "undeploy", "stop"},
		Args:       usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkTimeout(opts.Timeout); err != nil {
				return err
			}
			proj, eng, err := opts.project(cmd.Context(), g, args)
			out := opts.Output.chatter(g)
			var rd *runtimeDown
			if errors.As(err, &rd) && errors.Is(err, errNothingInstalled) {
				fmt.Fprintf(out, "%s is not installed: nothing to take down\n", rd.state.name)
				if opts.Output.json() {
					return printJSON(g.Stdout, launch.EmptyOutput("down", opts.proj))
				}
				return nil
			}
			if err != nil {
				return err
			}
			steps, err := eng.Down(cmd.Context(), proj, opts.Timeout, out)
			var nl *launch.NotLaunchedError
			if errors.As(err, &nl) && len(nl.Elsewhere) == 0 && len(nl.Apps) == 0 && nl.RepositoryNamespace == "" {
				// Nothing of the project to remove is what down is for: done, as with no runtime.
				fmt.Fprintf(out, "%s: nothing to take down\n", printable(nl.Error()))
				if opts.Output.json() {
					return printJSON(g.Stdout, launch.EmptyOutput("down", opts.proj))
				}
				return nil
			}
			if opts.Output.json() && steps != nil {
				_ = printJSON(g.Stdout, eng.DownOutput(proj, steps))
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(out, "removed what harmony launched for %s in namespace %s\n", printable(proj.App), proj.Namespace)
			return nil
		},
	}
	opts.bind(cmd)
	cmd.Flags().DurationVar(&opts.Timeout, "timeout", 2*time.Minute, "how long to wait for deletion")
	return cmd
}

// project resolves an already launched project (down, status) and an engine on a reachable
// cluster. It never bootstraps.
func (c *clusterOptions) project(ctx context.Context, g *globalOptions, args []string) (*launch.Project, *launch.Engine, error) {
	if err := c.validate(); err != nil {
		return nil, nil, err
	}
	sel, err := selection(c.command, dirArg(args), nil, c.Namespace)
	if err != nil {
		return nil, nil, err
	}
	sel.Cluster = c.clusterFlags()
	proj, err := launch.Resolve(sel)
	if err != nil {
		return nil, nil, err
	}
	c.proj = proj
	cfg, err := c.cluster(ctx, g, false)
	if err != nil {
		return nil, nil, err
	}
	eng, err := launch.NewEngine(cfg)
	if err != nil {
		return nil, nil, err
	}
	// At a repository's root that has nothing of its own to launch (nothing found, or several
	// apps to choose from) and is not launched itself, the one app launched from the repository
	// is the one meant; several are listed by the not-launched error.
	if proj.AppPath == "." && sel.Namespace == "" {
		if launched, err := eng.Launched(ctx, proj); err == nil && !launched && !ownApp(proj) {
			if apps := eng.AppsOf(ctx, proj); len(apps) == 1 {
				at := sel
				at.Dir = filepath.Join(proj.Root, filepath.FromSlash(apps[0].Path))
				at.Namespace = apps[0].Namespace
				// Only an app whose folder is still one and whose namespace its launch created:
				// otherwise the not-launched error lists it, with its command.
				if app, err := launch.Resolve(at); err == nil && app.AppPath == apps[0].Path && eng.OwnsNamespace(ctx, app) {
					fmt.Fprintf(c.Output.chatter(g), "%s is the one app launched from this repository (namespace %s)\n", printable(apps[0].Path), apps[0].Namespace)
					proj, c.proj = app, app
				}
			}
		}
	}
	return proj, eng, nil
}

// ownApp reports whether the repository's root has one thing of its own to launch.
func ownApp(p *launch.Project) bool {
	_, err := p.Discover()
	return !errors.Is(err, launch.ErrNothingFound) && !errors.Is(err, launch.ErrAmbiguous)
}

type statusOptions struct{ clusterOptions }

func newStatusCmd(g *globalOptions) *cobra.Command {
	opts := &statusOptions{}
	cmd := &cobra.Command{
		Use:   "status [DIR]",
		Short: "Show the state of each object harmony launched for a repository",
		Long: `Show the state of each object harmony launched for the project DIR belongs to, and why any
is not ready (pod states, warning events, a crashing container's last log lines). Exits 1 when
an object is not ready, as kubectl rollout status does, so a script can wait on it.`,
		Args: usageArgs(cobra.MaximumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			proj, eng, err := opts.project(cmd.Context(), g, args)
			if err != nil {
				return err
			}
			states, err := eng.Status(cmd.Context(), proj)
			if err != nil {
				return err
			}
			if opts.Output.json() {
				if err := printJSON(g.Stdout, eng.StatusOutput(proj, states)); err != nil {
					return err
				}
				return notReadyError(g, states)
			}
			w := tabwriter.NewWriter(g.Stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "OBJECT\tSTATUS\tMESSAGE")
			for _, s := range states {
				fmt.Fprintf(w, "%s\t%s\t%s\n", s.Ref, s.Status, s.Message)
			}
			if err := w.Flush(); err != nil {
				return err
			}
			for _, s := range states {
				if len(s.Reasons) > 0 {
					fmt.Fprintf(g.Stdout, "%s is not ready:\n  %s\n", s.Ref, strings.Join(s.Reasons, "\n  "))
				}
			}
			return notReadyError(g, states)
		},
	}
	opts.bind(cmd)
	return cmd
}

// notReadyError makes status fail (exit 1) when an object is not ready, as kubectl rollout
// status does, so a script can wait on it; the count goes to stderr.
func notReadyError(g *globalOptions, states []launch.ObjState) error {
	n := 0
	for _, s := range states {
		if !s.Ready() {
			n++
		}
	}
	if n == 0 {
		return nil
	}
	msg := fmt.Sprintf("%d of %s not ready", n, plural(len(states), "object"))
	fmt.Fprintf(g.Stderr, "harmony: %s\n", msg)
	return &silentError{errors.New(msg)}
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
