package launch

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"

	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/yaml"

	"github.com/NationTech/harmony-agent/internal/hint"
)

// What harmony reads in a kustomization before kustomize builds it: the references it must
// refuse or fetch, and what kustomize would only warn about, said harmony's way.

// survey is what a kustomization and the local kustomizations it builds on refer to.
type survey struct {
	remote   []remoteRef // what kustomize would fetch over the network
	outside  []localRef  // local paths that lead outside the project
	helm     []helmRef   // Helm charts kustomize would inflate
	warnings []string    // deprecated fields, one line per kustomization file
}

// localRef is one local path a kustomization names.
type localRef struct {
	file  string // root-relative path of the kustomization file
	field string
	ref   string
	dir   string // the kustomization's folder, root-relative
}

// helmRef is one Helm chart a kustomization inflates (helmCharts:, the older
// helmChartInflationGenerator:, or a HelmChartInflationGenerator generator).
type helmRef struct {
	file    string // root-relative path of the kustomization file
	name    string
	repo    string
	version string
	values  bool   // the kustomization gives it values
	home    string // the chart home folder, root-relative
	chart   string // the chart's folder when the repository holds it, root-relative; else ""
}

func (h helmRef) String() string {
	s := h.name
	if h.version != "" {
		s += " " + h.version
	}
	if h.repo != "" {
		s += " from " + h.repo
	}
	return s
}

// deprecated are kustomize's deprecated fields and what replaces each, in kustomize's order.
func deprecated(k *types.Kustomization) []string {
	var out []string
	for _, f := range []struct {
		used      bool
		name, use string
	}{
		{k.Bases != nil, "bases", "resources"},
		{k.CommonLabels != nil, "commonLabels", "labels"},
		{k.ImageTags != nil, "imageTags", "images"},
		{k.PatchesJson6902 != nil, "patchesJson6902", "patches"},
		{k.PatchesStrategicMerge != nil, "patchesStrategicMerge", "patches"},
		{k.Vars != nil, "vars", "replacements"},
	} {
		if f.used {
			out = append(out, fmt.Sprintf("%s (use %s)", f.name, f.use))
		}
	}
	return out
}

// survey walks a kustomization and every local kustomization it builds on (bases,
// components, generator and transformer folders): each reference kustomize would fetch over
// the network (resources, bases, components, generators, transformers, validators, patches,
// replacements, CRD and configuration files, generator files and the OpenAPI schema), each
// local one that leaves the project, the Helm charts it would inflate and its deprecated
// fields. Only the project's own files are read.
func (t *tree) survey(dir string) (survey, error) {
	var out survey
	seen := map[string]bool{}
	var visit func(dir string, depth int) error
	visit = func(dir string, depth int) error {
		if seen[dir] || depth > 20 {
			return nil
		}
		seen[dir] = true
		file := t.kustomizationFile(dir)
		if file == "" {
			return nil // not a kustomization: kustomize says so itself
		}
		raw, err := t.readFile(file)
		if err != nil {
			return err
		}
		var k types.Kustomization
		if err := k.Unmarshal(raw); err != nil {
			return nil // kustomize reports it, with its own words
		}
		if d := deprecated(&k); len(d) > 0 {
			out.warnings = append(out.warnings, fmt.Sprintf("%s: deprecated fields: %s; kustomize edit fix rewrites them", file, strings.Join(d, ", ")))
		}
		k.FixKustomization()
		// Relative paths are relative to the kustomization's folder as kustomize sees it:
		// symbolic links resolved.
		base := dir
		if res, err := t.resolve(dir); err == nil {
			base = res
		}
		home := path.Join(base, "charts")
		if k.HelmGlobals != nil && k.HelmGlobals.ChartHome != "" {
			home = path.Join(base, k.HelmGlobals.ChartHome)
		}
		for _, c := range k.HelmCharts {
			out.helm = append(out.helm, t.helmRef(file, home, c.Name, c.Repo, c.Version,
				len(c.ValuesInline) > 0 || c.ValuesFile != "" || len(c.AdditionalValuesFiles) > 0))
		}
		var local []localRef
		check := func(field string, refs ...string) {
			for _, r := range refs {
				if remote, git := isRemote(r); remote {
					out.remote = append(out.remote, remoteRef{file: file, field: field, ref: r, git: git})
				} else if r != "" && !strings.Contains(r, "\n") {
					local = append(local, localRef{file: file, field: field, ref: r, dir: base})
				}
			}
		}
		check("resources", k.Resources...) // bases too: FixKustomization moved them here
		check("components", k.Components...)
		check("crds", k.Crds...)
		check("configurations", k.Configurations...)
		for _, f := range []struct {
			field string
			list  []string
		}{{"generators", k.Generators}, {"transformers", k.Transformers}, {"validators", k.Validators}} {
			field := f.field
			for _, g := range f.list {
				if strings.Contains(g, "\n") {
					out.remote = append(out.remote, inlineRemoteRefs(file, field, g)...)
					if field == "generators" {
						out.helm = append(out.helm, t.helmGenerators(file, home, []byte(g))...)
					}
					continue
				}
				check(field, g)
				if remote, _ := isRemote(g); !remote && field == "generators" {
					if p, ok := t.inside(base, g); ok && t.isFile(p) {
						if b, err := t.readFile(p); err == nil {
							out.helm = append(out.helm, t.helmGenerators(file, home, b)...)
						}
					}
				}
			}
		}
		for _, p := range append(k.Patches, k.PatchesJson6902...) {
			check("patches", p.Path)
		}
		for _, p := range k.PatchesStrategicMerge {
			check("patchesStrategicMerge", string(p))
		}
		for _, r := range k.Replacements {
			check("replacements", r.Path)
		}
		check("openapi", k.OpenAPI["path"])
		for _, g := range k.ConfigMapGenerator {
			check("configMapGenerator", fileSources(g.FileSources)...)
			check("configMapGenerator", g.EnvSources...)
		}
		for _, g := range k.SecretGenerator {
			check("secretGenerator", fileSources(g.FileSources)...)
			check("secretGenerator", g.EnvSources...)
		}
		for _, l := range local {
			sub, ok := t.inside(l.dir, l.ref)
			if !ok {
				out.outside = append(out.outside, l)
				continue
			}
			if !t.isDir(sub) {
				continue // a file, or a place kustomize will be refused
			}
			if err := visit(sub, depth+1); err != nil {
				return err
			}
		}
		return nil
	}
	err := visit(dir, 0)
	return out, err
}

