package launch

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	jsonnet "github.com/google/go-jsonnet"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"

	"github.com/NationTech/harmony-agent/internal/hint"
)

// Jsonnet programs are evaluated with go-jsonnet, in the render child where there is one (they
// are the repository's code, bounded like a chart's templates). Their imports go through
// jsonnetImporter, which reads inside the repository only; no native function is registered, so
// nothing in a program reaches the host.

// jsonnetMaxStack bounds a program's call depth (go-jsonnet's own default, set here so that it
// stays): a recursion without end stops there, with the render-limit error.
const jsonnetMaxStack = 500

// renderJsonnet evaluates each program of src, each in a VM of its own, and returns its objects.
func renderJsonnet(t *tree, src *Source) ([]Object, error) {
	o := src.JsonnetOptions
	if o == nil {
		o = &JsonnetConfig{}
	}
	im := &jsonnetImporter{t: t, cache: map[string]jsonnet.Contents{}}
	for _, l := range o.Libs {
		name, err := t.rel(l)
		if err != nil {
			err = fmt.Errorf("%q is %w", rel(src.Root, l), ErrOutside)
		} else {
			var st fs.FileInfo
			if name, st, err = t.stat(name); err == nil && !st.IsDir() {
				err = fmt.Errorf("%q is not a folder", rel(src.Root, l))
			}
		}
		if err != nil {
			return nil, hint.With(fmt.Errorf("%s: jsonnet.libs: %w", ProjectFile, err),
				"name library folders inside the repository, relative to the folder holding "+ProjectFile)
		}
		im.libs = append(im.libs, name)
	}
	var objs []Object
	for _, f := range src.Jsonnet {
		name, err := t.rel(f)
		if err != nil {
			return nil, err
		}
		vm := jsonnet.MakeVM()
		vm.MaxStack = jsonnetMaxStack
		vm.Importer(im)
		errs := &jsonnetErrors{}
		vm.ErrorFormatter = errs
		vm.SetTraceOut(&childStderr{out: os.Stderr}) // std.trace: sanitised, capped
		for k, v := range o.TLAs {
			vm.TLAVar(k, v)
		}
		for k, v := range o.TLACode {
			vm.TLACode(k, v)
		}
		for k, v := range o.ExtVars {
			vm.ExtVar(k, v)
		}
		for k, v := range o.ExtCode {
			vm.ExtCode(k, v)
		}
		out, err := vm.EvaluateFile(name)
		if err != nil {
			return nil, errs.explain(name, im)
		}
		var v any
		if err := utiljson.Unmarshal([]byte(out), &v); err != nil {
			return nil, fmt.Errorf("jsonnet %s: its value cannot be read: %v: %w", name, err, ErrBadManifest)
		}
		origin := rel(src.Root, f)
		if v == nil {
			return nil, notObjects(origin, "", v)
		}
		got, err := jsonnetObjects(origin, "", v)
		if err != nil {
			return nil, err
		}
		objs = append(objs, got...)
	}
	return objs, nil
}

// jsonnetObjects reads a program's value as kubecfg and Argo CD do: an object with apiVersion or
// kind is a Kubernetes object (a List's items are its objects); any other object is a map whose
// values are read the same way (in the order of their keys); an array's elements too (nested
// arrays flattened); null inside them is nothing. Anything else is an error naming where it is.
func jsonnetObjects(origin, at string, v any) ([]Object, error) {
	switch v := v.(type) {
	case nil:
		return nil, nil
	case []any:
		var out []Object
		for i, e := range v {
			got, err := jsonnetObjects(origin, at+"["+strconv.Itoa(i)+"]", e)
			if err != nil {
				return nil, err
			}
			out = append(out, got...)
		}
		return out, nil
	case map[string]any:
		_, api := v["apiVersion"]
		_, kind := v["kind"]
		if !api && !kind {
			keys := make([]string, 0, len(v))
			for k := range v {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			var out []Object
			for _, k := range keys {
				got, err := jsonnetObjects(origin, at+fieldPath(k), v[k])
				if err != nil {
					return nil, err
				}
				out = append(out, got...)
			}
			return out, nil
		}
		u := &unstructured.Unstructured{Object: v}
		if !u.IsList() {
			o := Object{Unstructured: u, Origin: origin}
			return []Object{o}, check(o)
		}
		list, err := u.ToList()
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %v: %w", origin, strings.TrimPrefix(at, "."), err, ErrBadManifest)
		}
		var out []Object
		for i := range list.Items {
			o := Object{Unstructured: &list.Items[i], Origin: origin}
			if err := check(o); err != nil {
				return nil, err
			}
			out = append(out, o)
		}
		return out, nil
	}
	return nil, notObjects(origin, at, v)
}

