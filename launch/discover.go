// Package launch runs a repository's Kubernetes manifests: it discovers what to deploy, renders
// it (kustomize where there is a kustomization, Helm's engine for a chart, go-jsonnet for Jsonnet
// programs), plans it with a server-side dry run, applies it with server-side apply (field
// manager "harmony"), prunes what disappeared (an inventory of what it applied), waits until
// everything is ready (kstatus) and reports how to reach it.
package launch

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"sigs.k8s.io/yaml"

	"github.com/NationTech/harmony-agent/internal/hint"
)

// ProjectFile is the optional file at a repository's root that says what to launch.
const ProjectFile = "harmony.yaml"

// Config is harmony.yaml.
type Config struct {
	// Manifests are paths (files, folders or kustomizations) relative to the repository root.
	Manifests []string `json:"manifests,omitempty"`
	// Namespace for objects that name none.
	Namespace string `json:"namespace,omitempty"`
	// Timeout for the readiness wait, e.g. "5m".
	Timeout string `json:"timeout,omitempty"`
	// Services to show in the final table (default: all).
	Services []string `json:"services,omitempty"`
	// Chart is a Helm chart's folder to launch (with Values files and Set values).
	Chart string `json:"chart,omitempty"`
	// Values are values files for the chart, merged in order over its values.yaml.
	Values []string `json:"values,omitempty"`
	// Set values are merged over the values files.
	Set map[string]any `json:"set,omitempty"`
	// Images are built from the repository (like Skaffold's build.artifacts) and replace the
	// manifests' references to them.
	Images []ImageArtifact `json:"images,omitempty"`
	// Jsonnet gives the .jsonnet programs launched their arguments and library folders.
	Jsonnet *JsonnetConfig `json:"jsonnet,omitempty"`
}

// JsonnetConfig is harmony.yaml's jsonnet block: what the .jsonnet programs launched are given,
// as the jsonnet command's --tla-str, --ext-str, --tla-code, --ext-code and -J (and Argo CD's
// directory.jsonnet) give them.
type JsonnetConfig struct {
	// TLAs are top-level arguments, as strings: a program that is a function is called with them.
	TLAs map[string]string `json:"tlas,omitempty"`
	// ExtVars are external variables, as strings (std.extVar).
	ExtVars map[string]string `json:"extVars,omitempty"`
	// TLACode and ExtCode are the same given as Jsonnet code (a number, an object).
	TLACode map[string]string `json:"tlaCode,omitempty"`
	ExtCode map[string]string `json:"extCode,omitempty"`
	// Libs are library folders inside the repository (relative to harmony.yaml's folder) where
	// an import not found beside the importing file is looked for, the last first.
	Libs []string `json:"libs,omitempty"`
}

// Source is what discovery chose to deploy, and why.
type Source struct {
	// Root is the repository (or the directory given to launch).
	Root string
	// Kustomizations are directories to build with kustomize.
	Kustomizations []string
	// Files are plain manifest files.
	Files []string
	// Jsonnet are Jsonnet programs, each evaluated on its own with go-jsonnet.
	Jsonnet []string
	// JsonnetOptions are what the programs are given (harmony.yaml's jsonnet block), the
	// library folders as absolute paths; nil when there is none.
	JsonnetOptions *JsonnetConfig
	// Chart is a Helm chart to render.
	Chart *Chart
	// Reason says how they were found, for launch's first line and --dry-run.
	Reason string
	// Config is harmony.yaml when present.
	Config *Config
	// Images are the images the repository builds itself (skaffold.yaml's build.artifacts or
	// harmony.yaml's images), to build, load and substitute before anything is applied.
	Images []ImageArtifact
	// Warnings are what the launch does not do that the repository asks for (skaffold.yaml's
	// lifecycle hooks and test phases), one line each, for launch's first lines and --dry-run.
	Warnings []string

	project *Project // the project discovered, for the commands hints name
	// skaffold says the manifests are those skaffold.yaml names.
	skaffold bool
}

// launchCommand is the launch of src's project with flags added, for a hint.
func (s *Source) launchCommand(flags ...string) string {
	if s.project == nil {
		return hint.Command(append([]string{"harmony", "launch"}, flags...)...)
	}
	return s.project.Command("launch", flags...)
}