// inside is ref, a path a kustomization in dir names (root-relative), as a root-relative
// path; false when it leads outside the project (with .., or an absolute path elsewhere).
func (t *tree) inside(dir, ref string) (string, bool) {
	if filepath.IsAbs(ref) || path.IsAbs(ref) {
		r, err := t.rel(ref)
		return r, err == nil
	}
	sub := path.Clean(path.Join(dir, filepath.ToSlash(ref)))
	if sub == ".." || strings.HasPrefix(sub, "../") {
		return "", false
	}
	return sub, true
}

// helmRef is a chart a kustomization file inflates, with its folder when the repository holds
// it: kustomize's chart home (helmGlobals.chartHome, default charts/) holds name/, or
// name-version/name/ where kustomize keeps the charts it pulls.
func (t *tree) helmRef(file, home, name, repo, version string, values bool) helmRef {
	h := helmRef{file: file, name: name, repo: repo, version: version, values: values, home: home}
	if home == ".." || strings.HasPrefix(home, "../") || name == "" {
		return h
	}
	candidates := []string{path.Join(home, name)}
	if version != "" {
		candidates = append(candidates, path.Join(home, name+"-"+version, name))
	}
	for _, c := range candidates {
		if t.isFile(path.Join(c, "Chart.yaml")) {
			h.chart = c
			break
		}
	}
	return h
}

// helmGenerators are the HelmChartInflationGenerator configurations among a generator file's
// documents.
func (t *tree) helmGenerators(file, home string, raw []byte) []helmRef {
	var out []helmRef
	for _, doc := range splitDocuments(raw) {
		var g struct {
			Kind         string         `json:"kind"`
			Name         string         `json:"name"`
			ChartName    string         `json:"chartName"`
			Repo         string         `json:"repo"`
			ChartRepoURL string         `json:"chartRepoUrl"`
			Version      string         `json:"version"`
			ValuesInline map[string]any `json:"valuesInline"`
			ValuesFile   string         `json:"valuesFile"`
		}
		if yaml.Unmarshal(doc.body, &g) != nil || g.Kind != "HelmChartInflationGenerator" {
			continue
		}
		name, repo := g.Name, g.Repo
		if g.ChartName != "" {
			name, repo = g.ChartName, g.ChartRepoURL
		}
		out = append(out, t.helmRef(file, home, name, repo, g.Version, len(g.ValuesInline) > 0 || g.ValuesFile != ""))
	}
	return out
}

// helmChartsError refuses the Helm charts of one kustomization file, with how to launch each
// chart instead: harmony renders a chart of the repository itself (-f, or harmony.yaml's
// chart:); a chart from a chart repository has to be put in the repository first.
func (s *Source) helmChartsError(refs []helmRef) error {
	file := refs[0].file
	var names []string
	for _, h := range refs {
		if h.file == file {
			names = append(names, h.String())
		}
	}
	h := refs[0]
	chart, local := h.chart, h.chart != ""
	var hints []string
	if !local {
		chart = path.Join(h.home, h.name)
		pull := []string{"helm", "pull", h.name, "--repo", h.repo}
		if strings.HasPrefix(h.repo, "oci://") {
			pull = []string{"helm", "pull", strings.TrimSuffix(h.repo, "/") + "/" + h.name}
		}
		if h.version != "" {
			pull = append(pull, "--version", h.version)
		}
		pull = append(pull, "--untar", "--untardir", h.home)
		if h.repo == "" {
			hints = append(hints, fmt.Sprintf("put the chart %s in the repository (%s), then launch it", h.name, chart))
		} else {
			hints = append(hints, "put the chart in the repository, then launch it: "+hint.Command(pull...))
		}
	}
	hints = append(hints, "launch the chart itself (harmony renders it with Helm's own engine): "+s.selectCommand(chart),
		"or name it in harmony.yaml: chart: "+chart)
	if h.values {
		hints = append(hints, "give it the values the kustomization sets with --values FILE, or harmony.yaml's values: [FILE]")
	}
	return hint.With(fmt.Errorf("%s: helmCharts: %w (%s)", file, ErrKustomizeHelm, strings.Join(names, ", ")), hints...)
}