// notObjects says a program's value, or a part of it, is no Kubernetes object.
func notObjects(origin, at string, v any) error {
	what := "a " + jsonType(v)
	if v == nil {
		what = "null"
	}
	if at == "" {
		return hint.With(fmt.Errorf("%s: the program's value is %s, not Kubernetes objects: %w", origin, what, ErrBadManifest),
			"a program launched gives an object (a Kubernetes object, a List, or an object whose fields are objects) or an array of them")
	}
	return fmt.Errorf("%s: %s is %s, not a Kubernetes object: %w", origin, at, what, ErrBadManifest)
}

func jsonType(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case bool:
		return "boolean"
	case int64, float64:
		return "number"
	}
	return fmt.Sprintf("%T", v)
}

// fieldPath is a field as Jsonnet selects it: .name, or ["a key"].
func fieldPath(k string) string {
	for i, r := range k {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return "[" + strconv.Quote(Sanitize(k)) + "]"
		}
	}
	if k == "" {
		return `[""]`
	}
	return "." + k
}

// jsonnetError is a program's failure: go-jsonnet's words (with where), and its kind.
type jsonnetError struct {
	msg  string
	kind error // ErrOutside, ErrBadManifest
}

func (e *jsonnetError) Error() string { return e.msg }
func (e *jsonnetError) Unwrap() error { return e.kind }

// jsonnetImporter resolves import, importstr and importbin inside the repository: beside the
// importing file, else in the library folders (the last named first, as jsonnet -J does). Paths
// are root-relative, read through the tree (confined to the root, regular files only, capped):
// an absolute path, a .. leaving the root and a symbolic link leading out are refused.
type jsonnetImporter struct {
	t     *tree
	libs  []string // root-relative, links resolved
	cache map[string]jsonnet.Contents
	// refused says the first import refused for leaving the repository (go-jsonnet keeps
	// only the text of an importer's error).
	refused string
	// missing is the first import found nowhere.
	missing string
}

