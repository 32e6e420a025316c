package launch

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/resmap"
	"sigs.k8s.io/yaml"

	"github.com/NationTech/harmony-agent/internal/hint"
)

// ErrKustomizeHelm means a kustomization inflates a Helm chart (helmCharts:), which harmony
// does not do: it launches the chart itself instead.
var ErrKustomizeHelm = errors.New("harmony does not inflate Helm charts in kustomizations")

// ErrBadManifest marks a document that cannot be read; nothing is applied.
var ErrBadManifest = errors.New("bad manifest")

// Object is one rendered object and where it came from.
type Object struct {
	*unstructured.Unstructured
	// Origin is "file:line" or the kustomization directory.
	Origin string
}

// RenderOptions bound what rendering reads and say whether it may fetch remote resources.
type RenderOptions struct {
	// MaxFileSize caps each file read (default DefaultMaxFileSize).
	MaxFileSize int64
	// MaxTotalSize caps everything read (default DefaultMaxTotalSize).
	MaxTotalSize int64
	// AllowRemote lets kustomizations use URL and git resources, bases and components:
	// harmony fetches them (see fetchRemotes) within RemoteTimeout and MaxRemoteSize.
	AllowRemote bool
	// RemoteTimeout bounds fetching them all (default DefaultRemoteTimeout).
	RemoteTimeout time.Duration
	// MaxRemoteSize caps each one (default DefaultMaxRemoteSize).
	MaxRemoteSize int64
	// Warn receives kustomize's warnings (deprecated fields, its log lines), each once.
	Warn func(warning string) `json:"-"`
}

// Render reads every object of src: kustomizations are built with kustomize (krusty), Jsonnet
// programs are evaluated with go-jsonnet (their imports read inside the root only), files are
// read as multi-document YAML or JSON, List kinds are expanded. Any unreadable document stops
// everything, naming file, line and reason. Every read stays inside the project root, reads
// only regular files and is capped (see RenderOptions); kustomize reads through the same
// confined view. Before kustomize runs, its Helm chart inflation (ErrKustomizeHelm) and paths
// leading outside the project (ErrOutside) are refused, naming the kustomization, and remote
// references are refused, all named, unless AllowRemote. kustomize's warnings go to o.Warn.
func Render(ctx context.Context, src *Source, o RenderOptions) ([]Object, error) {
	maxTotal := o.MaxTotalSize
	if maxTotal <= 0 {
		maxTotal = DefaultMaxTotalSize
	}
	t, err := openTree(src.Root, o.MaxFileSize, maxTotal)
	if err != nil {
		return nil, err
	}
	defer t.Close()
	warn := newWarnings(o.Warn)
	var remote []remoteRef
	var kdirs []string
	for _, dir := range src.Kustomizations {
		name, err := t.rel(dir)
		if err != nil {
			return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
		}
		s, err := t.survey(name)
		if err != nil {
			return nil, fmt.Errorf("kustomize build %s: %w", rel(src.Root, dir), err)
		}
		if len(s.helm) > 0 {
			return nil, src.helmChartsError(s.helm)
		}
		if len(s.outside) > 0 {
			return nil, outsideError(src.Root, dir, s.outside[0])
		}
		for _, w := range s.warnings {
			warn.add(w)
		}
		remote = append(remote, s.remote...)
		kdirs = append(kdirs, name)
	}
	if len(remote) > 0 {
		if !o.AllowRemote {
			return nil, remoteError(remote, src.launchCommand("--allow-remote"))
		}
		if err := t.fetchRemotes(ctx, kdirs, o); err != nil {
			return nil, err
		}
	}
	var objs []Object
	for _, dir := range src.Kustomizations {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		what := rel(src.Root, dir)
		k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
		var rm resmap.ResMap
		var err error
		if cerr := captureKustomize(ctx, func(l string) { warn.add("kustomize build " + what + ": " + l) }, func() {
			rm, err = k.Run(kfs{t}, dir)
		}); cerr != nil {
			return nil, cerr
		}
		var esc *escapeError
		switch {
		case errors.As(err, &esc):
			target, ref := "", fmt.Sprintf("%q", esc.Path)
			if filepath.IsAbs(esc.Path) && esc.Link == "" {
				target = esc.Path
			}
			if esc.Link != "" {
				ref = fmt.Sprintf("what %q links to", esc.Path)
			}
			return nil, hint.With(fmt.Errorf("kustomize build %s: %w", what, esc), outsideHint(src.Root, dir, target, ref))
		case err != nil:
			return nil, fmt.Errorf("kustomize build %s: %v: %w", what, err, ErrBadManifest)
		}
		for _, r := range rm.Resources() {
			m, err := r.Map()
			if err != nil {
				return nil, fmt.Errorf("kustomize build %s: %v: %w", what, err, ErrBadManifest)
			}
			o := Object{Unstructured: &unstructured.Unstructured{Object: m}, Origin: what + " (kustomize)"}
			if err := check(o); err != nil {
				return nil, err
			}
			objs = append(objs, o)
		}
	}
	if len(src.Jsonnet) > 0 {
		got, err := renderJsonnet(t, src)
		if err != nil {
			return nil, err
		}
		objs = append(objs, got...)
	}
	for _, f := range src.Files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		name, err := t.rel(f)
		if err != nil {
			return nil, err
		}
		raw, err := t.readFile(name)
		if err != nil {
			return nil, err
		}
		got, err := decode(rel(src.Root, f), raw)
		if err != nil {
			return nil, err
		}
		objs = append(objs, got...)
	}
	return objs, nil
}

