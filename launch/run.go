package launch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/docker/docker/client"
	"k8s.io/client-go/rest"

	"github.com/NationTech/harmony-agent/internal/hint"
)

// Request is one launch as the user asked for it. Run carries it out.
type Request struct {
	// Selection is what to launch: the folder (or file) and -f, as typed.
	Selection Selection
	// Reason, when set, replaces discovery's words for where the objects come from (a file
	// named on the command line).
	Reason string
	// Render lets kustomizations and charts fetch what they refer to remotely.
	Render RenderOptions
	// Limits bound rendering (their Command is the project's: Run sets it).
	Limits RenderLimits
	// Set and ValuesFiles are a chart's --set and --values (read and checked by the caller).
	Set         []string
	ValuesFiles []ValuesFile
	// KubeVersion is the Kubernetes version a chart is first rendered for, before any cluster
	// is asked (the pinned runtime's).
	KubeVersion string
	// ChartCache is where fetched chart dependencies are kept.
	ChartCache string
	// Launch are the engine's options: dry run, adoption, the wait, the privileges allowed.
	// Its Out and Live are the Sink's.
	Launch Options
	// ObjectsOnly stops once the objects are final (images substituted, a chart rendered for
	// the cluster when one answers): -o yaml.
	ObjectsOnly bool
	// ExplicitCluster is a cluster the user named (--kubeconfig/--context): a dry run does
	// not go on without it, and harmony loads no image into it.
	ExplicitCluster bool
}

// Host is what a launch needs from the machine beyond launch/: the cluster (which may mean
// bootstrapping harmony's runtime), the image builder and the way into the runtime, the
// privileges the user accepted before.
type Host struct {
	// Cluster returns a reachable cluster for p; mayBootstrap lets it start harmony's runtime.
	Cluster func(ctx context.Context, p *Project, mayBootstrap bool) (*rest.Config, error)
	// Docker returns the engine that builds images, or why there is none (with hints).
	Docker func(ctx context.Context) (client.APIClient, error)
	// Loader returns the way into harmony's runtime for built images (nil: none).
	Loader func(ctx context.Context, docker client.APIClient, dryRun bool) (ImageLoader, error)
	// BuildKit returns the builder of harmony's runtime when it builds with BuildKit (k3s:
	// straight into its containerd), nil when Docker builds (k3d); asked before the runtime is
	// bootstrapped, for harmony's runtime only (not --kubeconfig/--context).
	BuildKit func(ctx context.Context, dryRun bool) (*BuildKitd, error)
	// Accepted are the privileges (Privilege.Key) the user allowed the project before.
	Accepted func(p *Project) []string
	// Remember records the privileges a launch was allowed.
	Remember func(ctx context.Context, p *Project, privs []Privilege)
}

// Sink is where a launch says what it does while it runs.
type Sink struct {
	// Progress receives what was found and each step, and warnings about the project
	// (kustomize's, images nothing builds) after the first line (the terminal's stderr; io.Discard).
	Progress io.Writer
	// Warnings receives what rendering says on the way: a chart's warnings, kustomize's (a
	// deprecated field), a Jsonnet program's std.trace.
	Warnings io.Writer
	// Live redraws progress in place (a terminal).
	Live bool
	// Confirm asks the user about privileges not allowed yet (nil: never asks).
	Confirm func(asked []Privilege) (bool, error)
}

// Result is what a launch found and did, for the report. Fields are set as far as it got.
type Result struct {
	Project *Project
	Source  *Source
	// Objects are what it applies (or would): the chart's included, images substituted.
	Objects []Object
	// Hooks are what it runs around them: the chart's Helm hooks and Argo CD's hooks.
	Hooks []Hook
	// Skipped are the hooks (and objects marked Argo CD Skip) it does not run, one line each.
	Skipped []string
	Chart   *Rendered
	Images  []ImageState
	// Report is the plan and what came of it; nil when the launch stopped before planning.
	Report *Report
	// Engine is the cluster's; nil when no cluster answered.
	Engine *Engine
	// NoCluster is why a dry run went on without a cluster (its plan unchecked by a server).
	NoCluster error
}

