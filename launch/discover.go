// Package launch runs a repository's Kubernetes manifests: it discovers what to deploy, renders
// it (kustomize where there is a kustomization), plans it with a server-side dry run, applies it
// with server-side apply (field manager "harmony"), prunes what disappeared (an inventory of what
// it applied), waits until everything is ready (kstatus) and reports how to reach it.
package launch

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

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
}

// Source is what discovery chose to deploy, and why.
type Source struct {
	// Root is the repository (or the directory given to launch).
	Root string
	// Kustomizations are directories to build with kustomize.
	Kustomizations []string
	// Files are plain manifest files.
	Files []string
	// Reason says how they were found, for --print-plan.
	Reason string
	// Config is harmony.yaml when present.
	Config *Config
}

// ErrAmbiguous means discovery found several candidates and will not guess.
var ErrAmbiguous = errors.New("more than one thing could be launched")

// ErrNothingFound means no manifests were found.
var ErrNothingFound = errors.New("no Kubernetes manifests found")

// The folders people keep manifests in, in order of preference.
var usualFolders = []string{"manifests", "deploy", "k8s", "kubernetes", "kubernetes-manifests", ".harmony", "kube", "deployment", "config/k8s"}

var kustomizationNames = []string{"kustomization.yaml", "kustomization.yml", "Kustomization"}

func isKustomization(dir string) bool {
	for _, n := range kustomizationNames {
		if st, err := os.Stat(filepath.Join(dir, n)); err == nil && st.Mode().IsRegular() {
			return true
		}
	}
	return false
}

func isYAML(name string) bool {
	ext := strings.ToLower(filepath.Ext(name))
	return ext == ".yaml" || ext == ".yml" || ext == ".json"
}

// Discover finds what to launch in root: harmony.yaml, else a root kustomization, else one of
// the usual folders, else a depth-limited scan for Kubernetes YAML. files, when given, are used
// as they are.
func Discover(root string, files []string) (*Source, error) {
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	if st, err := os.Stat(abs); err != nil || !st.IsDir() {
		return nil, hint.With(fmt.Errorf("%q is not a directory", root), "run harmony launch in a repository, or name one: harmony launch DIR")
	}
	src := &Source{Root: abs}
	if len(files) > 0 {
		for _, f := range files {
			p, err := filepath.Abs(f)
			if err != nil {
				return nil, err
			}
			if st, err := os.Stat(p); err != nil {
				return nil, fmt.Errorf("-f %q: %w", f, err)
			} else if st.IsDir() {
				if err := src.addDir(p); err != nil {
					return nil, err
				}
				continue
			}
			src.Files = append(src.Files, p)
		}
		src.Reason = "files named with -f"
		return src, nil
	}
	cfg, err := loadConfig(abs)
	if err != nil {
		return nil, err
	}
	if cfg != nil {
		src.Config = cfg
		for _, m := range cfg.Manifests {
			p := filepath.Join(abs, m)
			st, err := os.Stat(p)
			if err != nil {
				return nil, fmt.Errorf("%s: manifests: %w", ProjectFile, err)
			}
			if st.IsDir() {
				if err := src.addDir(p); err != nil {
					return nil, err
				}
			} else {
				src.Files = append(src.Files, p)
			}
		}
		src.Reason = "listed in " + ProjectFile
		return src, nil
	}
	if isKustomization(abs) {
		src.Kustomizations = []string{abs}
		src.Reason = "kustomization at the root"
		return src, nil
	}
	var found []string
	for _, f := range usualFolders {
		if st, err := os.Stat(filepath.Join(abs, f)); err == nil && st.IsDir() && hasManifests(filepath.Join(abs, f)) {
			found = append(found, f)
		}
	}
	switch len(found) {
	case 1:
		if err := src.addDir(filepath.Join(abs, found[0])); err != nil {
			return nil, err
		}
		src.Reason = "the " + found[0] + "/ folder"
		return src, nil
	case 0:
	default:
		return nil, ambiguous(abs, "several manifest folders", found)
	}
	// Kustomizations anywhere (depth-limited): the top one is the project; several are ambiguous.
	var kdirs []string
	_ = filepath.WalkDir(abs, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() || p == abs {
			return nil
		}
		rel, _ := filepath.Rel(abs, p)
		if skipDirs[d.Name()] || strings.Count(rel, string(filepath.Separator)) >= 4 {
			return filepath.SkipDir
		}
		if isKustomization(p) {
			kdirs = append(kdirs, p)
		}
		return nil
	})
	if tops := topKustomizations(kdirs); len(tops) == 1 {
		src.Kustomizations = tops
		r, _ := filepath.Rel(abs, tops[0])
		src.Reason = "the kustomization " + r + "/ (the only one no other builds on)"
		return src, nil
	} else if len(tops) > 1 {
		var rels []string
		for _, t := range tops {
			r, _ := filepath.Rel(abs, t)
			rels = append(rels, r)
		}
		return nil, ambiguous(abs, "several kustomizations", rels)
	}
	files, err = scan(abs, 3)
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, hint.With(fmt.Errorf("%s: %w", abs, ErrNothingFound),
			"put them in a manifests/ folder, add a kustomization.yaml, or list them in "+ProjectFile,
			"or name them: harmony launch -f FILE")
	}
	src.Files = files
	src.Reason = fmt.Sprintf("a scan of the repository found %d files with Kubernetes objects", len(files))
	return src, nil
}

