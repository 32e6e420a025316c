package launch

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"sigs.k8s.io/kustomize/api/resource"
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

// remoteRefs lists each reference kustomize would fetch over the network from the
// kustomization in dir and every local kustomization it builds on (see survey).
func (t *tree) remoteRefs(dir string) ([]remoteRef, error) {
	s, err := t.survey(dir)
	return s.remote, err
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