// ErrAmbiguous means discovery found several candidates and will not guess.
var ErrAmbiguous = errors.New("more than one thing could be launched")

// ErrNothingFound means no manifests were found.
var ErrNothingFound = errors.New("no Kubernetes manifests found")

// The folders people keep manifests in, in order of preference.
var usualFolders = []string{"manifests", "deploy", "k8s", "kubernetes", "kubernetes-manifests", ".harmony", "kube", "deployment", "config/k8s"}

var kustomizationNames = []string{"kustomization.yaml", "kustomization.yml", "Kustomization"}

// kustomizationFile returns the kustomization file of a folder (root-relative), or "". A file
// with that name counts even when it cannot be read (a FIFO, a link leaving the project):
// reading it later refuses it, naming it.
func (t *tree) kustomizationFile(dir string) string {
	res, err := t.resolve(dir)
	if err != nil {
		return ""
	}
	m, sub := t.route(res)
	for _, n := range kustomizationNames {
		if _, ok := m.overlay[path.Join(sub, n)]; ok {
			return path.Join(dir, n)
		}
		if st, err := m.root.Lstat(filepath.FromSlash(path.Join(sub, n))); err == nil && !st.IsDir() {
			return path.Join(dir, n)
		}
	}
	return ""
}

func (t *tree) isKustomization(dir string) bool { return t.kustomizationFile(dir) != "" }

func isYAML(name string) bool {
	ext := strings.ToLower(filepath.Ext(name))
	return ext == ".yaml" || ext == ".yml" || ext == ".json"
}

// isJsonnet reports whether name is a Jsonnet program: a .jsonnet file (a .libsonnet file is a
// library the programs import, launched only when named).
func isJsonnet(name string) bool { return strings.EqualFold(filepath.Ext(name), ".jsonnet") }

// jsonnetPrograms lists the Jsonnet programs at the top of a folder (root-relative).
func (t *tree) jsonnetPrograms(dir string) []string {
	entries, err := t.readDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() && isJsonnet(e.Name()) {
			out = append(out, path.Join(dir, e.Name()))
		}
	}
	return out
}

// jsonnetDirs lists the folders holding Jsonnet programs (depth-limited, outside charts and
// dependency folders): only the root when it holds some, as a root kustomization is the only one.
func (t *tree) jsonnetDirs() []string {
	if len(t.jsonnetPrograms(".")) > 0 {
		return []string{"."}
	}
	var dirs []string
	_ = t.walk(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() || p == "." {
			return nil
		}
		if skipDirs[d.Name()] || strings.Count(p, "/") >= 3 || t.isChart(p) {
			return filepath.SkipDir
		}
		if len(t.jsonnetPrograms(p)) > 0 {
			dirs = append(dirs, p)
		}
		return nil
	})
	return dirs
}

// Discover finds what to launch in root: harmony.yaml, else a root kustomization, else one of
// the usual folders, else the one top kustomization or folder of Jsonnet programs, else a
// depth-limited scan for Kubernetes YAML. files, when given, are used as they are. Everything it reads is inside root (see tree): paths and links leading outside,
// and files that are not regular, are refused, naming them.
func Discover(root string, files []string) (*Source, error) {
	return discover(root, files, "")
}