// Output is the result as -o json says it.
func (r *Result) Output(dryRun bool) Output {
	rep := r.Report
	if r.NoCluster != nil {
		dryRun = true
	}
	return r.Engine.LaunchOutput(r.Project, rep, dryRun)
}

// UsageError is a request that cannot be carried out as typed (a path that is not there, a
// flag that does not apply to the project).
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// Run launches: resolve the project → discover what it deploys → render it (in a process of
// its own where its memory can be bounded) → find the image builder → reach the cluster
// (bootstrapping it unless a dry run) → render a chart again for the cluster → build and load
// images → plan, apply, prune and wait (Engine.Launch). A dry run without a cluster stops
// after the images with its objects unchecked (Result.NoCluster). Each phase fails before the
// next begins, so nothing is applied unless everything before it held.
func Run(ctx context.Context, req Request, host Host, sink Sink) (*Result, error) {
	if sink.Progress == nil {
		sink.Progress = io.Discard
	}
	proj, err := Resolve(req.Selection)
	if err != nil {
		return nil, err
	}
	res := &Result{Project: proj}
	src, err := proj.Discover()
	if errors.Is(err, fs.ErrNotExist) {
		return res, &UsageError{err} // -f or harmony.yaml names a path that is not there
	}
	if err != nil {
		return res, err
	}
	if req.Reason != "" {
		src.Reason = req.Reason
	}
	res.Source = src
	if (len(req.Set) > 0 || len(req.ValuesFiles) > 0) && src.Chart == nil {
		return res, &UsageError{fmt.Errorf("--set and --values are a Helm chart's; %s launches no chart (%s)", Sanitize(proj.App), Sanitize(src.Reason))}
	}
	r, err := newRenderer(req, proj)
	if err != nil {
		return res, err
	}
	objs, warnings, err := r.manifests(ctx, src, sink.Warnings)
	if errors.Is(err, ErrRenderLimit) || ctx.Err() != nil {
		return res, err
	}
	if (errors.Is(err, ErrOutside) || errors.Is(err, ErrKustomizeHelm)) && len(hint.Of(err)) > 0 {
		return res, err // its hints say what to do: the manifests are not at fault
	}
	if err != nil {
		return res, hint.With(err, "nothing was applied: fix the manifest and launch again")
	}
	// A chart is rendered first for the pinned runtime's Kubernetes version (template errors
	// stop here, before any cluster is touched), then again with the cluster's Capabilities.
	chartOpts := ChartOptions{Release: proj.ReleaseName(), Namespace: proj.Namespace, KubeVersion: req.KubeVersion,
		AllowRemote: req.Render.AllowRemote, CacheDir: req.ChartCache, Out: sink.Warnings, Set: req.Set, ValuesFiles: req.ValuesFiles}
	chart, err := r.chart(ctx, src, chartOpts)
	if err != nil {
		return res, err
	}
	if err := res.assemble(objs, chart); err != nil {
		return res, hint.With(err, "nothing was applied: fix the manifest and launch again")
	}
	fmt.Fprintf(sink.Progress, "launching %s: %s from %s, namespace %s\n", Sanitize(proj.App), countOf(len(res.Objects), "object"), Sanitize(src.Reason), proj.Namespace)
	for _, w := range src.Warnings {
		fmt.Fprintln(sink.Progress, Sanitize(w))
	}
	for _, w := range warnings {
		fmt.Fprintf(sink.Progress, "warning: %s\n", Sanitize(w))
	}
	if chart != nil {
		fmt.Fprintln(sink.Progress, Sanitize(chartFound(chart.Chart, chartOpts.Release)))
	}
	for _, h := range res.Skipped {
		fmt.Fprintf(sink.Progress, "  skipped hook %s\n", Sanitize(h))
	}
	if u := unbuiltImages(src.Root, src.Images, res.withHooks()); len(u) > 0 {
		fmt.Fprintf(sink.Progress, "warning: %s\n", Sanitize(unbuiltWarning(u)))
	}

	// The engine that builds the project's images is found first: without one, nothing is
	// applied and no runtime is bootstrapped.
	dryRun := req.Launch.DryRun
	imgOpts, err := imageOptions(ctx, host, src, dryRun, req.ExplicitCluster, sink.Progress)
	if err != nil {
		return res, err
	}
	cfg, err := host.Cluster(ctx, proj, !dryRun)
	if err != nil && dryRun && !req.ExplicitCluster {
		// No cluster to check against: what would be applied, unchecked.
		res.NoCluster = err
		res.Images, err = PrepareImages(ctx, src, res.withHooks(), imgOpts)
		if err != nil || req.ObjectsOnly {
			return res, err
		}
		// The hooks are listed too, and what they ask for counts among the privileges.
		res.Report = UncheckedFor(proj, res.withHooks())
		for i, h := range res.Hooks {
			s := &res.Report.Plan[len(res.Objects)+i]
			s.Action, s.Note = RunHook, h.note()+"; not checked: no cluster"
			if s.ID.Name == "" {
				id := s.ID
				id.Name = h.GetGenerateName() + "…"
				s.Ref = ref(id)
			}
		}
		res.Report.Images, res.Report.Chart = res.Images, chartInfo(chart)
		return res, nil
	}
	if err != nil {
		return res, err
	}
	eng, err := NewEngine(cfg)
	if err != nil {
		return res, err
	}
	res.Engine = eng
	if chart != nil {
		chartOpts.Cluster, chartOpts.NoLookup = cfg, dryRun
		if chartOpts.Upgrade, err = eng.Launched(ctx, proj); err != nil {
			return res, err
		}
		if chart, err = r.chart(ctx, src, chartOpts); err != nil {
			return res, err
		}
		if err := res.assemble(objs, chart); err != nil {
			return res, hint.With(err, "nothing was applied: fix the manifest and launch again")
		}
	}
	if len(src.Images) > 0 && imgOpts.Docker != nil && !req.ExplicitCluster && host.Loader != nil {
		if imgOpts.Loader, err = host.Loader(ctx, imgOpts.Docker, dryRun); err != nil {
			return res, err
		}
	}
	if res.Images, err = PrepareImages(ctx, src, res.withHooks(), imgOpts); err != nil {
		return res, err
	}
	if req.ObjectsOnly {
		return res, nil // rendered with the cluster's Capabilities
	}
	o := req.Launch
	o.Out, o.Live, o.Confirm, o.Hooks = sink.Progress, sink.Live, sink.Confirm, res.Hooks
	if host.Accepted != nil {
		o.Accepted = host.Accepted(proj)
	}
	rep, err := eng.Launch(ctx, proj, res.Objects, o)
	if rep != nil {
		rep.Chart, rep.Images = chartInfo(chart), res.Images
		if !dryRun && len(rep.Privileges) > 0 && !errors.Is(err, ErrPrivileges) && host.Remember != nil {
			host.Remember(ctx, proj, rep.Privileges)
		}
	}
	res.Report = rep
	return res, err
}

