package launch

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	yaml3 "go.yaml.in/yaml/v3"

	"github.com/NationTech/harmony-agent/internal/hint"
)

// ErrBadConfig marks a harmony.yaml that is not what harmony reads.
var ErrBadConfig = errors.New("invalid " + ProjectFile)

// ConfigError is a mistake in harmony.yaml at a line, e.g. `harmony.yaml:3: unknown field
// "manifest" (did you mean "manifests"?)`.
type ConfigError struct {
	Line int
	Msg  string
}

func (e *ConfigError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", ProjectFile, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", ProjectFile, e.Msg)
}

// Is makes errors.Is(err, ErrBadConfig) hold.
func (e *ConfigError) Is(target error) bool { return target == ErrBadConfig }

// normalizeConfig checks raw harmony.yaml against Config's shape before it is decoded: an
// unknown field is named with its line and the known field it is closest to, a value of the
// wrong kind is explained with its line, and what people commonly write for convenience is
// accepted: a single string (or mapping) where a list is expected is that list of one, and any
// scalar where a string is expected is that string. It returns the YAML to decode.
func normalizeConfig(raw []byte) ([]byte, error) {
	var doc yaml3.Node
	if err := yaml3.Unmarshal(raw, &doc); err != nil {
		return nil, yamlError(err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return raw, nil // empty: decoding says what is missing
	}
	if err := checkNode(doc.Content[0], reflect.TypeOf(Config{}), ""); err != nil {
		return nil, err
	}
	return yaml3.Marshal(doc.Content[0])
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlError turns the YAML parser's "yaml: line 3: …" into "harmony.yaml:3: …".
func yamlError(err error) error {
	var te *yaml3.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		err = errors.New(te.Errors[0])
	}
	if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &ConfigError{Line: line, Msg: m[2]}
	}
	return &ConfigError{Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
}

// checkNode checks n against the Go type t it decodes into; path names the field in messages.
func checkNode(n *yaml3.Node, t reflect.Type, path string) error {
	if n.Kind == yaml3.AliasNode || isNull(n) {
		return nil
	}
	switch t.Kind() {
	case reflect.Pointer: // an optional block (jsonnet:)
		return checkNode(n, t.Elem(), path)
	case reflect.Struct:
		if n.Kind != yaml3.MappingNode {
			return kindError(n, path, "a mapping (field: value)")
		}
		fields := jsonFields(t)
		if err := noDuplicates(n, path); err != nil {
			return err
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			f, ok := fields[k.Value]
			if !ok {
				return unknownField(k, path, fields)
			}
			if err := checkNode(v, f.Type, join(path, k.Value)); err != nil {
				return err
			}
		}
	case reflect.Slice:
		if n.Kind != yaml3.SequenceNode {
			if n.Kind == yaml3.MappingNode && t.Elem().Kind() != reflect.Struct {
				return kindError(n, path, "a list")
			}
			// A list of one, written without the brackets: "manifests: deploy/app.yaml".
			one := *n
			*n = yaml3.Node{Kind: yaml3.SequenceNode, Tag: "!!seq", Line: n.Line, Column: n.Column, Content: []*yaml3.Node{&one}}
		}
		for i, item := range n.Content {
			if err := checkNode(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i)); err != nil {
				return err
			}
		}
	case reflect.Map:
		if n.Kind != yaml3.MappingNode {
			return kindError(n, path, "a mapping (key: value)")
		}
		if err := noDuplicates(n, path); err != nil {
			return err
		}
		for i := 0; i < len(n.Content); i += 2 {
			if k := n.Content[i]; k.Kind == yaml3.ScalarNode {
				k.Tag, k.Style = "!!str", yaml3.DoubleQuotedStyle // keys are strings (y is no boolean)
			}
		}
		if t.Elem().Kind() == reflect.Interface {
			return nil // set: any values
		}
		for i := 1; i < len(n.Content); i += 2 {
			k := n.Content[i-1].Value
			if err := checkNode(n.Content[i], t.Elem(), join(path, k)); err != nil {
				return err
			}
		}
	case reflect.String:
		if n.Kind != yaml3.ScalarNode {
			return kindError(n, path, "a string")
		}
		// Jsonnet's top-level arguments and external variables are strings: a number or a
		// boolean written there would reach the program as one ("2"), a trap the newcomer
		// review fell in (spec.replicas: expected numeric, got string).
		for _, block := range []string{"jsonnet.tlas.", "jsonnet.extVars."} {
			if strings.HasPrefix(path, block) && n.Style == 0 && (n.Tag == "!!int" || n.Tag == "!!float" || n.Tag == "!!bool") {
				code := "tlaCode"
				if block == "jsonnet.extVars." {
					code = "extCode"
				}
				key, what := strings.TrimPrefix(path, block), "number"
				if n.Tag == "!!bool" {
					what = "boolean"
				}
				return &ConfigError{Line: n.Line, Msg: fmt.Sprintf("%s: %s is a %s, but %s are strings for Jsonnet: for the %s write it under %s (%s: {%s: %q}); for the string, quote it (%q)",
					path, n.Value, what, strings.TrimSuffix(strings.TrimPrefix(block, "jsonnet."), "."), what, code, code, key, n.Value, n.Value)}
			}
		}
		// 5, true, 1.36: the string as written; and quoted, so that y, no or on (plain strings
		// here) are not read as booleans when the result is decoded (YAML 1.1).
		n.Tag, n.Style = "!!str", yaml3.DoubleQuotedStyle
	}
	return nil
}