// discover is Discover with a Skaffold profile active. The images to build come from
// harmony.yaml's images, else from skaffold.yaml's build.artifacts; the manifests from -f, else
// harmony.yaml's manifests or chart, else the manifests skaffold.yaml names, else discovery.
func discover(root string, files []string, profile string) (*Source, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(abs); err != nil || !st.IsDir() {
		return nil, hint.With(fmt.Errorf("%q is not a directory", root), "run harmony launch in a repository, or name one: harmony launch DIR")
	}
	t, err := openTree(abs, DefaultMaxFileSize, 0)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	cfg, err := t.loadConfig()
	if err != nil {
		return nil, err
	}
	if cfg == nil && len(files) == 0 {
		if err := t.checkSkaffoldVariants(); err != nil {
			return nil, err
		}
	}
	var sk *skaffold
	if cfg == nil || len(cfg.Images) == 0 || (len(cfg.Manifests) == 0 && cfg.Chart == "") || profile != "" {
		if sk, err = t.readSkaffold(profile); err != nil {
			return nil, err
		}
	}
	src, err := t.discover(abs, files, cfg, sk)
	if err != nil {
		return nil, err
	}
	if cfg != nil && cfg.Jsonnet != nil {
		o := *cfg.Jsonnet
		o.Libs = nil
		for _, l := range cfg.Jsonnet.Libs {
			if filepath.IsAbs(l) || path.IsAbs(filepath.ToSlash(l)) || filepath.VolumeName(l) != "" {
				return nil, hint.With(fmt.Errorf("%s: jsonnet.libs: %q is %w", ProjectFile, l, ErrOutside),
					"name library folders inside the repository, relative to the folder holding "+ProjectFile)
			}
			o.Libs = append(o.Libs, t.abs(path.Clean(filepath.ToSlash(l))))
		}
		src.JsonnetOptions = &o
	}
	switch {
	case cfg != nil && len(cfg.Images) > 0:
		for i, a := range cfg.Images {
			a.Context = path.Clean(filepathToSlash(a.Context))
			if err := checkArtifact(t, fmt.Sprintf("%s: images[%d]", ProjectFile, i), a); err != nil {
				return nil, err
			}
			src.Images = append(src.Images, a)
		}
		if err := distinctImages(src.Images); err != nil {
			return nil, fmt.Errorf("%s: images: %w", ProjectFile, err)
		}
	case sk != nil:
		src.Images = sk.Artifacts
	}
	if sk != nil {
		src.Warnings = sk.warnings(cfg == nil || len(cfg.Images) == 0, src.skaffold)
	}
	return src, nil
}

