package launch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"helm.sh/helm/v4/pkg/strvals"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"
	"helm.sh/helm/v4/pkg/chart/common"
	commonutil "helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/loader/archive"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	chartutil "helm.sh/helm/v4/pkg/chart/v2/util"
	"helm.sh/helm/v4/pkg/engine"
	"helm.sh/helm/v4/pkg/ignore"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/cli-utils/pkg/object"
	"sigs.k8s.io/yaml"

	"github.com/NationTech/harmony-agent/internal/hint"
)

// ChartFile marks a directory as a Helm chart.
const ChartFile = "Chart.yaml"

// Helm's annotations harmony reads.
const (
	helmHookAnnotation   = "helm.sh/hook"
	helmWeightAnnotation = "helm.sh/hook-weight"
	helmDeleteAnnotation = "helm.sh/hook-delete-policy"
)

// ErrChartDependencies means a chart needs dependencies that are not vendored in its charts/.
var ErrChartDependencies = errors.New("chart dependencies are not vendored")

// The folders people keep a chart in (each may also hold several charts, one per subfolder).
var chartFolders = []string{"chart", "charts", "helm", "helm-chart", "helm-charts", "deploy/helm", "deploy/chart", "deploy/charts", "deployment/helm"}

// Chart is a Helm chart to launch and the values to render it with.
type Chart struct {
	// Dir is the chart's directory (absolute).
	Dir string
	// Values are values files (absolute), merged in order over the chart's values.yaml.
	Values []string
	// Set values are merged last (harmony.yaml's set).
	Set map[string]any
}

// ChartInfo is what a launch says about the chart it rendered.
type ChartInfo struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	// Path is the chart's directory, relative to the project root.
	Path string `json:"path"`
	// KubeVersion is the Kubernetes version the chart was rendered for.
	KubeVersion string `json:"kubeVersion"`
	// SkippedHooks are hooks launch does not run (test, crd-install, delete and rollback hooks).
	SkippedHooks []string `json:"skippedHooks,omitempty"`
	// Notes is the rendered NOTES.txt.
	Notes string `json:"notes,omitempty"`
}

// ChartOptions say how to render a chart.
type ChartOptions struct {
	// Release is the release name (the project's name); Namespace the release namespace.
	Release, Namespace string
	// Cluster, when set, gives the Capabilities (version and API versions) and serves lookup.
	Cluster *rest.Config `json:"-"`
	// NoLookup renders lookup as Helm's client-side dry run does (nothing found): a dry run
	// must not let a chart read the cluster's objects (a Secret) into what it prints.
	NoLookup bool
	// KubeVersion is used when there is no cluster (the pinned runtime's version).
	KubeVersion string
	// Upgrade renders with .Release.IsUpgrade (the project was launched before).
	Upgrade bool
	// Revision is .Release.Revision (1 when zero).
	Revision int
	// AllowRemote fetches dependencies that are not vendored (the versions Chart.lock pins).
	AllowRemote bool
	// CacheDir caches fetched repository indexes and charts (default: none kept after the launch).
	CacheDir string
	// Out receives progress of fetching dependencies.
	Out io.Writer `json:"-"`
	// ValuesFiles are the contents of --values files (read by the launch: the user named them),
	// merged in order over the chart's and harmony.yaml's values; Set are --set values
	// (key=value, Helm's syntax), merged last.
	ValuesFiles []ValuesFile `json:"valuesFiles,omitempty"`
	Set         []string     `json:"set,omitempty"`
}

// ValuesFile is a values file named on the command line, and its content.
type ValuesFile struct {
	Name string `json:"name"`
	Data []byte `json:"data"`
}

// MaxValuesFile caps a --values file.
const MaxValuesFile = 8 << 20

