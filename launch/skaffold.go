package launch

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/distribution/reference"
	jsonpatch "github.com/evanphx/json-patch/v5"
	yaml3 "go.yaml.in/yaml/v3"
	"sigs.k8s.io/yaml"

	"github.com/NationTech/harmony-agent/internal/hint"
)

// SkaffoldFile is the Skaffold configuration harmony reads at a project's root: the manifests
// it names and the images it builds.
const SkaffoldFile = "skaffold.yaml"

// ErrUnsupported marks what harmony cannot do for a project (a Skaffold builder other than
// Docker, a remote config): it is named, and nothing is applied.
var ErrUnsupported = errors.New("not supported by harmony")

// ErrUnknownProfile means --profile names a profile no config defines.
var ErrUnknownProfile = errors.New("unknown profile")

// Bounds on what one skaffold.yaml may pull in through requires.
const (
	maxSkaffoldConfigs = 256
	maxSkaffoldDepth   = 16
	// maxSkaffoldRequires caps the requires entries of all configs together: each names a file
	// to read, and one file may be named again and again.
	maxSkaffoldRequires = 1024
	// maxSkaffoldPatchCopy caps what a profile's "copy" patches may add to a config: each copy
	// can double it, so a few dozen would fill memory.
	maxSkaffoldPatchCopy = DefaultMaxFileSize
)

// skaffold is what harmony takes from a project's skaffold.yaml (and the configs it requires).
type skaffold struct {
	Files          []string // root-relative manifest files (rawYaml, kubectl manifests)
	Kustomizations []string // root-relative kustomization folders
	Chart          *Chart
	Artifacts      []ImageArtifact
	Profile        string

	profileSeen bool
	configs     int
	requires    int
	state       map[string]int     // each config (file#index): skReading, then skRead
	reading     []skFrame          // the configs being read, the outermost first
	docs        map[string][]skDoc // each file read and parsed once
	chartFrom   string
	templates   map[string]any // the chart's setValueTemplates
	skipped     []skSkipped    // what harmony does not run: hooks, tests
}

// skSkipped is a part of a config harmony does not run: a lifecycle hook or a test phase.
type skSkipped struct {
	config string // which config: "config app", "sub/skaffold.yaml:3"
	field  string // build.artifacts[0].hooks, test
	phase  bool   // a test: or verify: phase, else a hook
	build  bool   // it goes with the images (build hooks, test:), else with the manifests
}

// The states of a config while the configs are read.
const (
	skReading = 1 + iota // its requires are being read: meeting it again is a cycle
	skRead               // taken: meeting it again (required twice) takes nothing
)

// skFrame is a config being read, for the message that names a cycle.
type skFrame struct{ key, file, label string }

type skConfig struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Requires  []skRequire `json:"requires"`
	Build     skBuild     `json:"build"`
	Manifests skManifests `json:"manifests"`
	Deploy    skDeploy    `json:"deploy"`
	// Phases harmony does not run: named, and skipped.
	Test   any `json:"test"`
	Verify any `json:"verify"`
}

type skRequire struct {
	Path           string   `json:"path"`
	Configs        []string `json:"configs"`
	Git            any      `json:"git"`
	GCS            any      `json:"googleCloudStorage"`
	ActiveProfiles []struct {
		Name        string   `json:"name"`
		ActivatedBy []string `json:"activatedBy"`
	} `json:"activeProfiles"`
}

type skBuild struct {
	Artifacts        []skArtifact `json:"artifacts"`
	Cluster          any          `json:"cluster"`
	GoogleCloudBuild any          `json:"googleCloudBuild"`
}

type skArtifact struct {
	Image   string `json:"image"`
	Context string `json:"context"`
	Docker  *struct {
		Dockerfile string         `json:"dockerfile"`
		Target     string         `json:"target"`
		BuildArgs  map[string]any `json:"buildArgs"`
	} `json:"docker"`
	Requires []any `json:"requires"`
	// Lifecycle hooks harmony does not run: named, and skipped.
	Hooks any `json:"hooks"`
	Sync  *struct {
		Hooks any `json:"hooks"`
	} `json:"sync"`
	// Builders harmony does not run.
	Jib        any `json:"jib"`
	Kaniko     any `json:"kaniko"`
	Bazel      any `json:"bazel"`
	Ko         any `json:"ko"`
	Buildpacks any `json:"buildpacks"`
	Custom     any `json:"custom"`
}

type skKustomize struct {
	Paths []string `json:"paths"`
	Hooks any      `json:"hooks"`
}

type skHelm struct {
	Releases []skRelease `json:"releases"`
	Hooks    any         `json:"hooks"`
}

type skRelease struct {
	Name              string            `json:"name"`
	ChartPath         string            `json:"chartPath"`
	RemoteChart       string            `json:"remoteChart"`
	ValuesFiles       []string          `json:"valuesFiles"`
	SetValues         map[string]any    `json:"setValues"`
	SetValueTemplates map[string]any    `json:"setValueTemplates"`
	ArtifactOverrides map[string]string `json:"artifactOverrides"`
}