func (t *tree) discover(abs string, files []string, cfg *Config, sk *skaffold) (*Source, error) {
	var err error
	src := &Source{Root: abs}
	if len(files) > 0 {
		for _, f := range files {
			name, err := t.rel(f)
			if err != nil {
				return nil, fmt.Errorf("-f %q: %w", f, err)
			}
			if err := src.add(t, name, "-f "+f); err != nil {
				return nil, err
			}
		}
		src.Reason = "files named with -f"
		return src, nil
	}
	src.Config = cfg
	if cfg != nil && (len(cfg.Manifests) > 0 || cfg.Chart != "") {
		if cfg.Chart != "" {
			if src.Chart, err = chartFromConfig(t, cfg); err != nil {
				return nil, err
			}
		}
		for _, m := range cfg.Manifests {
			name := path.Clean(filepath.ToSlash(m))
			if filepath.IsAbs(m) || path.IsAbs(name) || filepath.VolumeName(m) != "" || name == ".." || strings.HasPrefix(name, "../") {
				return nil, hint.With(fmt.Errorf("%s: manifests: %q is %w", ProjectFile, m, ErrOutside),
					"list paths inside the project, relative to its root")
			}
			if err := src.add(t, name, ProjectFile+": manifests: "+m); err != nil {
				return nil, err
			}
		}
		src.Reason = "the files listed in " + ProjectFile
		return src, nil
	}
	if sk != nil && (len(sk.Files) > 0 || len(sk.Kustomizations) > 0 || sk.Chart != nil) {
		for _, f := range sk.Files {
			src.Files = append(src.Files, t.abs(f))
		}
		for _, k := range sk.Kustomizations {
			src.Kustomizations = append(src.Kustomizations, t.abs(k))
		}
		src.Chart, src.skaffold = sk.Chart, true
		src.Reason = "the manifests " + SkaffoldFile + " names"
		if sk.Profile != "" {
			src.Reason += " (profile " + sk.Profile + ")"
		}
		return src, nil
	}
	if t.isKustomization(".") && t.isChart(".") {
		return nil, hint.With(fmt.Errorf("%s: a kustomization and a Helm chart at the root: %w", abs, ErrAmbiguous),
			"harmony applies nothing when the choice is not clear; write it into "+ProjectFile+":",
			"  chart: .          (the Helm chart)",
			"  manifests: [.]    (the kustomization)")
	}
	if t.isKustomization(".") {
		src.Kustomizations = []string{abs}
		src.Reason = "the kustomization at the root"
		return src, nil
	}
	if t.isChart(".") {
		src.Chart = &Chart{Dir: abs}
		src.Reason = "the Helm chart at the root"
		return src, nil
	}
	var found []string
	for _, f := range usualFolders {
		if t.isDir(f) {
			ok, err := t.hasManifests(f)
			if err != nil {
				return nil, err
			}
			if ok {
				found = append(found, f)
			}
		}
	}
	if len(found) == 0 && len(t.jsonnetPrograms(".")) == 0 {
		// A repository of apps (a monorepo, an examples repository): each folder holding an
		// app is launched as an app of its own, from its folder.
		if apps := t.appFolders(); len(apps) > 1 {
			return nil, ambiguous(abs, "several apps", fromSlash(apps))
		}
	}
	// Every candidate, each once and each launching without a second choice: the charts, each
	// usual folder (or its top kustomizations: a base's overlays, side by side), and the top
	// kustomizations anywhere else (a root-level kustomize/ folder). One is the project.
	charts := t.findCharts()
	if len(charts) > 0 || len(found) > 0 {
		cands := t.candidates(found, charts)
		if len(cands) > 1 {
			what := "several manifest folders"
			switch {
			case len(charts) > 0:
				what = chartsAnd(len(charts), len(cands)-len(charts))
			case slices.ContainsFunc(cands, func(c string) bool { return !inAny(c, found) && len(t.jsonnetPrograms(c)) > 0 }):
				what = "Jsonnet programs and other manifests"
			case len(found) == 1:
				what = "several kustomizations"
			}
			return nil, ambiguous(abs, what, fromSlash(cands))
		}
		if len(charts) == 1 && len(cands) == 1 {
			src.Chart = &Chart{Dir: t.abs(charts[0])}
			src.Reason = "the Helm chart " + shown(charts[0]) + "/ (the only chart; no other manifests)"
			return src, nil
		}
	}
	if len(found) == 1 {
		if err := src.addDir(t, found[0]); err != nil {
			return nil, err
		}
		src.Reason = "the " + found[0] + "/ folder"
		return src, nil
	}
	// Kustomizations and folders of Jsonnet programs anywhere (depth-limited): the one top
	// kustomization, or the one folder of programs, is the project; several are ambiguous.
	tops := t.topKustomizations(t.kustomizationsUnder())
	var jdirs []string
	for _, j := range t.jsonnetDirs() {
		if !inAny(j, tops) {
			jdirs = append(jdirs, j)
		}
	}
	switch {
	case len(tops) > 0 && len(jdirs) > 0:
		return nil, ambiguous(abs, "Jsonnet programs and kustomizations", fromSlash(sorted(tops, jdirs)))
	case len(tops) == 1:
		src.Kustomizations = []string{t.abs(tops[0])}
		src.Reason = "the kustomization " + shown(filepath.FromSlash(tops[0])) + "/ (the only one no other builds on)"
		return src, nil
	case len(tops) > 1:
		return nil, ambiguous(abs, "several kustomizations", fromSlash(tops))
	case len(jdirs) > 1:
		return nil, ambiguous(abs, "several folders of Jsonnet programs", fromSlash(jdirs))
	case len(jdirs) == 1:
		if err := src.addDir(t, jdirs[0]); err != nil {
			return nil, err
		}
		src.Reason = "the Jsonnet programs in " + shown(filepath.FromSlash(jdirs[0])) + "/"
		if jdirs[0] == "." {
			src.Reason = "the Jsonnet programs at the root"
		}
		return src, nil
	}
	names, err := t.scan(".", 3)
	if err != nil {
		return nil, err
	}
	if len(names) == 0 {
		return nil, hint.With(fmt.Errorf("%s: %w", abs, ErrNothingFound),
			"put them in a manifests/ folder, add a kustomization.yaml, or list them in "+ProjectFile)
	}
	for _, n := range names {
		src.Files = append(src.Files, t.abs(n))
	}
	src.Reason = "a scan of the repository (1 file with Kubernetes objects)"
	if len(names) != 1 {
		src.Reason = fmt.Sprintf("a scan of the repository (%d files with Kubernetes objects)", len(names))
	}
	return src, nil
}

func fromSlash(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = filepath.FromSlash(n)
	}
	return out
}

