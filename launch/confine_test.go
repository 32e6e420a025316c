package launch_test

// Threat (DESIGN.md's trust chain): hostile repos. The tests here and in confine_unix_test.go
// check that a repository's files never make harmony read outside the repository (links,
// "../" paths, kustomize bases), read forever (FIFOs, devices, endless files: size caps),
// fetch anything unless --allow-remote (remote kustomize resources), or lose a line; terminal
// escapes in cluster text are neutralised (sanitize_test.go, TestDiagnosisPrintsClusterTextInert).

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/NationTech/harmony-agent/launch"
)

// discoverAndRender runs discovery and rendering on root in a goroutine and fails the test when
// it does not return within a generous deadline: a repository must never hang harmony.
func discoverAndRender(t *testing.T, root string, o launch.RenderOptions) ([]launch.Object, error) {
	t.Helper()
	type result struct {
		objs []launch.Object
		err  error
	}
	done := make(chan result, 1)
	go func() {
		proj, err := launch.Resolve(launch.Selection{Dir: root})
		if err != nil {
			done <- result{nil, err}
			return
		}
		src, err := proj.Discover()
		if err != nil {
			done <- result{nil, err}
			return
		}
		objs, err := launch.Render(t.Context(), src, o)
		done <- result{objs, err}
	}()
	select {
	case r := <-done:
		return r.objs, r.err
	case <-time.After(2 * time.Minute):
		t.Fatal("discovery or rendering still running after 2 minutes: it hangs on this repository")
		return nil, nil
	}
}

// wantRefused checks that err is a refusal naming the file and saying why.
func wantRefused(t *testing.T, objs []launch.Object, err error, file, why string) {
	t.Helper()
	if err == nil {
		t.Fatalf("rendered %d objects, want an error naming %q", len(objs), file)
	}
	t.Logf("refused: %v", err)
	if !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), why) {
		t.Fatalf("error %q, want one naming %q and saying %q", err, file, why)
	}
}

func TestReadsStayInsideTheProject(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		files     map[string]string
		file, why string
	}{
		{"harmony.yaml path with ..", map[string]string{"harmony.yaml": "manifests: [../outside.yaml]\n"},
			"../outside.yaml", "outside the project"},
		{"harmony.yaml absolute path", map[string]string{"harmony.yaml": "manifests: [/etc/hostname]\n"},
			"/etc/hostname", "outside the project"},
		{"kustomize resource above the root", map[string]string{"kustomization.yaml": "resources: [../outside.yaml]\n"},
			"kustomization.yaml: resources: \"../outside.yaml\"", "outside the project"},
		{"kustomize base above the root", map[string]string{"kustomization.yaml": "resources: [../elsewhere]\n"},
			"elsewhere", "outside the project"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root := tree(t, tt.files)
			outside := filepath.Dir(root)
			if err := os.WriteFile(filepath.Join(outside, "outside.yaml"), []byte(cmDoc("secret")), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.MkdirAll(filepath.Join(outside, "elsewhere"), 0o755); err != nil {
				t.Fatal(err)
			}
			for name, body := range map[string]string{"kustomization.yaml": "resources: [cm.yaml]\n", "cm.yaml": cmDoc("secret")} {
				if err := os.WriteFile(filepath.Join(outside, "elsewhere", name), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			objs, err := discoverAndRender(t, root, launch.RenderOptions{})
			wantRefused(t, objs, err, tt.file, tt.why)
		})
	}
}

func TestSizeCaps(t *testing.T) {
	t.Parallel()
	big := cmDoc("big") + "data:\n  blob: " + strings.Repeat("x", 4096) + "\n"
	t.Run("one file over the per-file cap", func(t *testing.T) {
		t.Parallel()
		root := tree(t, map[string]string{"manifests/a.yaml": cmDoc("a"), "manifests/big.yaml": big})
		objs, err := discoverAndRender(t, root, launch.RenderOptions{MaxFileSize: 1024})
		wantRefused(t, objs, err, "manifests/big.yaml", "larger than")
		if !errors.Is(err, launch.ErrTooLarge) {
			t.Fatalf("error %v, want ErrTooLarge", err)
		}
	})
	t.Run("files over the per-launch cap", func(t *testing.T) {
		t.Parallel()
		files := map[string]string{}
		for _, n := range []string{"a", "b", "c", "d"} {
			files["manifests/"+n+".yaml"] = big
		}
		root := tree(t, files)
		objs, err := discoverAndRender(t, root, launch.RenderOptions{MaxTotalSize: 10000})
		wantRefused(t, objs, err, "manifests/c.yaml", "per launch")
	})
	t.Run("a kustomization reads a file over the cap", func(t *testing.T) {
		t.Parallel()
		root := tree(t, map[string]string{"kustomization.yaml": "resources: [big.yaml]\n", "big.yaml": big})
		objs, err := discoverAndRender(t, root, launch.RenderOptions{MaxFileSize: 1024})
		wantRefused(t, objs, err, "big.yaml", "larger than")
	})
	t.Run("the default cap", func(t *testing.T) {
		t.Parallel()
		root := tree(t, map[string]string{"manifests/a.yaml": cmDoc("a")})
		f, err := os.Create(filepath.Join(root, "manifests", "huge.yaml"))
		if err != nil {
			t.Fatal(err)
		}
		// Sparse: the size is what counts, checked before reading.
		if err := f.Truncate(launch.DefaultMaxFileSize + 1); err != nil {
			t.Fatal(err)
		}
		f.Close()
		objs, err := discoverAndRender(t, root, launch.RenderOptions{})
		wantRefused(t, objs, err, "manifests/huge.yaml", "larger than")
	})
}

// A line longer than any line buffer must not make later documents disappear (the next launch
// would prune their objects).
func TestLongLineDropsNothing(t *testing.T) {
	t.Parallel()
	long := "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: long}\ndata:\n  blob: " + strings.Repeat("x", 17<<20) + "\n"
	root := tree(t, map[string]string{"harmony.yaml": "manifests: [manifests/app.yaml]\n", "manifests/app.yaml": cmDoc("first") + "---\n" + long + "---\n" + cmDoc("after") + "---\n" + cmDoc("last")})
	// Not under discoverAndRender's watchdog: decoding 17 MiB is slow, not stuck.
	src, err := launch.Discover(root, nil)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := launch.Render(t.Context(), src, launch.RenderOptions{})
	if err != nil {
		if !strings.Contains(err.Error(), "manifests/app.yaml") {
			t.Fatalf("error %v does not name the file", err)
		}
		return // refusing the file is fine; dropping documents is not
	}
	var names []string
	for _, o := range objs {
		names = append(names, o.GetName())
	}
	if strings.Join(names, ",") != "first,long,after,last" {
		t.Fatalf("rendered %v, want every document", names)
	}
	if blob, _, _ := unstructuredString(objs[1].Object, "data", "blob"); len(blob) != 17<<20 {
		t.Fatalf("long value has %d bytes", len(blob))
	}
}

func unstructuredString(m map[string]any, fields ...string) (string, bool, error) {
	for _, f := range fields[:len(fields)-1] {
		next, ok := m[f].(map[string]any)
		if !ok {
			return "", false, nil
		}
		m = next
	}
	s, ok := m[fields[len(fields)-1]].(string)
	return s, ok, nil
}
