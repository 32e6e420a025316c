package launch_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/NationTech/harmony-agent/launch"
)

// Hostile repository: a skaffold.yaml naming one required config over and over (each entry was
// a read and a parse of that file) is refused, and a file named twice is read once.
func TestSkaffoldRequiresBounded(t *testing.T) {
	sub := "apiVersion: skaffold/v4beta6\nkind: Config\nmanifests: {rawYaml: [k8s/*.yaml]}\n"
	twice := tree(t, map[string]string{
		"skaffold.yaml":     "apiVersion: skaffold/v4beta6\nkind: Config\nrequires: [{path: sub}, {path: sub/skaffold.yaml}]\n",
		"sub/skaffold.yaml": sub,
		"sub/k8s/ok.yaml":   cmDoc("ok"),
	})
	if src, err := launch.Discover(twice, nil); err != nil || len(src.Files) != 1 {
		t.Fatalf("a config required twice: %v (source %+v), want its one file", err, src)
	}
	many := "apiVersion: skaffold/v4beta6\nkind: Config\nrequires:\n" + strings.Repeat("- path: sub\n", 5000)
	root := tree(t, map[string]string{"skaffold.yaml": many, "sub/skaffold.yaml": sub, "sub/k8s/ok.yaml": cmDoc("ok")})
	src, err := launch.Discover(root, nil)
	if !errors.Is(err, launch.ErrTooLarge) {
		t.Fatalf("got %v (source %+v), want ErrTooLarge", err, src)
	}
}