// add adds a file or a folder (root-relative) named by the user (what says where it comes from).
// notFound is a path the user named (-f, harmony.yaml) that is not there: errors.Is(err,
// fs.ErrNotExist), without the library's wording.
type notFound string

func (e notFound) Error() string        { return string(e) }
func (e notFound) Is(target error) bool { return target == fs.ErrNotExist }

func (s *Source) add(t *tree, name, what string) error {
	res, st, err := t.stat(name)
	switch {
	case errors.Is(err, ErrOutside):
		return fmt.Errorf("%s: %w", what, err)
	case errors.Is(err, fs.ErrNotExist):
		fix := "name a file or folder of the project, relative to the folder you run harmony from, else to the project root"
		if strings.HasPrefix(what, ProjectFile) {
			fix = "fix the path in " + ProjectFile + " (manifests: [...]): relative to the project root, " + s.Root
		}
		return hint.With(notFound(fmt.Sprintf("%s: %q does not exist in the project", what, name)), fix)
	case err != nil:
		return fmt.Errorf("%s: %w", what, err)
	case st.IsDir():
		return s.addDir(t, res)
	case !st.Mode().IsRegular():
		return fmt.Errorf("%s: %q is %w (%s)", what, name, ErrNotRegular, fileType(st.Mode()))
	case isJsonnet(name) || strings.EqualFold(path.Ext(name), ".libsonnet"):
		s.Jsonnet = append(s.Jsonnet, t.abs(name))
		return nil
	}
	if err := t.notSkaffoldConfig(name, what); err != nil {
		return err
	}
	s.Files = append(s.Files, t.abs(name))
	return nil
}

// notSkaffoldConfig refuses a file named as manifests (-f, harmony.yaml's manifests) that is a
// Skaffold config (apiVersion skaffold/…): applied as an object it fails as a kind the cluster
// lacks ("install the operator or CRD"), and the images it builds would not be built.
func (t *tree) notSkaffoldConfig(name, what string) error {
	if ext := strings.ToLower(path.Ext(name)); ext != ".yaml" && ext != ".yml" {
		return nil
	}
	b, err := t.readFile(name)
	if err != nil || !skaffoldConfig.Match(b) {
		return nil // read (and reported) with the manifests
	}
	err = fmt.Errorf("%s: %q is a Skaffold config, not Kubernetes manifests", what, shown(name))
	if path.Base(name) == SkaffoldFile && path.Dir(name) == "." {
		return hint.With(err, "harmony reads "+SkaffoldFile+" by itself: launch without -f (it builds the images it names and applies its manifests)")
	}
	return hint.With(err, "harmony reads Skaffold's configuration from "+SkaffoldFile+" only: copy (or link) this one there, then launch without -f:",
		"  "+hint.Command("cp", fromHere(t.abs(name)), fromHere(t.abs(SkaffoldFile))),
		"or name the manifests it deploys: -f PATH (with the images to build in "+ProjectFile+": images: [{image: NAME, context: DIR}])")
}

// loadConfig reads root's harmony.yaml; it returns nil when there is none. Like every read of
// a project, it stays inside root and reads only a regular file (a FIFO must not hang it).
func loadConfig(root string) (*Config, error) {
	t, err := openTree(root, DefaultMaxFileSize, 0)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	return t.loadConfig()
}

func (t *tree) loadConfig() (*Config, error) {
	root := t.dir
	if _, err := t.root.Lstat(ProjectFile); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	raw, err := t.readFile(ProjectFile)
	if err != nil {
		return nil, err
	}
	if raw, err = normalizeConfig(raw); err != nil {
		return nil, err
	}
	var p Config
	if err := yaml.UnmarshalStrict(raw, &p); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(root, ProjectFile), err)
	}
	if p.Timeout != "" {
		if d, err := time.ParseDuration(p.Timeout); err != nil || d <= 0 {
			msg := fmt.Sprintf("%s: timeout: %q is not a duration", ProjectFile, p.Timeout)
			if err == nil {
				msg = fmt.Sprintf("%s: timeout: %q must be more than zero (e.g. 5m)", ProjectFile, p.Timeout)
			} else if _, nerr := strconv.ParseFloat(p.Timeout, 64); nerr == nil {
				msg += ": add a unit, e.g. " + p.Timeout + "m (s, m, h)"
			} else {
				msg += " (e.g. 5m, 90s, 1h30m)"
			}
			return nil, errors.New(msg)
		}
	}
	if p.Chart == "" && (len(p.Values) > 0 || len(p.Set) > 0) {
		return nil, fmt.Errorf("%s: values and set need a chart: name it (chart: PATH)", ProjectFile)
	}
	if len(p.Manifests) == 0 && p.Chart == "" && len(p.Images) == 0 && p.Jsonnet == nil {
		return nil, fmt.Errorf("%s: manifests: list at least one path (or name a chart, or images to build)", ProjectFile)
	}
	return &p, nil
}