type skManifests struct {
	RawYaml   []string     `json:"rawYaml"`
	Kustomize *skKustomize `json:"kustomize"`
	Helm      *skHelm      `json:"helm"`
	Kpt       any          `json:"kpt"`
	Hooks     any          `json:"hooks"`
}

type skDeploy struct {
	Kubectl *struct {
		Manifests []string `json:"manifests"`
		Hooks     any      `json:"hooks"`
	} `json:"kubectl"`
	Kustomize *skKustomize `json:"kustomize"`
	Helm      *skHelm      `json:"helm"`
	Kpt       any          `json:"kpt"`
	Docker    any          `json:"docker"`
	CloudRun  any          `json:"cloudrun"`
	Hooks     any          `json:"hooks"`
}

// variantsError says a folder holds Skaffold configs under other names (skaffold-gradle.yaml)
// and no skaffold.yaml, the one harmony reads: launching the folder's manifests without the
// images those configs build would start images nothing built, so nothing is launched.
type variantsError struct {
	Dir   string   // the folder
	Files []string // the configs' names, in it
}

func (e *variantsError) Error() string {
	names := make([]string, len(e.Files))
	for i, f := range e.Files {
		names[i] = shown(f)
	}
	return fmt.Sprintf("%s: %s but no %s, the only Skaffold config harmony reads: %v", e.Dir, strings.Join(names, ", "), SkaffoldFile, ErrUnsupported)
}

// Is makes errors.Is(err, ErrUnsupported) hold.
func (e *variantsError) Is(target error) bool { return target == ErrUnsupported }

// skaffoldConfig matches a Skaffold config's apiVersion line.
var skaffoldConfig = regexp.MustCompile(`(?m)^\s*"?apiVersion"?\s*:\s*["']?skaffold/`)

// checkSkaffoldVariants refuses a folder without skaffold.yaml holding Skaffold configs under
// other names (skaffold-gradle.yaml, skaffold.yml: YAML files named skaffold… whose apiVersion
// is skaffold/…).
func (t *tree) checkSkaffoldVariants() error {
	if _, err := t.root.Lstat(SkaffoldFile); !errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	entries, err := t.readDir(".")
	if err != nil {
		return nil
	}
	var found []string
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasPrefix(name, "skaffold") || (path.Ext(name) != ".yaml" && path.Ext(name) != ".yml") {
			continue
		}
		if b, err := t.readFileMax(name, scanMax); err == nil && skaffoldConfig.Match(b) {
			found = append(found, name)
		}
	}
	if len(found) == 0 {
		return nil
	}
	sort.Strings(found)
	return &variantsError{Dir: t.dir, Files: found}
}

// readSkaffold reads the project's skaffold.yaml (nil when there is none) with profile active
// (""; none). Every file it names — required configs, manifests, charts, build contexts and
// Dockerfiles — is inside the project: a path or a link leading out is refused, naming it.
func (t *tree) readSkaffold(profile string) (*skaffold, error) {
	if _, err := t.root.Lstat(SkaffoldFile); errors.Is(err, fs.ErrNotExist) {
		if profile != "" {
			return nil, hint.With(fmt.Errorf("--profile %q: the project has no %s: %w", profile, SkaffoldFile, ErrUnknownProfile),
				"--profile names a Skaffold profile; drop it")
		}
		return nil, nil
	}
	sk := &skaffold{Profile: profile, state: map[string]int{}, docs: map[string][]skDoc{}}
	var active []string
	if profile != "" {
		active = []string{profile}
	}
	if err := sk.read(t, SkaffoldFile, "", nil, active, 0); err != nil {
		return nil, err
	}
	if profile != "" && !sk.profileSeen {
		names, _ := t.skaffoldProfiles(SkaffoldFile)
		h := "this project's profiles: " + strings.Join(names, ", ")
		if len(names) == 0 {
			h = SkaffoldFile + " defines no profiles; drop --profile"
		}
		return nil, hint.With(fmt.Errorf("--profile %q: no config in %s defines it: %w", profile, SkaffoldFile, ErrUnknownProfile), h)
	}
	if err := sk.checkImages(); err != nil {
		return nil, err
	}
	if err := sk.expandTemplates(); err != nil {
		return nil, err
	}
	return sk, nil
}

