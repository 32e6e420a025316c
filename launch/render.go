package launch

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// ErrBadManifest marks a document that cannot be read; nothing is applied.
var ErrBadManifest = errors.New("bad manifest")

// Object is one rendered object and where it came from.
type Object struct {
	*unstructured.Unstructured
	// Origin is "file:line" or the kustomization directory.
	Origin string
}

// Render reads every object of src: kustomizations are built with kustomize (krusty), files are
// read as multi-document YAML or JSON, List kinds are expanded. Any unreadable document stops
// everything, naming file, line and reason.
func Render(src *Source) ([]Object, error) {
	var objs []Object
	for _, dir := range src.Kustomizations {
		k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
		rm, err := k.Run(filesys.MakeFsOnDisk(), dir)
		if err != nil {
			return nil, fmt.Errorf("kustomize build %s: %v: %w", rel(src.Root, dir), err, ErrBadManifest)
		}
		for _, r := range rm.Resources() {
			m, err := r.Map()
			if err != nil {
				return nil, fmt.Errorf("kustomize build %s: %v: %w", rel(src.Root, dir), err, ErrBadManifest)
			}
			o := Object{Unstructured: &unstructured.Unstructured{Object: m}, Origin: rel(src.Root, dir) + " (kustomize)"}
			if err := check(o); err != nil {
				return nil, err
			}
			objs = append(objs, o)
		}
	}
	for _, f := range src.Files {
		raw, err := os.ReadFile(f)
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
func splitDocuments(raw []byte) []document {
	var docs []document
	cur := document{line: 1}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if strings.HasPrefix(line, "---") && strings.TrimSpace(strings.TrimLeft(line, "-")) == "" {
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
	if o.GetGenerateName() != "" && o.GetName() == "" {
		return fmt.Errorf("%s: %s uses generateName, which cannot be applied repeatably: give it a name: %w", o.Origin, o.GetKind(), ErrBadManifest)
	}
	return nil
}