// renderer renders a project's manifests and chart within the request's limits: kustomize,
// go-jsonnet and Helm run the repository's programs (generators, transformers, Jsonnet programs,
// templates), so they run in a child process whose memory the kernel bounds where it can
// (RenderInChild); plain files are read here, within their size caps.
type renderer struct {
	job    RenderJob
	limits RenderLimits
}

func newRenderer(req Request, p *Project) (*renderer, error) {
	wd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	l := req.Limits
	l.Command = func(flags ...string) string { return p.Command("launch", flags...) }
	return &renderer{limits: l, job: RenderJob{Dir: wd, Selection: req.Selection, Render: req.Render,
		Timeout: l.Timeout, MaxMemory: l.MaxMemory, MaxObjects: l.MaxObjects}}, nil
}

// manifests renders src's manifests, with kustomize's deprecation warnings; progress receives
// what the renderer says on the way (a Jsonnet program's std.trace).
func (r *renderer) manifests(ctx context.Context, src *Source, progress io.Writer) ([]Object, []string, error) {
	if len(src.Kustomizations) > 0 || len(src.Jsonnet) > 0 {
		res, err := r.run(ctx, r.job, progress)
		return res.Objects, res.Warnings, err
	}
	objs, err := Bounded(ctx, r.limits, "the manifests", func(ctx context.Context) ([]Object, error) {
		return Render(ctx, src, r.job.Render)
	}, func(o []Object) int { return len(o) })
	return objs, nil, err
}