// read reads one skaffold file (root-relative): the configs named in only (all when empty),
// with the profiles in active applied; from is where the requires entry naming them is ("" for
// the root file). A config is read once however often it is required (its requires first, then
// itself, as Skaffold orders them); one that requires itself again, directly or through others,
// is a cycle and refused, naming them.
func (sk *skaffold) read(t *tree, file, from string, only, active []string, depth int) error {
	if depth > maxSkaffoldDepth {
		return fmt.Errorf("%s: requires nests deeper than %d files", file, maxSkaffoldDepth)
	}
	docs, ok := sk.docs[file]
	if !ok {
		raw, err := t.readFile(file)
		if err != nil {
			return fmt.Errorf("%s: %w", SkaffoldFile, err)
		}
		if docs, err = skaffoldDocs(file, raw); err != nil {
			return err
		}
		sk.docs[file] = docs
	}
	var names []string
	for _, doc := range docs {
		if name, _ := lookupString(doc.m, "metadata", "name"); name != "" {
			names = append(names, name)
		}
	}
	for _, n := range only {
		if !contains(names, n) {
			defined := "which names none of its configs (metadata.name)"
			if len(names) > 0 {
				defined = "which defines only: " + strings.Join(names, ", ")
			}
			return fmt.Errorf("%s: requires config %q of %s, %s", from, n, file, defined)
		}
	}
	dir := path.Dir(file)
	for i, doc := range docs {
		name, _ := lookupString(doc.m, "metadata", "name")
		if len(only) > 0 && !contains(only, name) {
			continue
		}
		where := fmt.Sprintf("%s:%d", file, doc.line)
		label := where
		if name != "" {
			where += " (config " + name + ")"
			label = name
		}
		key := fmt.Sprintf("%s#%d", file, i)
		switch sk.state[key] {
		case skRead:
			continue
		case skReading:
			what := fmt.Sprintf("config %q", name)
			if name == "" {
				what = "the config at " + label
			}
			return fmt.Errorf("%s: requires %s again: a cycle (%s)", from, what, sk.cycle(key, file, label))
		}
		sk.state[key] = skReading
		sk.reading = append(sk.reading, skFrame{key, file, label})
		if sk.configs++; sk.configs > maxSkaffoldConfigs {
			return fmt.Errorf("%s: more than %d Skaffold configs", file, maxSkaffoldConfigs)
		}
		cfg, profiles, err := applyProfiles(doc.m, active)
		if err != nil {
			return fmt.Errorf("%s: %w", where, err)
		}
		if profiles {
			sk.profileSeen = true
		}
		if err := checkSkaffoldVersion(where, cfg.APIVersion, cfg.Kind); err != nil {
			return err
		}
		for _, r := range cfg.Requires {
			if sk.requires++; sk.requires > maxSkaffoldRequires {
				return fmt.Errorf("%s: more than %d requires entries: %w", where, maxSkaffoldRequires, ErrTooLarge)
			}
			if r.Git != nil || r.GCS != nil {
				return hint.With(fmt.Errorf("%s: requires a remote config: %w", where, ErrUnsupported),
					"harmony reads only configs inside the project (requires: [{path: ...}]); nothing was applied")
			}
			next := file // no path: configs of this file, by name
			switch {
			case r.Path != "":
				if next, err = t.skaffoldPath(dir, r.Path, "requires "+r.Path, where); err != nil {
					return err
				}
				if t.isDir(next) {
					next = path.Join(next, SkaffoldFile)
				}
			case len(r.Configs) == 0:
				return fmt.Errorf("%s: requires: an entry with neither a path nor configs", where)
			}
			var sub []string
			for _, ap := range r.ActiveProfiles {
				if len(ap.ActivatedBy) == 0 || overlaps(ap.ActivatedBy, active) {
					sub = append(sub, ap.Name)
				}
			}
			if len(active) > 0 {
				sub = append(sub, active...)
			}
			if err := sk.read(t, next, where, r.Configs, sub, depth+1); err != nil {
				return err
			}
		}
		if err := sk.addConfig(t, dir, where, cfg); err != nil {
			return err
		}
		config := "config " + name
		if name == "" {
			config = label
		}
		sk.addSkipped(config, cfg)
		sk.state[key] = skRead
		sk.reading = sk.reading[:len(sk.reading)-1]
	}
	return nil
}

// cycle names the configs from the one met again (key) to itself: "app → loadgenerator →
// app", each with its file when they are not all in one.
func (sk *skaffold) cycle(key, file, label string) string {
	var chain []skFrame
	for i, f := range sk.reading {
		if f.key == key {
			chain = append(chain, sk.reading[i:]...)
			break
		}
	}
	chain = append(chain, skFrame{key, file, label})
	oneFile := true
	for _, f := range chain {
		oneFile = oneFile && f.file == file
	}
	out := make([]string, len(chain))
	for i, f := range chain {
		out[i] = f.label
		if !oneFile && !strings.HasPrefix(f.label, f.file+":") {
			out[i] += " (" + f.file + ")"
		}
	}
	return strings.Join(out, " → ")
}

type skDoc struct {
	line int
	m    map[string]any
}