// selectCommand is the command that launches folder (root-relative), for a hint.
func (s *Source) selectCommand(folder string) string {
	if s.project == nil {
		return hint.Command("harmony", "launch", "-f", folder)
	}
	return s.project.selectCommand(filepath.Join(s.Root, filepath.FromSlash(folder)))
}

// outsideError refuses a kustomization's path that leads outside the project, saying what
// harmony reads and what to do; launched is the folder of the kustomization launched.
func outsideError(root, launched string, l localRef) error {
	target := filepath.Join(root, filepath.FromSlash(l.dir), filepath.FromSlash(l.ref))
	if filepath.IsAbs(l.ref) {
		target = filepath.Clean(l.ref)
	}
	return hint.With(fmt.Errorf("%s: %s: %q is %w (%s)", l.file, l.field, l.ref, ErrOutside, root), outsideHint(root, launched, target, l.ref))
}

// outsideHint says what to do about a path outside the project at root, from the kustomization
// in launched: target is where the path leads ("" when unknown), ref how the repository names
// it. A git repository is the project whatever else: what it needs must be in it. Else a
// harmony.yaml in the folder that holds both, naming the kustomization, makes that folder the
// project (an empty one is refused).
func outsideHint(root, launched, target, ref string) string {
	if isDir(filepath.Join(root, ".git")) {
		return fmt.Sprintf("harmony reads only the git repository it launches, %s: copy %s into it, or refer to it by its git URL and launch with --allow-remote", root, ref)
	}
	if _, err := os.Lstat(filepath.Join(root, ProjectFile)); err == nil || target == "" {
		return fmt.Sprintf("harmony reads only the project's folder, %s: copy %s into it", root, ref)
	}
	common := root
	for {
		r, err := filepath.Rel(common, target)
		if err == nil && r != ".." && !strings.HasPrefix(r, ".."+string(filepath.Separator)) {
			break
		}
		if filepath.Dir(common) == common {
			break
		}
		common = filepath.Dir(common)
	}
	what, err := filepath.Rel(common, launched)
	if err != nil {
		what = launched
	}
	return fmt.Sprintf("harmony reads only the project's folder, %s (no git repository or %s marks a larger one): "+
		"make %s, the folder that holds both, the project with a %s there saying manifests: [%s], and launch again",
		root, ProjectFile, common, ProjectFile, filepath.ToSlash(what))
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}

// kustomizeOutput is held while kustomize's output is captured: the log package's output and
// os.Stderr are the process's.
var kustomizeOutput = make(chan struct{}, 1)

// captureKustomize runs build with kustomize's output captured: what it logs (the log package)
// and writes to os.Stderr (its deprecated fields' warnings, which survey says itself, naming
// the file, so they are dropped) goes to warn, line by line. Both are restored after. In a
// render child this is the only rendering; in the launch's own process (no child) other
// renderings wait.
func captureKustomize(ctx context.Context, warn func(string), build func()) error {
	select {
	case kustomizeOutput <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-kustomizeOutput }()
	lw := &lineWriter{line: func(l string) {
		if strings.HasPrefix(l, "# Warning: '") && strings.Contains(l, "' is deprecated") {
			return
		}
		if strings.TrimSpace(l) != "" {
			warn(l)
		}
	}}
	defer lw.flush()
	out, flags, prefix := log.Writer(), log.Flags(), log.Prefix()
	log.SetOutput(lw)
	log.SetFlags(0)
	log.SetPrefix("")
	defer func() {
		log.SetOutput(out)
		log.SetFlags(flags)
		log.SetPrefix(prefix)
	}()
	if r, w, err := os.Pipe(); err == nil {
		stderr := os.Stderr
		os.Stderr = w
		done := make(chan struct{})
		go func() {
			_, _ = io.Copy(lw, r)
			close(done)
		}()
		defer func() {
			os.Stderr = stderr
			w.Close()
			<-done
			r.Close()
		}()
	}
	build()
	return nil
}

// lineWriter passes each line written to it on, at most 100 lines of at most 4 KiB each.
type lineWriter struct {
	mu    sync.Mutex
	buf   []byte
	lines int
	line  func(string)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			if len(w.buf) > 4<<10 {
				w.emit(string(w.buf[:4<<10]))
				w.buf = w.buf[:0]
			}
			return len(p), nil
		}
		w.emit(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
}

func (w *lineWriter) emit(l string) {
	if w.lines++; w.lines <= 100 {
		if len(l) > 4<<10 {
			l = l[:4<<10]
		}
		w.line(l)
	}
}

func (w *lineWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.emit(string(w.buf))
		w.buf = nil
	}
}
