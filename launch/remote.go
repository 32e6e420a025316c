package launch

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"

	"sigs.k8s.io/kustomize/api/resource"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/yaml"

	"github.com/NationTech/harmony-agent/internal/hint"
)

// ErrRemote means a kustomization refers to something kustomize would fetch over the network
// (a URL, or a git repository it would clone); launch refuses unless told --allow-remote.
var ErrRemote = errors.New("kustomization refers to remote resources")

// remoteRef is one reference to something remote, and the kustomization file that makes it.
type remoteRef struct {
	file  string // root-relative path of the kustomization file
	field string // the kustomization field naming it
	ref   string
	git   bool // a repository kustomize would clone (else only an HTTP GET)
}

func (r remoteRef) String() string { return r.file + ": " + r.ref }

// isRemote reports whether kustomize would reach the network for ref, with kustomize's own
// rules: a git repository spec (its own parser, through resource.Origin), or any URL with a
// scheme (kustomize GETs http and https ones; no other scheme names a local file).
func isRemote(ref string) (remote, git bool) {
	if strings.TrimSpace(ref) == "" || strings.Contains(ref, "\n") {
		return false, false // empty, or inline content
	}
	if isGitSpec(ref) {
		return true, true
	}
	if u, err := url.Parse(ref); err == nil && len(u.Scheme) > 1 {
		return true, false
	}
	return false, false
}

// isGitSpec reports whether kustomize parses ref as a git repository to clone.
func isGitSpec(ref string) (git bool) {
	defer func() {
		if recover() != nil {
			git = true // kustomize's parser failed on it: treat it as remote, never as local
		}
	}()
	return (&resource.Origin{}).Append(ref).Repo != ""
}

// remoteRefs walks a kustomization and every local kustomization it builds on (bases,
// components, generator and transformer folders), and lists each reference kustomize would
// fetch over the network: resources, bases, components, generators, transformers, validators,
// patches, replacements, CRD and configuration files, generator files and the OpenAPI schema.
// Only the project's own files are read.
func (t *tree) remoteRefs(dir string) ([]remoteRef, error) {
	var out []remoteRef
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
		k.FixKustomization()
		var local []string
		check := func(field string, refs ...string) {
			for _, r := range refs {
				if remote, git := isRemote(r); remote {
					out = append(out, remoteRef{file: file, field: field, ref: r, git: git})
				} else if r != "" && !strings.Contains(r, "\n") {
					local = append(local, r)
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
					out = append(out, inlineRemoteRefs(file, field, g)...)
				} else {
					check(field, g)
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
			sub := path.Clean(path.Join(dir, l))
			if sub == ".." || strings.HasPrefix(sub, "../") || !t.isDir(sub) {
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

// fileSources returns the paths of generator file sources ([key=]path).
func fileSources(srcs []string) []string {
	var out []string
	for _, s := range srcs {
		if _, p, ok := strings.Cut(s, "="); ok {
			out = append(out, p)
		} else {
			out = append(out, s)
		}
	}
	return out
}

// inlineRemoteRefs lists the remote references in an inline generator or transformer
// configuration: any string in it kustomize could fetch.
func inlineRemoteRefs(file, field, config string) []remoteRef {
	var v any
	if err := yaml.Unmarshal([]byte(config), &v); err != nil {
		return nil
	}
	var out []remoteRef
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		case string:
			if remote, git := isRemote(v); remote {
				out = append(out, remoteRef{file: file, field: field, ref: v, git: git})
			}
		}
	}
	walk(v)
	return out
}

func remoteError(refs []remoteRef, allowCommand string) error {
	lines := make([]string, len(refs))
	for i, r := range refs {
		lines[i] = r.String()
	}
	return hint.With(fmt.Errorf("%w (launch does not fetch them unless told to):\n  %s", ErrRemote, strings.Join(lines, "\n  ")),
		"copy them into the repository, or let harmony fetch them (with a time and size limit): "+allowCommand)
}