func skaffoldDocs(file string, raw []byte) ([]skDoc, error) {
	var docs []skDoc
	for _, d := range splitDocuments(raw) {
		if len(stripComments(d.body)) == 0 {
			continue
		}
		body := d.body
		if bytes.Contains(body, []byte("buildArgs")) {
			body = buildArgStrings(body)
		}
		var m map[string]any
		if err := yaml.Unmarshal(body, &m); err != nil {
			return nil, fmt.Errorf("%s:%d: %s", file, d.line+lineIn(err)-1, cleanYAMLError(err))
		}
		if m != nil {
			docs = append(docs, skDoc{d.line, m})
		}
	}
	return docs, nil
}

// buildArgStrings marks the scalars of every docker.buildArgs mapping of a config document
// (and the values of profile patches under a docker/buildArgs path) as strings, so that
// DEBUG: 1 and NODE_VERSION: 18.10 are "1" and "18.10", spelt as written, as Skaffold reads
// them, and not numbers. A document that does not parse is returned as it is: decoding it
// says why.
func buildArgStrings(body []byte) []byte {
	var doc yaml3.Node
	if err := yaml3.Unmarshal(body, &doc); err != nil || len(doc.Content) == 0 {
		return body
	}
	markBuildArgs(&doc, "")
	out, err := yaml3.Marshal(doc.Content[0])
	if err != nil {
		return body
	}
	return out
}

// markBuildArgs marks the build arguments under n, the value of the mapping key parent.
func markBuildArgs(n *yaml3.Node, parent string) {
	if n.Kind != yaml3.MappingNode {
		for _, c := range n.Content {
			markBuildArgs(c, "")
		}
		return
	}
	var patchPath string
	var patchValue *yaml3.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch k.Value {
		case "buildArgs":
			if parent == "docker" && v.Kind == yaml3.MappingNode {
				for _, c := range v.Content { // the names and the values
					asString(c)
				}
			}
		case "path":
			patchPath = v.Value
		case "value":
			patchValue = v
		}
		markBuildArgs(v, k.Value)
	}
	switch {
	case patchValue == nil || !strings.Contains(patchPath, "/docker/buildArgs"):
	case strings.HasSuffix(strings.TrimSuffix(patchPath, "/"), "/docker/buildArgs") && patchValue.Kind == yaml3.MappingNode:
		for _, c := range patchValue.Content {
			asString(c)
		}
	default:
		asString(patchValue)
	}
}

// asString makes a YAML scalar other than null a string, as written, and quotes it: the
// decoder after it reads YAML 1.1, where a plain ON or yes is a boolean.
func asString(n *yaml3.Node) {
	if n.Kind == yaml3.ScalarNode && n.ShortTag() != "!!null" {
		n.Tag = "!!str"
		if n.Style&(yaml3.SingleQuotedStyle|yaml3.DoubleQuotedStyle|yaml3.LiteralStyle|yaml3.FoldedStyle) == 0 {
			n.Style = yaml3.DoubleQuotedStyle
		}
	}
}

// buildArg is a build argument's value as a string: "" for none, a string as it is, and a
// number or a boolean buildArgStrings did not mark (an alias to one) spelt as Go spells it.
func buildArg(v any) (string, bool) {
	switch v := v.(type) {
	case nil:
		return "", true
	case string:
		return v, true
	case bool:
		return strconv.FormatBool(v), true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	}
	return "", false
}

func kindOf(v any) string {
	switch v.(type) {
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	}
	return fmt.Sprintf("%T", v)
}

func checkSkaffoldVersion(where, apiVersion, kind string) error {
	v := strings.TrimPrefix(apiVersion, "skaffold/")
	ok := v != apiVersion && (strings.HasPrefix(v, "v2beta") || strings.HasPrefix(v, "v3") || strings.HasPrefix(v, "v4beta"))
	if !ok {
		return hint.With(fmt.Errorf("%s: apiVersion %q: %w", where, apiVersion, ErrUnsupported),
			"harmony reads skaffold/v2beta*, skaffold/v3* and skaffold/v4beta* configs; upgrade it with: skaffold fix")
	}
	if kind != "Config" {
		return fmt.Errorf("%s: kind %q: a Skaffold config is kind Config", where, kind)
	}
	return nil
}

// applyProfiles overlays the config's profiles named in active (Skaffold's rules: objects
// merge field by field, a non-empty list or a value replaces the config's), then applies their
// JSON patches. It says whether any of them was found.
func applyProfiles(m map[string]any, active []string) (*skConfig, bool, error) {
	found := false
	if len(active) > 0 {
		profiles, _ := m["profiles"].([]any)
		for _, want := range active {
			for _, p := range profiles {
				pm, _ := p.(map[string]any)
				if pm == nil || pm["name"] != want {
					continue
				}
				found = true
				for _, field := range []string{"build", "deploy", "manifests"} {
					if v, ok := pm[field]; ok {
						m[field] = overlay(m[field], v)
					}
				}
				if patches, ok := pm["patches"]; ok {
					patched, err := patch(m, patches)
					if err != nil {
						return nil, found, fmt.Errorf("profile %q: patches: %w", want, err)
					}
					m = patched
				}
			}
		}
	}
	delete(m, "profiles")
	b, err := json.Marshal(m)
	if err != nil {
		return nil, found, err
	}
	var cfg skConfig
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, found, fmt.Errorf("%v", err)
	}
	return &cfg, found, nil
}