// ReadValuesFile reads a --values file the user named (anywhere: the repository does not name
// it), a regular file within MaxValuesFile, and checks that it is YAML values.
func ReadValuesFile(name string) (ValuesFile, error) {
	f, err := os.Open(name)
	if err != nil {
		return ValuesFile{}, err
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return ValuesFile{}, fmt.Errorf("--values %q: not a regular file", name)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxValuesFile+1))
	if err != nil {
		return ValuesFile{}, err
	}
	if len(data) > MaxValuesFile {
		return ValuesFile{}, fmt.Errorf("--values %q: larger than %d MiB", name, MaxValuesFile>>20)
	}
	if _, err := loader.LoadValues(bytes.NewReader(data)); err != nil {
		return ValuesFile{}, fmt.Errorf("--values %q: %s", name, cleanYAMLError(err))
	}
	return ValuesFile{Name: name, Data: data}, nil
}

// CheckSet checks --set values the way they are applied (Helm's key=value syntax).
func CheckSet(set []string) error {
	for _, s := range set {
		if err := strvals.ParseInto(s, map[string]any{}); err != nil {
			return fmt.Errorf("--set %q: %w", s, err)
		}
	}
	return nil
}

// Rendered is a rendered chart: the objects to apply, its hooks and what to tell the user.
type Rendered struct {
	Objects []Object
	Hooks   []Hook
	Chart   *ChartInfo
}

// isChart reports whether a folder (root-relative) holds a Chart.yaml.
func (t *tree) isChart(dir string) bool { return t.isFile(path.Join(dir, ChartFile)) }

// chartMeta reads a chart's Chart.yaml (nil when it cannot be read).
func (t *tree) chartMeta(dir string) *chart.Metadata {
	raw, err := t.readFile(path.Join(dir, ChartFile))
	if err != nil {
		return nil
	}
	var md chart.Metadata
	if yaml.Unmarshal(raw, &md) != nil {
		return nil
	}
	return &md
}

// findCharts lists the application charts in the usual chart folders (root-relative, slash
// separated), leaving out library charts and charts another candidate uses as a file://
// dependency.
func (t *tree) findCharts() []string {
	var dirs []string
	seen := map[string]bool{}
	add := func(rel string) {
		if !seen[rel] {
			seen[rel] = true
			dirs = append(dirs, rel)
		}
	}
	for _, f := range chartFolders {
		if t.isChart(f) {
			add(f)
			continue
		}
		if !t.isDir(f) {
			continue
		}
		entries, err := t.readDir(f)
		if err != nil {
			continue
		}
		for _, e := range entries {
			if e.IsDir() && t.isChart(path.Join(f, e.Name())) {
				add(path.Join(f, e.Name()))
			}
		}
	}
	used := map[string]bool{}
	var apps []string
	for _, d := range dirs {
		md := t.chartMeta(d)
		if md == nil {
			apps = append(apps, d) // unreadable: launching it names the problem
			continue
		}
		if md.Type == "library" {
			continue
		}
		for _, dep := range md.Dependencies {
			if r, ok := strings.CutPrefix(dep.Repository, "file://"); ok {
				used[path.Clean(path.Join(d, filepath.ToSlash(r)))] = true
			}
		}
		apps = append(apps, d)
	}
	var out []string
	for _, d := range apps {
		if !used[d] {
			out = append(out, d)
		}
	}
	sort.Strings(out)
	return out
}

// chartFromConfig builds the chart of harmony.yaml (chart, values, set).
func chartFromConfig(t *tree, p *Config) (*Chart, error) {
	dir, err := inRoot(p.Chart)
	if err != nil {
		return nil, fmt.Errorf("%s: chart: %w", ProjectFile, err)
	}
	if !t.isChart(dir) {
		return nil, hint.With(fmt.Errorf("%s: chart: %q has no %s", ProjectFile, p.Chart, ChartFile),
			"name the folder that holds the chart's Chart.yaml")
	}
	c := &Chart{Dir: t.abs(dir), Set: p.Set}
	for _, v := range p.Values {
		f, err := inRoot(v)
		if err != nil {
			return nil, fmt.Errorf("%s: values: %w", ProjectFile, err)
		}
		c.Values = append(c.Values, t.abs(f))
	}
	return c, nil
}

