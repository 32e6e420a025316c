//go:build unix

package launch_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/NationTech/harmony-agent/launch"
)

// A symbolic link inside the repository leading out of it is not followed by an import, nor by
// a library folder, nor by the program itself.
func TestJsonnetSymlinksOutAreRefused(t *testing.T) {
	t.Parallel()
	tests := map[string]struct {
		files map[string]string
		links map[string]string
		want  string
	}{
		"an imported file": {map[string]string{"app.jsonnet": "import 'lib.libsonnet'"}, map[string]string{"lib.libsonnet": "../outside.libsonnet"},
			`"lib.libsonnet" links to "../outside.libsonnet"`},
		"an absolute link": {map[string]string{"app.jsonnet": "importstr 'passwd'"}, map[string]string{"passwd": "/etc/passwd"},
			`"passwd" links to "/etc/passwd"`},
		"a folder on the way": {map[string]string{"app.jsonnet": "import 'lib/outside.libsonnet'"}, map[string]string{"lib": ".."},
			`"lib" links to ".."`},
		"a library folder": {map[string]string{"harmony.yaml": "jsonnet: {libs: [vendor]}\n", "app.jsonnet": "import 'outside.libsonnet'"}, map[string]string{"vendor": ".."},
			`"vendor" links to ".."`},
		"the program": {map[string]string{"harmony.yaml": "manifests: [app.jsonnet]\n"}, map[string]string{"app.jsonnet": "../outside.libsonnet"},
			`"app.jsonnet" links to "../outside.libsonnet"`},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			root := tree(t, tt.files)
			writeOutside(t, root)
			for link, target := range tt.links {
				if err := os.Symlink(target, filepath.Join(root, link)); err != nil {
					t.Fatal(err)
				}
			}
			proj, err := launch.Resolve(launch.Selection{Dir: root})
			if err != nil {
				t.Fatal(err)
			}
			src, err := proj.Discover()
			if err == nil {
				_, err = launch.Render(t.Context(), src, launch.RenderOptions{})
			}
			if !errors.Is(err, launch.ErrOutside) || !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "s3cr3t") {
				t.Fatalf("error %v, want ErrOutside saying %q", err, tt.want)
			}
		})
	}
}