// noDuplicates refuses a mapping that sets a key twice (the YAML parser keeps either silently).
func noDuplicates(n *yaml3.Node, path string) error {
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if first, ok := seen[k.Value]; ok {
			return &ConfigError{Line: k.Line, Msg: fmt.Sprintf("%s is set twice (first at line %d)", join(path, k.Value), first)}
		}
		seen[k.Value] = k.Line
	}
	return nil
}

func isNull(n *yaml3.Node) bool { return n.Kind == yaml3.ScalarNode && n.Tag == "!!null" }

func join(path, field string) string {
	if path == "" {
		return field
	}
	return path + "." + field
}

// kindError says what a field wants and what it got.
func kindError(n *yaml3.Node, path, want string) error {
	got := map[yaml3.Kind]string{yaml3.SequenceNode: "a list", yaml3.MappingNode: "a mapping", yaml3.ScalarNode: fmt.Sprintf("%q", n.Value)}[n.Kind]
	if path == "" {
		return hint.With(&ConfigError{Line: n.Line, Msg: fmt.Sprintf("want a mapping of fields, got %s", got)},
			"for example: manifests: [deploy/], then namespace: my-app on the next line")
	}
	return &ConfigError{Line: n.Line, Msg: fmt.Sprintf("%s: want %s, got %s", path, want, got)}
}

// unknownField names a field harmony does not read, with the one it is closest to.
func unknownField(k *yaml3.Node, path string, fields map[string]reflect.StructField) error {
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	sort.Strings(names)
	msg := fmt.Sprintf("unknown field %q", join(path, k.Value))
	if s := closest(k.Value, names); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	where := ProjectFile
	if path != "" {
		where = path
	}
	return hint.With(&ConfigError{Line: k.Line, Msg: msg}, fmt.Sprintf("the fields of %s: %s", where, strings.Join(names, ", ")))
}

// jsonFields maps the JSON names of t's exported fields (what sigs.k8s.io/yaml decodes) to them.
func jsonFields(t reflect.Type) map[string]reflect.StructField {
	fields := map[string]reflect.StructField{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		fields[name] = f
	}
	return fields
}

// closest returns the name within edit distance 2 of word (the nearest), else the one word
// begins, as cobra suggests commands; "" when none is close.
func closest(word string, names []string) string {
	word = strings.ToLower(word)
	best, bestD := "", 3
	for _, n := range names {
		if d := distance(word, strings.ToLower(n)); d < bestD {
			best, bestD = n, d
		}
	}
	if best == "" && len(word) >= 3 {
		for _, n := range names {
			if strings.HasPrefix(strings.ToLower(n), word) {
				return n
			}
		}
	}
	return best
}

// distance is the Levenshtein distance between a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