// inRoot checks a project-relative path and returns it slash separated; paths that leave the
// root are refused.
func inRoot(p string) (string, error) {
	if p == "" || filepath.IsAbs(p) || !filepath.IsLocal(filepath.FromSlash(p)) {
		return "", fmt.Errorf("%q: give a path inside the project: %w", p, ErrOutside)
	}
	return path.Clean(filepath.ToSlash(p)), nil
}

// readChartFiles reads a chart directory through the project's confined tree (the same reads
// as every other launch file: inside the root, regular files only, capped), honouring
// .helmignore.
func readChartFiles(projectRoot, dir string) ([]*archive.BufferedFile, error) {
	t, err := openTree(projectRoot, DefaultMaxFileSize, DefaultMaxTotalSize)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	base, err := t.rel(dir)
	if err != nil {
		return nil, err
	}
	rules := ignore.Empty()
	if t.isFile(path.Join(base, ignore.HelmIgnore)) {
		raw, err := t.readFile(path.Join(base, ignore.HelmIgnore))
		if err != nil {
			return nil, err
		}
		if rules, err = ignore.Parse(bytes.NewReader(raw)); err != nil {
			return nil, fmt.Errorf("%s: %w", path.Join(base, ignore.HelmIgnore), err)
		}
	}
	rules.AddDefaults()
	var files []*archive.BufferedFile
	err = t.walk(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == base {
			return nil
		}
		n := strings.TrimPrefix(p, base+"/")
		if base == "." {
			n = p
		}
		_, fi, err := t.stat(p) // follows links, only inside the root
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if fi.IsDir() {
			if !d.IsDir() {
				return fmt.Errorf("%s: a link to a folder: copy the folder into the chart", p)
			}
			if rules.Ignore(n, fi) {
				return fs.SkipDir
			}
			return nil
		}
		if rules.Ignore(n, fi) {
			return nil
		}
		data, err := t.readFile(p)
		if err != nil {
			return err
		}
		files = append(files, &archive.BufferedFile{Name: n, ModTime: fi.ModTime(), Data: bytes.TrimPrefix(data, []byte("\xEF\xBB\xBF"))})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return files, nil
}

// LoadChart loads a chart from disk (reads stay inside the project root).
func LoadChart(projectRoot, dir string) (*chart.Chart, []*archive.BufferedFile, error) {
	files, err := readChartFiles(projectRoot, dir)
	if err != nil {
		return nil, nil, fmt.Errorf("load chart %s: %w", rel(projectRoot, dir), err)
	}
	ch, err := loader.LoadFiles(files)
	if err != nil {
		return nil, nil, fmt.Errorf("load chart %s: %w", rel(projectRoot, dir), err)
	}
	return ch, files, nil
}

// localDependencies adds to ch (the chart in dir) the dependencies its Chart.yaml names with a
// file:// repository and its charts/ folder lacks, each loaded through the project's confined
// tree from the folder it names relative to dir (Helm's rule), and theirs in turn.
func localDependencies(projectRoot, dir string, ch *chart.Chart, depth int) error {
	chartRel := filepath.ToSlash(rel(projectRoot, dir))
	for _, d := range missingDependencies(ch) {
		if !strings.HasPrefix(d.Repository, "file://") {
			continue
		}
		p := filepath.FromSlash(strings.TrimPrefix(d.Repository, "file://"))
		sub := filepath.Join(dir, p)
		if filepath.IsAbs(p) || !within(projectRoot, sub) {
			return fmt.Errorf("chart %s: dependency %s: %s: %w", chartRel, d.Name, d.Repository, ErrOutside)
		}
		if depth > 8 {
			return fmt.Errorf("chart %s: dependency %s: file:// dependencies nested too deep (a cycle?)", chartRel, d.Name)
		}
		dep, _, err := LoadChart(projectRoot, sub)
		if err != nil {
			return fmt.Errorf("chart %s: dependency %s (%s): %w", chartRel, d.Name, d.Repository, err)
		}
		if dep.Name() != d.Name {
			return fmt.Errorf("chart %s: dependency %s: %s holds the chart %s", chartRel, d.Name, d.Repository, dep.Name())
		}
		if d.Version != "" {
			c, err := semver.NewConstraint(d.Version)
			v, verr := semver.NewVersion(dep.Metadata.Version)
			if err != nil || verr != nil || !c.Check(v) {
				return fmt.Errorf("chart %s: dependency %s: %s holds version %s, Chart.yaml asks for %s", chartRel, d.Name, d.Repository, dep.Metadata.Version, d.Version)
			}
		}
		if err := localDependencies(projectRoot, sub, dep, depth+1); err != nil {
			return err
		}
		ch.AddDependency(dep)
	}
	return nil
}

// missingDependencies lists the dependencies of Chart.yaml that are not in charts/.
func missingDependencies(ch *chart.Chart) []*chart.Dependency {
	have := map[string]bool{}
	for _, d := range ch.Dependencies() {
		have[d.Name()] = true
	}
	var missing []*chart.Dependency
	for _, d := range ch.Metadata.Dependencies {
		if !have[d.Name] {
			missing = append(missing, d)
		}
	}
	return missing
}

// chartValues merges the values files in order, then set; files are read through the
// project's confined tree.
func chartValues(projectRoot string, c *Chart, o ChartOptions) (map[string]any, error) {
	vals := map[string]any{}
	if len(c.Values) > 0 {
		t, err := openTree(projectRoot, DefaultMaxFileSize, DefaultMaxTotalSize)
		if err != nil {
			return nil, err
		}
		defer t.Close()
		for _, f := range c.Values {
			name := rel(projectRoot, f)
			n, err := t.rel(f)
			if err != nil {
				return nil, fmt.Errorf("values file %q: %w", name, err)
			}
			if _, _, err := t.stat(n); errors.Is(err, fs.ErrNotExist) {
				return nil, hint.With(fmt.Errorf("values file %q does not exist", name), "fix the path in "+ProjectFile+" (values: [...]), relative to the project root")
			}
			raw, err := t.readFile(n)
			if err != nil {
				return nil, fmt.Errorf("values file %q: %w", name, err)
			}
			v, err := loader.LoadValues(bytes.NewReader(raw))
			if err != nil {
				return nil, fmt.Errorf("values file %q: %s: %w", name, cleanYAMLError(err), ErrBadManifest)
			}
			vals = loader.MergeMaps(vals, v)
		}
	}
	if len(c.Set) > 0 {
		vals = loader.MergeMaps(vals, c.Set)
	}
	for _, f := range o.ValuesFiles {
		v, err := loader.LoadValues(bytes.NewReader(f.Data))
		if err != nil {
			return nil, fmt.Errorf("--values %q: %s", f.Name, cleanYAMLError(err))
		}
		vals = loader.MergeMaps(vals, v)
	}
	for _, s := range o.Set {
		if err := strvals.ParseInto(s, vals); err != nil {
			return nil, fmt.Errorf("--set %q: %w", s, err)
		}
	}
	return vals, nil
}

// capabilities are the cluster's (version and API versions) or, without a cluster, the
// pinned runtime's version with the API versions client-go knows.
func capabilities(o ChartOptions) (*common.Capabilities, error) {
	caps := common.DefaultCapabilities.Copy()
	if o.Cluster != nil {
		dc, err := discovery.NewDiscoveryClientForConfig(o.Cluster)
		if err != nil {
			return nil, err
		}
		info, err := dc.ServerVersion()
		if err != nil {
			return nil, fmt.Errorf("read the cluster's version: %w", err)
		}
		kv, err := common.ParseKubeVersion(info.GitVersion)
		if err != nil {
			return nil, fmt.Errorf("cluster version %q: %w", info.GitVersion, err)
		}
		caps.KubeVersion = *kv
		groups, resources, err := dc.ServerGroupsAndResources()
		if err == nil || len(groups) > 0 {
			set := map[string]bool{}
			for _, g := range groups {
				for _, gv := range g.Versions {
					set[gv.GroupVersion] = true
				}
			}
			for _, r := range resources {
				for _, res := range r.APIResources {
					set[path.Join(r.GroupVersion, res.Kind)] = true
				}
			}
			vs := make(common.VersionSet, 0, len(set))
			for k := range set {
				vs = append(vs, k)
			}
			sort.Strings(vs)
			caps.APIVersions = vs
		}
		return caps, nil
	}
	if o.KubeVersion != "" {
		kv, err := common.ParseKubeVersion(o.KubeVersion)
		if err != nil {
			return nil, fmt.Errorf("kubernetes version %q: %w", o.KubeVersion, err)
		}
		caps.KubeVersion = *kv
	}
	return caps, nil
}

// RenderChart renders src's chart with Helm's engine: values (chart, files, set), release name
// and namespace, Capabilities. A template error names the chart file and line; nothing is
// rendered then.
func RenderChart(ctx context.Context, src *Source, o ChartOptions) (*Rendered, error) {
	c := src.Chart
	chartRel := filepath.ToSlash(rel(src.Root, c.Dir))
	ch, files, err := LoadChart(src.Root, c.Dir)
	if err != nil {
		return nil, err
	}
	if ch.Metadata.Type == "library" {
		return nil, fmt.Errorf("chart %s is a library chart: it renders nothing on its own", chartRel)
	}
	// file:// dependencies are the project's own folders: loaded through its confined tree,
	// never by Helm's downloader (which reads any path, relative to a temporary copy).
	if err := localDependencies(src.Root, c.Dir, ch, 0); err != nil {
		return nil, err
	}
	if missing := missingDependencies(ch); len(missing) > 0 && o.AllowRemote {
		if ch, err = fetchDependencies(files, ch, chartRel, o.CacheDir, o.Out); err != nil {
			return nil, err
		}
	}
	if missing := missingDependencies(ch); len(missing) > 0 {
		var names []string
		for _, d := range missing {
			names = append(names, fmt.Sprintf("%s %s from %s", d.Name, d.Version, d.Repository))
		}
		return nil, hint.With(fmt.Errorf("chart %s: %s not in its charts/ folder: %w", chartRel, strings.Join(names, ", "), ErrChartDependencies),
			"vendor them into "+shown(chartRel)+"/charts/ (helm dependency build), or let harmony fetch them: "+src.launchCommand("--allow-remote"))
	}
	userVals, err := chartValues(src.Root, c, o)
	if err != nil {
		return nil, err
	}
	caps, err := capabilities(o)
	if err != nil {
		return nil, err
	}
	if kv := ch.Metadata.KubeVersion; kv != "" && !chartutil.IsCompatibleRange(kv, caps.KubeVersion.String()) {
		return nil, fmt.Errorf("chart %s needs Kubernetes %s; the cluster runs %s", chartRel, kv, caps.KubeVersion.Version)
	}
	if err := chartutil.ProcessDependencies(ch, userVals); err != nil {
		return nil, fmt.Errorf("chart %s: dependencies: %w", chartRel, err)
	}
	rev := o.Revision
	if rev == 0 {
		rev = 1
	}
	vals, err := commonutil.ToRenderValues(ch, userVals, common.ReleaseOptions{
		Name: o.Release, Namespace: o.Namespace, Revision: rev, IsInstall: !o.Upgrade, IsUpgrade: o.Upgrade,
	}, caps)
	if err != nil {
		return nil, fmt.Errorf("chart %s: values: %s: %w", chartRel, fixChartPaths(err.Error(), ch.Name(), chartRel), ErrBadManifest)
	}
	var eng engine.Engine
	render := func() (map[string]string, error) { return eng.Render(ch, vals) }
	if o.Cluster != nil && !o.NoLookup {
		lookup, err := newConfinedLookup(o.Cluster, o.Namespace)
		if err != nil {
			return nil, fmt.Errorf("chart %s: %w", chartRel, err)
		}
		render = func() (map[string]string, error) { return engine.RenderWithClientProvider(ch, vals, lookup) }
	}
	rendered, err := render()
	if err != nil {
		return nil, fmt.Errorf("chart %s: %s: %w", chartRel, fixChartPaths(err.Error(), ch.Name(), chartRel), ErrBadManifest)
	}
	info := &ChartInfo{Name: ch.Name(), Version: ch.Metadata.Version, Path: chartRel, KubeVersion: caps.KubeVersion.Version}
	out := &Rendered{Chart: info}

	// CRDs in crds/ (the chart's and its subcharts') are plain objects, applied first.
	for _, crd := range ch.CRDObjects() {
		objs, err := decode(fixChartPaths(filepath.ToSlash(crd.Filename), ch.Name(), chartRel), crd.File.Data)
		if err != nil {
			return nil, err
		}
		for _, o := range objs {
			if object.IsCRD(o.Unstructured) {
				ann := o.GetAnnotations()
				if ann == nil {
					ann = map[string]string{}
				}
				ann[ChartCRDAnnotation] = ch.Name()
				o.SetAnnotations(ann)
			}
		}
		out.Objects = append(out.Objects, objs...)
	}
	notesKey := path.Join(ch.Name(), "templates", "NOTES.txt")
	names := make([]string, 0, len(rendered))
	for k := range rendered {
		names = append(names, k)
	}
	sort.Strings(names)
	seenSkip := map[string]bool{}
	for _, k := range names {
		body := rendered[k]
		if strings.HasSuffix(k, "NOTES.txt") {
			if k == notesKey {
				info.Notes = strings.TrimSpace(body)
			}
			continue
		}
		if strings.HasPrefix(path.Base(k), "_") || strings.TrimSpace(body) == "" {
			continue
		}
		name := fixChartPaths(k, ch.Name(), chartRel)
		objs, err := decode(name+" (rendered)", []byte(body))
		if err != nil {
			return nil, err
		}
		for _, obj := range objs {
			obj.Origin = name
			events, isHook := obj.GetAnnotations()[helmHookAnnotation]
			if !isHook {
				out.Objects = append(out.Objects, obj)
				continue
			}
			h, skip := newHook(obj, events)
			if skip != "" {
				if !seenSkip[skip] {
					seenSkip[skip] = true
					info.SkippedHooks = append(info.SkippedHooks, skip)
				}
				continue
			}
			out.Hooks = append(out.Hooks, h)
		}
	}
	sortHooks(out.Hooks)
	return out, nil
}

// fixChartPaths rewrites Helm's chart-name paths ("app/templates/x.yaml") into paths from
// the project root ("charts/app/templates/x.yaml").
func fixChartPaths(s, chartName, chartRel string) string {
	if chartRel == "." {
		chartRel = ""
	} else {
		chartRel += "/"
	}
	re := regexp.MustCompile(`(^|[\s(<"])` + regexp.QuoteMeta(chartName) + `/`)
	return re.ReplaceAllString(s, "${1}"+chartRel)
}

// ReleaseName is the Helm release name a chart is rendered with: the project's name, made a
// valid DNS label.
func (p *Project) ReleaseName() string {
	name := p.Name
	if p.AppPath != "" && p.AppPath != "." {
		name = filepath.Base(p.App) // as Argo CD names an app's release: its own name
	}
	r := Namespace(name)
	if len(r) > 53 { // Helm's limit
		r = strings.Trim(r[:53], "-")
	}
	return r
}

// Launched reports whether the project was launched before (its inventory exists): a chart is
// then rendered as an upgrade and runs its upgrade hooks.
func (e *Engine) Launched(ctx context.Context, p *Project) (bool, error) {
	inv, err := e.loadInventory(ctx, p)
	if err != nil {
		return false, err
	}
	return inv.exists, nil
}

// Unchecked is the plan of a dry run without a cluster: every object would be created; no
// server has checked it. An object that names no namespace is shown in ns unless its kind is
// one of Kubernetes' own cluster-scoped kinds (without a server, other kinds are taken as
// namespaced, as most custom resources are).
func Unchecked(ns string, objs []Object) *Report {
	rep := &Report{Namespace: ns}
	owned := map[string]bool{ns: true} // cannot be checked without a cluster: as if new
	placed := make([]Object, 0, len(objs))
	for _, o := range objs {
		id, u := placeUnchecked(o, ns)
		if object.IsNamespace(o.Unstructured) {
			owned[id.Name] = true
		}
		placed = append(placed, Object{Unstructured: u, Origin: o.Origin})
		rep.Plan = append(rep.Plan, Step{ID: id, Ref: ref(id), Action: Create, Origin: o.Origin, Note: "not checked: no cluster", apiVersion: o.GetAPIVersion()})
	}
	rep.Privileges = privileges(placed, func(n string) bool { return owned[n] })
	return rep
}

// placeUnchecked is where o goes without a cluster to ask its scope: a kind known to be
// cluster-scoped in none, any other that names no namespace in ns. u is o in that namespace (o
// is left as it is).
func placeUnchecked(o Object, ns string) (id object.ObjMetadata, u *unstructured.Unstructured) {
	id = object.UnstructuredToObjMetadata(o.Unstructured)
	switch {
	case clusterScopedKinds[id.GroupKind]:
		id.Namespace = ""
	case id.Namespace == "":
		id.Namespace = ns
	}
	return id, withNamespace(o.Unstructured, id.Namespace)
}

// UncheckedFor is Unchecked for project p: without a cluster, a project namespace that is one
// of the cluster's own (default, kube-system, …), which the repository chose (harmony.yaml or
// the folder's name, not -n), is listed as other-namespaces too.
func UncheckedFor(p *Project, objs []Object) *Report {
	rep := Unchecked(p.Namespace, objs)
	if p.nsFlag == "" && systemNamespaces[p.Namespace] {
		rep.Privileges = append([]Privilege{{Risk: RiskNamespaces, Object: "namespace/" + p.Namespace,
			What: "the cluster's own namespace, which this project did not create (choose one yourself with -n)"}}, rep.Privileges...)
	}
	return rep
}

// systemNamespaces exist in every cluster and are nobody's project.
var systemNamespaces = map[string]bool{"default": true, "kube-system": true, "kube-public": true, "kube-node-lease": true}

// withNamespace is a shallow copy of u in namespace ns (u is left as it is). Not DeepCopy:
// kustomize's objects hold Go ints, which unstructured's deep copy refuses.
func withNamespace(u *unstructured.Unstructured, ns string) *unstructured.Unstructured {
	obj := make(map[string]any, len(u.Object))
	for k, v := range u.Object {
		obj[k] = v
	}
	if md, ok := u.Object["metadata"].(map[string]any); ok {
		m := make(map[string]any, len(md))
		for k, v := range md {
			m[k] = v
		}
		obj["metadata"] = m
	}
	c := &unstructured.Unstructured{Object: obj}
	c.SetNamespace(ns)
	return c
}

// clusterScopedKinds are the cluster-scoped kinds Kubernetes itself serves.
var clusterScopedKinds = map[schema.GroupKind]bool{}

func init() {
	for group, kinds := range map[string][]string{
		"":                             {"Namespace", "Node", "PersistentVolume", "ComponentStatus"},
		"rbac.authorization.k8s.io":    {"ClusterRole", "ClusterRoleBinding"},
		"apiextensions.k8s.io":         {"CustomResourceDefinition"},
		"storage.k8s.io":               {"StorageClass", "CSIDriver", "CSINode", "VolumeAttachment", "VolumeAttributesClass"},
		"scheduling.k8s.io":            {"PriorityClass"},
		"node.k8s.io":                  {"RuntimeClass"},
		"networking.k8s.io":            {"IngressClass", "IPAddress", "ServiceCIDR"},
		"admissionregistration.k8s.io": {"ValidatingWebhookConfiguration", "MutatingWebhookConfiguration", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding", "MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding"},
		"apiregistration.k8s.io":       {"APIService"},
		"certificates.k8s.io":          {"CertificateSigningRequest", "ClusterTrustBundle"},
		"flowcontrol.apiserver.k8s.io": {"FlowSchema", "PriorityLevelConfiguration"},
		"resource.k8s.io":              {"DeviceClass"},
	} {
		for _, k := range kinds {
			clusterScopedKinds[schema.GroupKind{Group: group, Kind: k}] = true
		}
	}
}