// chart renders src's chart, when it has one.
func (r *renderer) chart(ctx context.Context, src *Source, o ChartOptions) (*Rendered, error) {
	if src.Chart == nil {
		return nil, nil
	}
	job := r.job
	job.Chart, job.ChartOptions = true, o
	res, err := r.run(ctx, job, o.Out)
	if err != nil && errors.Is(err, ErrBadManifest) {
		return nil, hint.With(err, "nothing was applied: fix the chart and launch again")
	}
	return res.Chart, err
}

func (r *renderer) run(ctx context.Context, job RenderJob, progress io.Writer) (RenderResult, error) {
	if RenderInChild {
		if exe, err := RenderChildPath(); err == nil {
			return RunChild(ctx, exe, job, job.ChartOptions.Cluster, progress, r.limits.Command)
		}
	}
	return job.Run(ctx, progress)
}

// imageOptions finds the builder of the project's images, when it has any: harmony's runtime's
// BuildKit daemon (k3s), else the Docker engine. A launch (not a dry run) without one stops
// here, naming the images and what to install.
func imageOptions(ctx context.Context, host Host, src *Source, dryRun, explicit bool, out io.Writer) (ImageOptions, error) {
	o := ImageOptions{DryRun: dryRun, Out: out}
	if len(src.Images) == 0 {
		return o, nil
	}
	if host.BuildKit != nil && !explicit {
		bk, err := host.BuildKit(ctx, dryRun)
		if err != nil {
			return o, err
		}
		if bk != nil {
			o.BuildKit = bk
			return o, nil
		}
	}
	if host.Docker == nil {
		o.NoDocker = errors.New("no Docker engine")
	} else if d, err := host.Docker(ctx); err != nil {
		o.NoDocker = err
	} else {
		o.Docker = d
	}
	if o.Docker == nil && !dryRun {
		_, err := PrepareImages(ctx, src, nil, o)
		return o, err
	}
	return o, nil
}

// chartFound is the line that says a Helm chart is what launch deploys: harmony renders it
// with Helm's own engine and applies the result like any manifest, so no helm is needed.
func chartFound(c *ChartInfo, release string) string {
	where := "in " + filepath.ToSlash(c.Path)
	if c.Path == "" || c.Path == "." {
		where = "at the project root"
	}
	return fmt.Sprintf("found a Helm chart %s: %s %s, rendered by harmony as release %s (no helm needed)", where, c.Name, c.Version, release)
}

func chartInfo(r *Rendered) *ChartInfo {
	if r == nil {
		return nil
	}
	return r.Chart
}

// withChart is objs and the chart's objects.
func withChart(objs []Object, chart *Rendered) []Object {
	if chart == nil {
		return objs
	}
	return append(append([]Object{}, objs...), chart.Objects...)
}

// assemble sets what the launch applies and runs from the project's objects and its chart:
// the chart's objects join them, and Argo CD's hooks (in either) are taken out to run as hooks.
func (res *Result) assemble(objs []Object, chart *Rendered) error {
	kept, hooks, skipped, err := argoHooks(withChart(objs, chart))
	if err != nil {
		return err
	}
	res.Chart, res.Objects, res.Hooks, res.Skipped = chart, kept, nil, nil
	if chart != nil {
		res.Hooks = append(res.Hooks, chart.Hooks...)
		res.Skipped = append(res.Skipped, chart.Chart.SkippedHooks...)
	}
	res.Hooks = append(res.Hooks, hooks...)
	res.Skipped = append(res.Skipped, skipped...)
	return nil
}

// withHooks is every object a launch applies: its objects and its hooks.
func (res *Result) withHooks() []Object {
	if len(res.Hooks) == 0 {
		return res.Objects
	}
	all := append([]Object{}, res.Objects...)
	for _, h := range res.Hooks {
		all = append(all, h.Object)
	}
	return all
}

func countOf(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