// AmbiguousError says discovery found several candidates in a project and chose none.
type AmbiguousError struct {
	Root string
	What string
	// Candidates are paths relative to Root.
	Candidates []string
}

func (e *AmbiguousError) Error() string {
	names := make([]string, len(e.Candidates))
	for i, c := range e.Candidates {
		names[i] = shown(c)
	}
	return fmt.Sprintf("%s: %s (%s): %v", e.Root, e.What, strings.Join(names, ", "), ErrAmbiguous)
}

// shown is a repository's path as harmony's text shows it: as it is, or as a shell reads it
// ($'…', see hint.Command) when it holds a line break or another character a terminal does not
// show as itself, so that no folder name prints a line of its own (a fake hint).
func shown(p string) string {
	if !utf8.ValidString(p) || strings.ContainsFunc(p, hint.Invisible) {
		return hint.Command(p)
	}
	return p
}

// Is makes errors.Is(err, ErrAmbiguous) hold.
func (e *AmbiguousError) Is(target error) bool { return target == ErrAmbiguous }

// kustomizationsUnder lists the kustomizations below the root (depth-limited, outside charts).
func (t *tree) kustomizationsUnder() []string {
	var kdirs []string
	_ = t.walk(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() || p == "." {
			return nil
		}
		if skipDirs[d.Name()] || strings.Count(p, "/") >= 4 || t.isChart(p) {
			return filepath.SkipDir
		}
		if t.isKustomization(p) {
			kdirs = append(kdirs, p)
		}
		return nil
	})
	return kdirs
}