func overlay(base, over any) any {
	bm, ok1 := base.(map[string]any)
	om, ok2 := over.(map[string]any)
	if !ok1 || !ok2 {
		if l, ok := over.([]any); ok && len(l) == 0 {
			return base
		}
		if over == nil {
			return base
		}
		return over
	}
	out := map[string]any{}
	for k, v := range bm {
		out[k] = v
	}
	for k, v := range om {
		out[k] = overlay(bm[k], v)
	}
	return out
}

func patch(m map[string]any, patches any) (map[string]any, error) {
	doc, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	pb, err := json.Marshal(patches)
	if err != nil {
		return nil, err
	}
	p, err := jsonpatch.DecodePatch(pb)
	if err != nil {
		return nil, err
	}
	opts := jsonpatch.NewApplyOptions()
	opts.AccumulatedCopySizeLimit = maxSkaffoldPatchCopy
	out, err := p.ApplyWithOptions(doc, opts)
	var tooLarge *jsonpatch.AccumulatedCopySizeError
	if errors.As(err, &tooLarge) {
		return nil, fmt.Errorf("its copies add more than %s to the config: %w", size(maxSkaffoldPatchCopy), ErrTooLarge)
	}
	if err != nil {
		return nil, err
	}
	var res map[string]any
	return res, json.Unmarshal(out, &res)
}

// skaffoldProfiles lists the profiles defined in a skaffold file.
func (t *tree) skaffoldProfiles(file string) ([]string, error) {
	raw, err := t.readFile(file)
	if err != nil {
		return nil, err
	}
	docs, err := skaffoldDocs(file, raw)
	if err != nil {
		return nil, err
	}
	var names []string
	seen := map[string]bool{}
	for _, d := range docs {
		profiles, _ := d.m["profiles"].([]any)
		for _, p := range profiles {
			pm, _ := p.(map[string]any)
			if n, ok := pm["name"].(string); ok && !seen[n] {
				seen[n] = true
				names = append(names, n)
			}
		}
	}
	sort.Strings(names)
	return names, nil
}

// skaffoldPath turns a path of a config in folder dir into a root-relative one, refusing one
// that leaves the project, lexically or through a symbolic link.
func (t *tree) skaffoldPath(dir, p, what, where string) (string, error) {
	name := path.Clean(path.Join(dir, filepathToSlash(p)))
	if isAbsPath(p) || name == ".." || strings.HasPrefix(name, "../") {
		return "", hint.With(fmt.Errorf("%s: %s: %q is %w", where, what, p, ErrOutside),
			"a Skaffold config may name only paths inside the project; nothing was applied")
	}
	if _, err := t.resolve(name); errors.Is(err, ErrOutside) {
		return "", hint.With(fmt.Errorf("%s: %s: %w", where, what, err),
			"a Skaffold config may name only paths inside the project; nothing was applied")
	}
	return name, nil
}

// addConfig takes one config's manifests and artifacts.
func (sk *skaffold) addConfig(t *tree, dir, where string, cfg *skConfig) error {
	for _, a := range cfg.Build.Artifacts {
		art, err := sk.artifact(t, dir, where, a)
		if err != nil {
			return err
		}
		sk.Artifacts = append(sk.Artifacts, art)
	}
	if len(cfg.Build.Artifacts) > 0 {
		switch {
		case cfg.Build.Cluster != nil:
			return unsupported(where, "build.cluster (builds in a cluster)")
		case cfg.Build.GoogleCloudBuild != nil:
			return unsupported(where, "build.googleCloudBuild (remote builds)")
		}
	}
	m, d := cfg.Manifests, cfg.Deploy
	switch {
	case m.Kpt != nil || d.Kpt != nil:
		return unsupported(where, "kpt")
	case d.Docker != nil:
		return unsupported(where, "deploy.docker")
	case d.CloudRun != nil:
		return unsupported(where, "deploy.cloudrun")
	}
	raw := m.RawYaml
	if d.Kubectl != nil {
		raw = append(raw, d.Kubectl.Manifests...)
	}
	for _, g := range raw {
		if err := sk.addGlob(t, dir, where, g); err != nil {
			return err
		}
	}
	for _, k := range []*skKustomize{m.Kustomize, d.Kustomize} {
		if k == nil {
			continue
		}
		paths := k.Paths
		if len(paths) == 0 {
			paths = []string{"."}
		}
		for _, p := range paths {
			name, err := t.skaffoldPath(dir, p, "kustomize path "+p, where)
			if err != nil {
				return err
			}
			if !t.isKustomization(name) {
				return fmt.Errorf("%s: kustomize path %q has no kustomization.yaml", where, p)
			}
			sk.Kustomizations = append(sk.Kustomizations, name)
		}
	}
	for _, h := range []*skHelm{m.Helm, d.Helm} {
		if h == nil {
			continue
		}
		for _, r := range h.Releases {
			if err := sk.addRelease(t, dir, where, r); err != nil {
				return err
			}
		}
	}
	return nil
}