// warnings passes each distinct warning on once.
type warnings struct {
	mu   sync.Mutex
	seen map[string]bool
	warn func(string)
}

func newWarnings(warn func(string)) *warnings {
	return &warnings{seen: map[string]bool{}, warn: warn}
}

func (w *warnings) add(s string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.warn == nil || w.seen[s] {
		return
	}
	w.seen[s] = true
	w.warn(s)
}

func rel(root, p string) string {
	if r, err := filepath.Rel(root, p); err == nil {
		return r
	}
	return p
}

// document is one YAML document of a file and the line it starts on.
type document struct {
	line int
	body []byte
}

// splitDocuments splits multi-document YAML on "---" lines, keeping each document's first line.
// Lines have no length limit: nothing is ever dropped.
func splitDocuments(raw []byte) []document {
	var docs []document
	cur := document{line: 1}
	for n := 1; len(raw) > 0; n++ {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line, raw = raw[:i], raw[i+1:]
		} else {
			raw = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if bytes.HasPrefix(line, []byte("---")) && len(bytes.TrimSpace(bytes.TrimLeft(line, "-"))) == 0 {
			docs = append(docs, cur)
			cur = document{line: n + 1}
			continue
		}
		cur.body = append(cur.body, line...)
		cur.body = append(cur.body, '\n')
	}
	return append(docs, cur)
}

func decode(name string, raw []byte) ([]Object, error) {
	var out []Object
	for _, doc := range splitDocuments(raw) {
		if len(bytes.TrimSpace(stripComments(doc.body))) == 0 {
			continue
		}
		var m map[string]any
		if err := yaml.Unmarshal(doc.body, &m); err != nil {
			return nil, fmt.Errorf("%s:%d: %s: %w", name, doc.line+lineIn(err)-1, cleanYAMLError(err), ErrBadManifest)
		}
		if m == nil {
			continue
		}
		u := &unstructured.Unstructured{Object: m}
		origin := fmt.Sprintf("%s:%d", name, doc.line)
		if u.IsList() {
			list, err := u.ToList()
			if err != nil {
				return nil, fmt.Errorf("%s: %v: %w", origin, err, ErrBadManifest)
			}
			for i := range list.Items {
				o := Object{Unstructured: &list.Items[i], Origin: origin}
				if err := check(o); err != nil {
					return nil, err
				}
				out = append(out, o)
			}
			continue
		}
		o := Object{Unstructured: u, Origin: origin}
		if err := check(o); err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

func stripComments(b []byte) []byte {
	var out []byte
	for _, l := range bytes.Split(b, []byte("\n")) {
		if t := bytes.TrimSpace(l); len(t) > 0 && t[0] != '#' {
			out = append(out, l...)
		}
	}
	return out
}

// lineIn extracts "line N" from a YAML error (1 when absent).
func lineIn(err error) int {
	var n int
	if i := strings.Index(err.Error(), "line "); i >= 0 {
		fmt.Sscanf(err.Error()[i+5:], "%d", &n)
	}
	if n < 1 {
		return 1
	}
	return n
}

func cleanYAMLError(err error) string {
	s := err.Error()
	s = strings.TrimPrefix(s, "error converting YAML to JSON: ")
	s = strings.TrimPrefix(s, "yaml: ")
	if i := strings.Index(s, "line "); i == 0 {
		if j := strings.Index(s, ": "); j > 0 {
			s = s[j+2:]
		}
	}
	return s
}

// check requires what every object needs before it can be sent anywhere.
func check(o Object) error {
	var missing []string
	if o.GetAPIVersion() == "" {
		missing = append(missing, "apiVersion")
	}
	if o.GetKind() == "" {
		missing = append(missing, "kind")
	}
	if o.GetName() == "" && o.GetGenerateName() == "" {
		missing = append(missing, "metadata.name")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%s: missing %s: %w", o.Origin, strings.Join(missing, ", "), ErrBadManifest)
	}
	if o.GetGenerateName() != "" && o.GetName() == "" && !isHookObject(o) {
		return fmt.Errorf("%s: %s uses generateName, which cannot be applied repeatably: give it a name (only a hook, %s or %s, may have a generateName: each run creates a new one): %w",
			o.Origin, o.GetKind(), argoHookAnnotation, helmHookAnnotation, ErrBadManifest)
	}
	return nil
}