// candidates are the things the root offers to launch (root-relative, sorted, each once): the
// charts; each usual folder, or its top kustomizations when it has several (overlays); the top
// kustomizations outside those; and, with none of these, the folders a scan finds manifests in.
func (t *tree) candidates(found, charts []string) []string {
	var out []string
	add := func(c string) {
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	for _, c := range charts {
		add(c)
	}
	tops := t.topKustomizations(t.kustomizationsUnder())
	for _, f := range found {
		var in []string
		for _, k := range tops {
			if k == f || strings.HasPrefix(k, f+"/") {
				in = append(in, k)
			}
		}
		if len(in) > 1 && !t.isKustomization(f) {
			for _, k := range in {
				add(k)
			}
		} else {
			add(f)
		}
	}
	for _, k := range tops {
		if !inAny(k, found) && !inAny(k, charts) {
			add(k)
		}
	}
	for _, j := range t.jsonnetDirs() {
		if !inAny(j, found) && !inAny(j, charts) && !inAny(j, tops) {
			add(j)
		}
	}
	if len(out) == len(charts) && len(found) == 0 {
		names, _ := t.scan(".", 3)
		for _, n := range names {
			if d := path.Dir(n); !inAny(d, charts) {
				add(d)
			}
		}
	}
	sort.Strings(out)
	return out
}

// inAny reports whether d is one of dirs or inside one.
func inAny(d string, dirs []string) bool {
	for _, o := range dirs {
		if d == o || strings.HasPrefix(d, o+"/") {
			return true
		}
	}
	return false
}

func chartsAnd(charts, folders int) string {
	switch {
	case folders == 0:
		return "several Helm charts"
	case charts == 1:
		return "a Helm chart and other manifests"
	}
	return "Helm charts and other manifests"
}

func ambiguous(root, what string, candidates []string) error {
	return &AmbiguousError{Root: root, What: what, Candidates: candidates}
}

// sorted is the lists joined and sorted.
func sorted(lists ...[]string) []string {
	out := slices.Concat(lists...)
	sort.Strings(out)
	return out
}

// addDir adds a folder (root-relative): itself when it is a kustomization; else the Jsonnet
// programs at its top (with the YAML files there holding Kubernetes objects: its .json files are
// the programs' data); else its top-level kustomizations (those no other kustomization in it
// uses), or its plain YAML files. Several top-level kustomizations (e.g. overlays) are ambiguous.
func (s *Source) addDir(t *tree, dir string) error {
	if t.isChart(dir) && !t.isKustomization(dir) {
		if s.Chart != nil {
			return ambiguous(s.Root, "several Helm charts", []string{rel(s.Root, s.Chart.Dir), filepath.FromSlash(dir)})
		}
		s.Chart = &Chart{Dir: t.abs(dir)}
		return nil
	}
	if t.isKustomization(dir) {
		s.Kustomizations = append(s.Kustomizations, t.abs(dir))
		return nil
	}
	if progs := t.jsonnetPrograms(dir); len(progs) > 0 {
		for _, p := range progs {
			s.Jsonnet = append(s.Jsonnet, t.abs(p))
		}
		files, err := t.scan(dir, 0)
		if err != nil {
			return err
		}
		for _, f := range files {
			if ext := strings.ToLower(path.Ext(f)); (ext == ".yaml" || ext == ".yml") && path.Base(f) != SkaffoldFile {
				s.Files = append(s.Files, t.abs(f))
			}
		}
		return nil
	}
	var kdirs []string
	err := t.walk(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != dir && t.isKustomization(p) {
			kdirs = append(kdirs, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(kdirs) > 0 {
		tops := t.topKustomizations(kdirs)
		if len(tops) > 1 {
			return ambiguous(s.Root, "several kustomizations", fromSlash(tops))
		}
		for _, k := range tops {
			s.Kustomizations = append(s.Kustomizations, t.abs(k))
		}
		return nil
	}
	entries, err := t.readDir(dir)
	if err != nil {
		return err
	}
	n := 0
	for _, e := range entries {
		if !e.IsDir() && isYAML(e.Name()) {
			s.Files = append(s.Files, t.abs(path.Join(dir, e.Name())))
			n++
		}
	}
	if n == 0 {
		return hint.With(fmt.Errorf("%s: %w", t.abs(dir), ErrNothingFound), "the folder holds no .yaml, .yml, .json or .jsonnet file")
	}
	return nil
}

// topKustomizations drops every kustomization another one in the list builds on (its bases are
// never applied a second time on their own).
func (t *tree) topKustomizations(dirs []string) []string {
	used := map[string]bool{}
	for _, d := range dirs {
		for _, ref := range t.kustomizationRefs(d) {
			used[path.Clean(path.Join(d, filepath.ToSlash(ref)))] = true
		}
	}
	var tops []string
	for _, d := range dirs {
		if !used[path.Clean(d)] && !underAny(d, dirs) {
			tops = append(tops, d)
		}
	}
	sort.Strings(tops)
	return tops
}

// underAny reports whether d is inside another kustomization of the list (a component or a
// nested base it uses by path).
func underAny(d string, dirs []string) bool {
	for _, o := range dirs {
		if o != d && (o == "." || strings.HasPrefix(d, o+"/")) {
			return true
		}
	}
	return false
}

// kustomizationRefs lists the local directories a kustomization refers to.
func (t *tree) kustomizationRefs(dir string) []string {
	f := t.kustomizationFile(dir)
	if f == "" {
		return nil
	}
	raw, err := t.readFile(f)
	if err != nil {
		return nil
	}
	var k struct {
		Resources  []string `json:"resources"`
		Bases      []string `json:"bases"`
		Components []string `json:"components"`
	}
	_ = yaml.Unmarshal(raw, &k)
	return append(append(k.Resources, k.Bases...), k.Components...)
}

// appFolders are the folders holding an app of their own (harmony.yaml, skaffold.yaml, a chart,
// a kustomization, a usual folder of manifests, or manifests): the top-level ones, and within a
// top-level folder that is not one (services/api, services/web), down to three levels. The
// usual manifests and chart folders are the repository's own, never apps.
func (t *tree) appFolders() []string {
	var apps []string
	var walk func(dir string, depth int)
	walk = func(dir string, depth int) {
		entries, err := t.readDir(dir)
		if err != nil {
			return
		}
		for _, e := range entries {
			name := e.Name()
			p := path.Join(dir, name)
			if !e.IsDir() || skipDirs[name] || strings.HasPrefix(name, ".") || inUsualFolder(".", p) || len(apps) >= 200 {
				continue
			}
			switch {
			case t.holdsApp(p):
				apps = append(apps, p)
			case depth < 3:
				walk(p, depth+1)
			}
		}
	}
	walk(".", 1)
	return apps
}

// holdsApp reports whether dir (root-relative) holds something deployable of its own.
func (t *tree) holdsApp(dir string) bool {
	if t.isFile(path.Join(dir, ProjectFile)) || t.isFile(path.Join(dir, SkaffoldFile)) || t.isChart(dir) || t.isKustomization(dir) ||
		len(t.jsonnetPrograms(dir)) > 0 {
		return true
	}
	for _, f := range usualFolders {
		if d := path.Join(dir, f); t.isDir(d) {
			if ok, _ := t.hasManifests(d); ok {
				return true
			}
		}
	}
	for _, f := range chartFolders {
		if t.isChart(path.Join(dir, f)) {
			return true
		}
	}
	files, _ := t.scan(dir, 0) // its own files, not its subfolders'
	return len(files) > 0
}

var skipDirs = map[string]bool{".git": true, "vendor": true, "node_modules": true, ".github": true, ".gitlab": true,
	".circleci": true, ".buildkite": true, "testdata": true, ".idea": true, ".vscode": true, "dist": true, "target": true}

var k8sObject = regexp.MustCompile(`(?m)^\s*"?apiVersion"?\s*:\s*\S+`)
var k8sKind = regexp.MustCompile(`(?m)^\s*"?kind"?\s*:\s*\S+`)

// hasManifests reports whether a folder (root-relative) holds a kustomization, Jsonnet programs
// or YAML with Kubernetes objects.
func (t *tree) hasManifests(dir string) (bool, error) {
	if t.isKustomization(dir) || len(t.jsonnetPrograms(dir)) > 0 {
		return true, nil
	}
	files, err := t.scan(dir, 4)
	if err != nil || len(files) > 0 {
		return len(files) > 0, err
	}
	found := false
	_ = t.walk(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && t.isChart(p) {
			return filepath.SkipDir
		}
		if err == nil && d.IsDir() && t.isKustomization(p) {
			found = true
			return fs.SkipAll
		}
		return nil
	})
	return found, nil
}

// scanMax is the largest file the scan looks into: bigger YAML is data, not manifests.
const scanMax = 4 << 20

// scan walks dir (root-relative) to depth, skipping VCS, dependency and CI folders and Helm
// chart templates, and returns the YAML files that hold Kubernetes objects (apiVersion and
// kind; a Skaffold config, apiVersion skaffold/…, is not one). A YAML file it cannot read safely (not a regular file, a link leaving the project)
// is an error naming it; one larger than scanMax is not a manifest.
func (t *tree) scan(dir string, depth int) ([]string, error) {
	var files []string
	err := t.walk(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p, dir), "/")
		if d.IsDir() {
			if p == dir {
				return nil
			}
			if skipDirs[d.Name()] || strings.Count(rel, "/") >= depth {
				return filepath.SkipDir
			}
			if t.isChart(p) {
				return filepath.SkipDir // a Helm chart (templates, crds) is not plain manifests
			}
			return nil
		}
		if !isYAML(d.Name()) || d.Name() == ProjectFile || strings.HasPrefix(strings.ToLower(d.Name()), "kustomization") {
			return nil
		}
		if _, st, err := t.stat(p); err == nil && st.Mode().IsRegular() && st.Size() > scanMax {
			return nil
		}
		b, err := t.readFileMax(p, scanMax)
		if err != nil {
			return err
		}
		if k8sObject.Match(b) && k8sKind.Match(b) && !skaffoldConfig.Match(b) {
			files = append(files, p)
		}
		return nil
	})
	return files, err
}