// addSkipped notes the lifecycle hooks and test phases of a config, which harmony does not run.
func (sk *skaffold) addSkipped(config string, cfg *skConfig) {
	add := func(v any, field string, phase, build bool) {
		if given(v) {
			sk.skipped = append(sk.skipped, skSkipped{config, field, phase, build})
		}
	}
	for i, a := range cfg.Build.Artifacts {
		add(a.Hooks, fmt.Sprintf("build.artifacts[%d].hooks", i), false, true)
		if a.Sync != nil {
			add(a.Sync.Hooks, fmt.Sprintf("build.artifacts[%d].sync.hooks", i), false, true)
		}
	}
	m, d := cfg.Manifests, cfg.Deploy
	add(m.Hooks, "manifests.hooks", false, false)
	if m.Kustomize != nil {
		add(m.Kustomize.Hooks, "manifests.kustomize.hooks", false, false)
	}
	if m.Helm != nil {
		add(m.Helm.Hooks, "manifests.helm.hooks", false, false)
	}
	add(d.Hooks, "deploy.hooks", false, false)
	if d.Kubectl != nil {
		add(d.Kubectl.Hooks, "deploy.kubectl.hooks", false, false)
	}
	if d.Kustomize != nil {
		add(d.Kustomize.Hooks, "deploy.kustomize.hooks", false, false)
	}
	if d.Helm != nil {
		add(d.Helm.Hooks, "deploy.helm.hooks", false, false)
	}
	add(cfg.Test, "test", true, true)
	add(cfg.Verify, "verify", true, false)
}

// given reports whether a config's value says anything: not null, an empty list or a mapping
// of those (hooks: {before: []}).
func given(v any) bool {
	switch v := v.(type) {
	case nil:
		return false
	case []any:
		return len(v) > 0
	case map[string]any:
		for _, e := range v {
			if given(e) {
				return true
			}
		}
		return false
	}
	return true
}

// maxSkippedNamed is how many hooks or tests one warning names.
const maxSkippedNamed = 8

// warnings are the lines saying what of the configs' hooks and test phases harmony does not
// run: those that go with the images when it builds them (build), with the manifests when it
// deploys them (manifests). Each config is named when several were read.
func (sk *skaffold) warnings(build, manifests bool) []string {
	var hooks, phases []string
	var phaseNames []string
	for _, s := range sk.skipped {
		if (s.build && !build) || (!s.build && !manifests) {
			continue
		}
		item := s.field
		if sk.configs > 1 {
			item += " of " + s.config
		}
		if s.phase {
			phases = append(phases, item)
			if n := s.field + ":"; !contains(phaseNames, n) {
				phaseNames = append(phaseNames, n)
			}
		} else {
			hooks = append(hooks, item)
		}
	}
	var out []string
	if len(hooks) > 0 {
		out = append(out, fmt.Sprintf("%s: harmony does not run Skaffold's lifecycle hooks (%s); they were skipped", SkaffoldFile, listSome(hooks)))
	}
	if len(phases) > 0 {
		sort.Strings(phaseNames) // test: before verify:
		what, done := phaseNames[0]+" phase", "it was"
		if len(phaseNames) > 1 {
			what, done = strings.Join(phaseNames, " and ")+" phases", "they were"
		}
		if sk.configs > 1 {
			what += " (" + listSome(phases) + ")"
		}
		out = append(out, fmt.Sprintf("%s: harmony does not run Skaffold's %s; %s skipped", SkaffoldFile, what, done))
	}
	return out
}

// listSome joins the first maxSkippedNamed items, saying how many more there are.
func listSome(items []string) string {
	if len(items) > maxSkippedNamed {
		return strings.Join(items[:maxSkippedNamed], ", ") + fmt.Sprintf(" and %d more", len(items)-maxSkippedNamed)
	}
	return strings.Join(items, ", ")
}

func unsupported(where, what string) error {
	return hint.With(fmt.Errorf("%s: %s: %w", where, what, ErrUnsupported),
		"harmony builds images with Docker and applies manifests, kustomizations and local Helm charts; nothing was applied")
}