// loadConfig reads root's harmony.yaml; it returns nil when there is none.
func loadConfig(root string) (*Config, error) {
	raw, err := os.ReadFile(filepath.Join(root, ProjectFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var p Config
	if err := yaml.UnmarshalStrict(raw, &p); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(root, ProjectFile), err)
	}
	if p.Timeout != "" {
		if _, err := time.ParseDuration(p.Timeout); err != nil {
			return nil, fmt.Errorf("%s: timeout: %w", ProjectFile, err)
		}
	}
	if len(p.Manifests) == 0 {
		return nil, fmt.Errorf("%s: manifests: list at least one path", ProjectFile)
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
	return fmt.Sprintf("%s: %s (%s): %v", e.Root, e.What, strings.Join(e.Candidates, ", "), ErrAmbiguous)
}

// Is makes errors.Is(err, ErrAmbiguous) hold.
func (e *AmbiguousError) Is(target error) bool { return target == ErrAmbiguous }

func ambiguous(root, what string, candidates []string) error {
	return &AmbiguousError{Root: root, What: what, Candidates: candidates}
}

// addDir adds a folder: itself when it is a kustomization; else its top-level kustomizations
// (those no other kustomization in it uses), or its plain YAML files. Several top-level
// kustomizations (e.g. overlays) are ambiguous.
func (s *Source) addDir(dir string) error {
	if isKustomization(dir) {
		s.Kustomizations = append(s.Kustomizations, dir)
		return nil
	}
	var kdirs []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p != dir && isKustomization(p) {
			kdirs = append(kdirs, p)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if len(kdirs) > 0 {
		tops := topKustomizations(kdirs)
		if len(tops) > 1 {
			var rel []string
			for _, t := range tops {
				r, _ := filepath.Rel(s.Root, t)
				rel = append(rel, r)
			}
			return ambiguous(s.Root, "several kustomizations", rel)
		}
		s.Kustomizations = append(s.Kustomizations, tops...)
		return nil
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.IsDir() && isYAML(e.Name()) {
			s.Files = append(s.Files, filepath.Join(dir, e.Name()))
		}
	}
	if len(s.Files) == 0 {
		return hint.With(fmt.Errorf("%s: %w", dir, ErrNothingFound), "the folder holds no .yaml, .yml or .json file")
	}
	return nil
}

// topKustomizations drops every kustomization another one in the list builds on (its bases are
// never applied a second time on their own).
func topKustomizations(dirs []string) []string {
	used := map[string]bool{}
	for _, d := range dirs {
		for _, ref := range kustomizationRefs(d) {
			used[filepath.Clean(filepath.Join(d, ref))] = true
		}
	}
	var tops []string
	for _, d := range dirs {
		if !used[filepath.Clean(d)] && !underAny(d, dirs) {
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
		if o != d && strings.HasPrefix(d, o+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

// kustomizationRefs lists the local directories a kustomization refers to.
func kustomizationRefs(dir string) []string {
	for _, n := range kustomizationNames {
		raw, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			continue
		}
		var k struct {
			Resources  []string `json:"resources"`
			Bases      []string `json:"bases"`
			Components []string `json:"components"`
		}
		_ = yaml.Unmarshal(raw, &k)
		return append(append(k.Resources, k.Bases...), k.Components...)
	}
	return nil
}

var skipDirs = map[string]bool{".git": true, "vendor": true, "node_modules": true, ".github": true, ".gitlab": true,
	".circleci": true, ".buildkite": true, "testdata": true, ".idea": true, ".vscode": true, "dist": true, "target": true}

var k8sObject = regexp.MustCompile(`(?m)^\s*"?apiVersion"?\s*:\s*\S+`)
var k8sKind = regexp.MustCompile(`(?m)^\s*"?kind"?\s*:\s*\S+`)

// hasManifests reports whether a folder holds a kustomization or YAML with Kubernetes objects.
func hasManifests(dir string) bool {
	if isKustomization(dir) {
		return true
	}
	files, _ := scan(dir, 4)
	if len(files) > 0 {
		return true
	}
	found := false
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() && isKustomization(p) {
			found = true
			return fs.SkipAll
		}
		return nil
	})
	return found
}

// scan walks root to depth, skipping VCS, dependency and CI folders and Helm chart templates,
// and returns the YAML files that hold Kubernetes objects (apiVersion and kind).
func scan(root string, depth int) ([]string, error) {
	var files []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			if p == root {
				return nil
			}
			if skipDirs[d.Name()] || strings.Count(rel, string(filepath.Separator)) >= depth {
				return filepath.SkipDir
			}
			if d.Name() == "templates" && fileExistsAt(filepath.Join(filepath.Dir(p), "Chart.yaml")) {
				return filepath.SkipDir // Helm templates are not plain manifests
			}
			return nil
		}
		if !isYAML(d.Name()) || d.Name() == ProjectFile || strings.HasPrefix(strings.ToLower(d.Name()), "kustomization") {
			return nil
		}
		b, err := os.ReadFile(p)
		if err == nil && len(b) < 4<<20 && k8sObject.Match(b) && k8sKind.Match(b) {
			files = append(files, p)
		}
		return nil
	})
	return files, err
}

func fileExistsAt(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