func (im *jsonnetImporter) Import(importedFrom, importedPath string) (jsonnet.Contents, string, error) {
	what := fmt.Sprintf("import %q", importedPath)
	if importedPath == "" {
		return jsonnet.Contents{}, "", errors.New(what + ": an empty path")
	}
	p := filepath.ToSlash(importedPath)
	if path.IsAbs(p) || filepath.IsAbs(importedPath) || filepath.VolumeName(importedPath) != "" {
		return im.refuse(what + " is " + ErrOutside.Error() + " (an absolute path)")
	}
	dir := "."
	if importedFrom != "" && !strings.HasPrefix(importedFrom, "<") { // a file, not a snippet (ext code)
		dir = path.Dir(importedFrom)
	}
	local := path.Join(dir, p)
	if local == ".." || strings.HasPrefix(local, "../") {
		return im.refuse(what + " is " + ErrOutside.Error())
	}
	tries := []string{local}
	for i := len(im.libs) - 1; i >= 0; i-- {
		if c := path.Join(im.libs[i], p); c != ".." && !strings.HasPrefix(c, "../") {
			tries = append(tries, c)
		}
	}
	for _, name := range tries {
		if c, ok := im.cache[name]; ok {
			return c, name, nil
		}
		b, err := im.t.readFile(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if errors.Is(err, ErrOutside) {
			return im.refuse(what + ": " + err.Error())
		}
		if err != nil {
			return jsonnet.Contents{}, "", fmt.Errorf("%s: %w", what, err)
		}
		c := jsonnet.MakeContentsRaw(b)
		im.cache[name] = c
		return c, name, nil
	}
	if im.missing == "" {
		im.missing = importedPath
	}
	looked := make([]string, len(tries))
	for i, t := range tries {
		looked[i] = shown(t)
	}
	return jsonnet.Contents{}, "", fmt.Errorf("%s: not found (looked for %s)", what, strings.Join(looked, ", "))
}

// refuse refuses an import leading outside the repository, saying so in msg.
func (im *jsonnetImporter) refuse(msg string) (jsonnet.Contents, string, error) {
	if im.refused == "" {
		im.refused = msg
	}
	return jsonnet.Contents{}, "", errors.New(msg)
}

// jsonnetErrors keeps the error go-jsonnet formats (it returns only text), for explain.
type jsonnetErrors struct{ err error }

func (f *jsonnetErrors) Format(err error) string {
	f.err = err
	return err.Error()
}

func (f *jsonnetErrors) SetMaxStackTraceSize(int)                 {}
func (f *jsonnetErrors) SetColorFormatter(jsonnet.ColorFormatter) {}

// explain turns a failed evaluation of name into harmony's error: one line, where it happened
// (the innermost place in a file), and its kind: the render limit for a recursion past the
// stack limit, ErrOutside for an import leaving the repository, else a bad manifest.
func (f *jsonnetErrors) explain(name string, im *jsonnetImporter) error {
	msg, where := Sanitize(f.err.Error()), ""
	var rt jsonnet.RuntimeError
	if errors.As(f.err, &rt) {
		msg = Sanitize(rt.Msg)
		for _, fr := range slices.Backward(rt.StackTrace) {
			if fr.Loc.FileName != "" && fr.Loc.IsSet() {
				where = Sanitize(fr.Loc.String())
				break
			}
		}
	}
	switch {
	case where == "":
		where = name
	case where != name && !strings.HasPrefix(where, name+":"):
		where = name + ": " + where // in a library it imports
	}
	// go-jsonnet says so in words only (interpreter.go's newCall).
	if strings.HasPrefix(rt.Msg, "max stack frames exceeded") {
		return hint.With(fmt.Errorf("%w: jsonnet %s: a recursion deeper than %d calls", ErrRenderLimit, where, jsonnetMaxStack),
			"a function that calls itself without end does this: make it stop")
	}
	if !strings.HasPrefix(msg, where) {
		msg = where + ": " + msg
	}
	switch {
	case im.refused != "" && strings.Contains(msg, Sanitize(im.refused)):
		return &jsonnetError{msg: "jsonnet " + msg, kind: ErrOutside}
	case im.missing != "" && strings.Contains(msg, fmt.Sprintf("import %q", im.missing)):
		return hint.With(fmt.Errorf("jsonnet %s: %w", msg, ErrBadManifest),
			"if it is in a library folder (e.g. vendor/ or lib/), name it in "+ProjectFile+": jsonnet: {libs: [vendor]}")
	// go-jsonnet's words for a missing top-level argument and external variable.
	case strings.HasPrefix(rt.Msg, "Missing argument: "):
		return hint.With(fmt.Errorf("jsonnet %s: %w", msg, ErrBadManifest), "the program is a function: give its arguments in "+
			ProjectFile+", e.g. jsonnet: {tlas: {"+Sanitize(strings.TrimPrefix(rt.Msg, "Missing argument: "))+": VALUE}}")
	case strings.HasPrefix(rt.Msg, "Undefined external variable: "):
		return hint.With(fmt.Errorf("jsonnet %s: %w", msg, ErrBadManifest), "give it in "+
			ProjectFile+", e.g. jsonnet: {extVars: {"+Sanitize(strings.TrimPrefix(rt.Msg, "Undefined external variable: "))+": VALUE}}")
	}
	return fmt.Errorf("jsonnet %s: %w", msg, ErrBadManifest)
}