func (sk *skaffold) artifact(t *tree, dir, where string, a skArtifact) (ImageArtifact, error) {
	what := fmt.Sprintf("%s: artifact %q", where, a.Image)
	for _, b := range []struct {
		name string
		v    any
	}{{"jib", a.Jib}, {"kaniko", a.Kaniko}, {"bazel", a.Bazel}, {"ko", a.Ko}, {"buildpacks", a.Buildpacks}, {"custom", a.Custom}} {
		if b.v != nil {
			return ImageArtifact{}, hint.With(fmt.Errorf("%s: builder %s: %w", what, b.name, ErrUnsupported),
				"harmony builds images with Docker (a Dockerfile) only; nothing was applied",
				"build it yourself and use a published image, or add a Dockerfile and list it in "+ProjectFile+" (images: [{image: "+a.Image+", context: DIR}])")
		}
	}
	if len(a.Requires) > 0 {
		return ImageArtifact{}, unsupported(what, "requires (images built on other artifacts)")
	}
	ctx := a.Context
	if ctx == "" {
		ctx = "."
	}
	name, err := t.skaffoldPath(dir, ctx, "context "+ctx, what)
	if err != nil {
		return ImageArtifact{}, err
	}
	art := ImageArtifact{Image: a.Image, Context: name}
	if a.Docker != nil {
		art.Dockerfile, art.Target = a.Docker.Dockerfile, a.Docker.Target
		for k, v := range a.Docker.BuildArgs {
			val, ok := buildArg(v)
			if !ok {
				return ImageArtifact{}, fmt.Errorf("%s: docker.buildArgs %s: a build argument's value is a string (or a number or true/false), not %s", what, k, kindOf(v))
			}
			if strings.Contains(val, "{{") {
				return ImageArtifact{}, unsupported(what, "buildArgs "+k+" is a template")
			}
			if art.BuildArgs == nil {
				art.BuildArgs = map[string]string{}
			}
			art.BuildArgs[k] = val
		}
	}
	return art, checkArtifact(t, what, art)
}

// checkArtifact checks one image: a valid name, a context and a Dockerfile inside the project
// (a missing Dockerfile is left to the build, which says so).
func checkArtifact(t *tree, what string, a ImageArtifact) error {
	if a.Image == "" {
		return fmt.Errorf("%s: image: give the name the manifests use", what)
	}
	if n, err := reference.ParseNormalizedNamed(a.Image); err != nil || !reference.IsNameOnly(n) {
		return fmt.Errorf("%s: image %q: a repository name without tag or digest (e.g. frontend)", what, a.Image)
	}
	if _, err := t.skaffoldPath(".", a.Context, "context "+a.Context, what); err != nil {
		return err
	}
	if !t.isDir(a.Context) {
		return hint.With(fmt.Errorf("%s: context %q is not a folder of the project", what, a.Context), "name the folder the image is built from")
	}
	if _, err := t.skaffoldPath(a.Context, a.DockerfilePath(), "dockerfile "+a.DockerfilePath(), what); err != nil {
		return err
	}
	return nil
}

func (sk *skaffold) checkImages() error {
	if err := distinctImages(sk.Artifacts); err != nil {
		return fmt.Errorf("%s: %w", SkaffoldFile, err)
	}
	return nil
}

func (sk *skaffold) addGlob(t *tree, dir, where, g string) error {
	if strings.Contains(g, "://") {
		return hint.With(fmt.Errorf("%s: manifests %q: remote manifests: %w", where, g, ErrUnsupported),
			"keep the manifests in the project; nothing was applied")
	}
	pattern, err := t.skaffoldPath(dir, g, "manifests "+g, where)
	if err != nil {
		return err
	}
	matches, err := fs.Glob(t.root.FS(), pattern)
	if err != nil {
		return fmt.Errorf("%s: manifests %q: %w", where, g, err)
	}
	n := 0
	for _, f := range matches {
		_, st, err := t.stat(f)
		if err != nil {
			return fmt.Errorf("%s: manifests %q: %w", where, g, err)
		}
		if st.IsDir() {
			continue
		}
		sk.Files = append(sk.Files, f)
		n++
	}
	if n == 0 {
		if _, err := t.resolve(path.Dir(pattern)); errors.Is(err, ErrOutside) {
			return fmt.Errorf("%s: manifests %q: %w", where, g, err)
		}
		return fmt.Errorf("%s: manifests %q: no file matches: %w", where, g, ErrNothingFound)
	}
	return nil
}

