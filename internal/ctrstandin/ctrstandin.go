// Package ctrstandin is a TEST STAND-IN for containerd's `ctr` as k3s ships it, the part harmony
// and k3d use: `ctr [--address A] [-n NS] images import [--all-platforms] -` and `ctr [...]
// images ls -q`. Like k3s's ctr, it works in the k8s.io namespace unless told otherwise (k3d runs
// `ctr image import --all-platforms -` without -n). The k3s stand-ins (bootstrap/testdata)
// answer `ctr` with it. An import reads a real `docker
// save` stream from stdin (manifest.json, every config and layer it names must be present),
// adds its tags, fully qualified as containerd names them, to the store's "images" file and
// appends one line to its "imports" file, so tests see what was imported and how often.
package ctrstandin

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/distribution/reference"
)

// k3sNamespace is the namespace k3s's ctr works in without -n: Kubernetes' (the kubelet's).
const k3sNamespace = "k8s.io"

// Main runs ctr with args (without the program name); store is the folder the stand-in keeps
// its images in, given the --address it was called with (or "" without one). It returns the
// exit code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer, store func(address string) string) int {
	ns, address := k3sNamespace, ""
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		switch args[0] {
		case "-n", "--namespace":
			if len(args) < 2 {
				return fail(stderr, "ctr-standin: %s needs a value", args[0])
			}
			ns, args = args[1], args[2:]
		case "-a", "--address":
			if len(args) < 2 {
				return fail(stderr, "ctr-standin: %s needs a value", args[0])
			}
			address, args = args[1], args[2:]
		default:
			return fail(stderr, "ctr-standin: unknown global flag %q", args[0])
		}
	}
	if ns != k3sNamespace {
		return fail(stderr, "ctr-standin: namespace %q: the kubelet only sees images in k8s.io", ns)
	}
	if len(args) < 2 || (args[0] != "images" && args[0] != "image" && args[0] != "i") {
		return fail(stderr, "ctr-standin: only 'images import' and 'images ls' are supported, not %q", strings.Join(args, " "))
	}
	dir := store(address)
	switch args[1] {
	case "ls", "list":
		if len(args) != 3 || args[2] != "-q" {
			return fail(stderr, "ctr-standin: only 'images ls -q' is supported")
		}
		for _, ref := range List(dir) {
			fmt.Fprintln(stdout, ref)
		}
		return 0
	case "import":
		rest := args[2:]
		if len(rest) > 0 && rest[0] == "--all-platforms" {
			rest = rest[1:]
		}
		if len(rest) != 1 || rest[0] != "-" {
			return fail(stderr, "ctr-standin: only 'images import [--all-platforms] -' (from stdin) is supported")
		}
		refs, err := Import(dir, stdin)
		if err != nil {
			return fail(stderr, "ctr: %v", err)
		}
		for _, r := range refs {
			fmt.Fprintf(stdout, "unpacking %s...done\n", r)
		}
		return 0
	}
	return fail(stderr, "ctr-standin: unsupported command %q", strings.Join(args, " "))
}

func fail(w io.Writer, format string, a ...any) int {
	fmt.Fprintf(w, format+"\n", a...)
	return 1
}

// Import reads a `docker save` stream and records its tags in dir; it returns them, with the
// image's config digest ("docker.io/library/x:t (sha256:…)").
func Import(dir string, r io.Reader) ([]string, error) {
	tr := tar.NewReader(r)
	files := map[string][]byte{}
	seen := map[string]bool{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read the image stream: %w", err)
		}
		name := strings.TrimPrefix(h.Name, "./")
		seen[name] = true
		if name == "manifest.json" || strings.HasSuffix(name, ".json") || strings.HasPrefix(name, "blobs/") && h.Size < 1<<20 {
			b, err := io.ReadAll(tr)
			if err != nil {
				return nil, err
			}
			files[name] = b
		}
	}
	var manifest []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	b, ok := files["manifest.json"]
	if !ok {
		return nil, errors.New("the stream has no manifest.json: not a docker save stream")
	}
	if err := json.Unmarshal(b, &manifest); err != nil {
		return nil, fmt.Errorf("manifest.json: %w", err)
	}
	var refs, out []string
	for _, m := range manifest {
		for _, p := range append([]string{m.Config}, m.Layers...) {
			if !seen[p] {
				return nil, fmt.Errorf("the stream lacks %s, which manifest.json names", p)
			}
		}
		sum := sha256.Sum256(files[m.Config])
		for _, t := range m.RepoTags {
			n, err := reference.ParseNormalizedNamed(t)
			if err != nil {
				return nil, fmt.Errorf("tag %q: %w", t, err)
			}
			refs = append(refs, n.String())
			out = append(out, n.String()+" (sha256:"+hex.EncodeToString(sum[:])+")")
		}
	}
	if len(refs) == 0 {
		return nil, errors.New("the stream names no tagged image")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	all := map[string]bool{}
	for _, r := range append(List(dir), refs...) {
		all[r] = true
	}
	var list []string
	for r := range all {
		list = append(list, r)
	}
	sort.Strings(list)
	if err := os.WriteFile(filepath.Join(dir, "images"), []byte(strings.Join(list, "\n")+"\n"), 0o644); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, "imports"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	_, err = fmt.Fprintln(f, strings.Join(refs, " "))
	return out, err
}

// List returns the images recorded in dir.
func List(dir string) []string {
	b, _ := os.ReadFile(filepath.Join(dir, "images"))
	return strings.Fields(string(b))
}

// Imports returns one entry per import recorded in dir: the refs it imported.
func Imports(dir string) [][]string {
	b, _ := os.ReadFile(filepath.Join(dir, "imports"))
	var out [][]string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if l != "" {
			out = append(out, strings.Fields(l))
		}
	}
	return out
}