func (sk *skaffold) addRelease(t *tree, dir, where string, r skRelease) error {
	what := fmt.Sprintf("%s: helm release %q", where, r.Name)
	switch {
	case r.RemoteChart != "" || r.ChartPath == "":
		return hint.With(fmt.Errorf("%s: a remote chart: %w", what, ErrUnsupported),
			"harmony launches charts kept in the project (chartPath); nothing was applied")
	case sk.Chart != nil:
		return hint.With(fmt.Errorf("%s: a second chart (after %s): %w", what, sk.chartFrom, ErrUnsupported),
			"harmony launches one chart per project; pick one with a profile (--profile NAME); nothing was applied")
	}
	name, err := t.skaffoldPath(dir, r.ChartPath, "chartPath "+r.ChartPath, what)
	if err != nil {
		return err
	}
	if !t.isChart(name) {
		return fmt.Errorf("%s: chartPath %q has no %s", what, r.ChartPath, ChartFile)
	}
	c := &Chart{Dir: t.abs(name)}
	for _, v := range r.ValuesFiles {
		f, err := t.skaffoldPath(dir, v, "valuesFiles "+v, what)
		if err != nil {
			return err
		}
		c.Values = append(c.Values, t.abs(f))
	}
	set := map[string]any{}
	for k, v := range r.ArtifactOverrides {
		setDotted(set, k, v)
	}
	for k, v := range r.SetValues {
		setDotted(set, k, v)
	}
	if len(set) > 0 {
		c.Set = set
	}
	sk.Chart, sk.chartFrom, sk.templates = c, what, r.SetValueTemplates
	return nil
}

// imageTemplate is a Skaffold image template of setValueTemplates, e.g. {{.IMAGE_REPO_frontend}}.
var imageTemplate = regexp.MustCompile(`\{\{\s*\.IMAGE_(FULLY_QUALIFIED|REPO_NO_DOMAIN|REPO|TAG|DIGEST|DOMAIN)_([A-Za-z0-9_]+)\s*\}\}`)

var notAlnum = regexp.MustCompile(`[^A-Za-z0-9]`)

// expandTemplates sets the chart's setValueTemplates. The image templates of the project's
// artifacts become the bare image name (tag "latest", no digest), which launch then rewrites to
// the built image like any other reference; any other template is refused, naming it.
func (sk *skaffold) expandTemplates() error {
	if len(sk.templates) == 0 {
		return nil
	}
	byKey := map[string]ImageArtifact{}
	for _, a := range sk.Artifacts {
		byKey[notAlnum.ReplaceAllString(a.Image, "_")] = a
	}
	if sk.Chart.Set == nil {
		sk.Chart.Set = map[string]any{}
	}
	keys := make([]string, 0, len(sk.templates))
	for k := range sk.templates {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		tmpl, ok := sk.templates[k].(string)
		if !ok {
			setDotted(sk.Chart.Set, k, sk.templates[k])
			continue
		}
		var bad error
		v := imageTemplate.ReplaceAllStringFunc(tmpl, func(m string) string {
			sub := imageTemplate.FindStringSubmatch(m)
			a, ok := byKey[sub[2]]
			if !ok {
				bad = fmt.Errorf("%s: setValueTemplates %s: %q names no artifact of the project", sk.chartFrom, k, m)
				return m
			}
			n, err := reference.ParseNormalizedNamed(a.Image)
			if err != nil {
				bad = err
				return m
			}
			switch sub[1] {
			case "TAG":
				return "latest"
			case "DIGEST":
				return ""
			case "DOMAIN":
				return reference.Domain(n)
			case "REPO_NO_DOMAIN":
				return strings.TrimPrefix(reference.FamiliarName(n), reference.Domain(n)+"/")
			}
			return a.Image
		})
		if bad != nil {
			return bad
		}
		if strings.Contains(v, "{{") {
			return unsupported(sk.chartFrom, fmt.Sprintf("setValueTemplates %s: %q (harmony fills in only the image templates, IMAGE_REPO_<name> and the like)", k, tmpl))
		}
		setDotted(sk.Chart.Set, k, strings.TrimSuffix(v, "@"))
	}
	return nil
}

// setDotted sets a Helm --set style key ("image.tag") in nested maps.
func setDotted(m map[string]any, key string, v any) {
	parts := strings.Split(key, ".")
	for _, p := range parts[:len(parts)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	m[parts[len(parts)-1]] = v
}

func lookupString(m map[string]any, keys ...string) (string, bool) {
	for _, k := range keys[:len(keys)-1] {
		next, ok := m[k].(map[string]any)
		if !ok {
			return "", false
		}
		m = next
	}
	s, ok := m[keys[len(keys)-1]].(string)
	return s, ok
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}

func overlaps(a, b []string) bool {
	for _, x := range a {
		if contains(b, x) {
			return true
		}
	}
	return false
}

func filepathToSlash(p string) string { return strings.ReplaceAll(p, "\\", "/") }

func isAbsPath(p string) bool {
	return strings.HasPrefix(p, "/") || strings.HasPrefix(p, "\\") || (len(p) > 1 && p[1] == ':')
}

// SkaffoldProfiles lists the profiles the app's skaffold.yaml defines (none without one), for
// shell completion.
func (p *Project) SkaffoldProfiles() []string {
	t, err := openTree(p.App, DefaultMaxFileSize, 0)
	if err != nil {
		return nil
	}
	defer t.Close()
	names, _ := t.skaffoldProfiles(SkaffoldFile)
	return names
}
