package launch

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"

	controlapi "github.com/moby/buildkit/api/services/control"
	apitypes "github.com/moby/buildkit/api/types"
	"github.com/tonistiigi/fsutil"
	fstypes "github.com/tonistiigi/fsutil/types"
	"google.golang.org/protobuf/proto"
)

// The hand-written control API messages decode as BuildKit's generated ones (test-only import:
// the binary does not link them).
func TestBuildKitSolveRequestEncoding(t *testing.T) {
	t.Parallel()
	r := bkSolveRequest{ref: "ref1", session: "sess1", frontend: "dockerfile.v0",
		frontendAttrs: map[string]string{"filename": "Dockerfile", "build-arg:A": "x=y", "target": "prod"},
		exporter:      "image", exporterAttrs: map[string]string{"name": "harmony.invalid/web:harmony-0123456789abcdef", "unpack": "true"}}
	var got controlapi.SolveRequest
	if err := proto.Unmarshal(r.encode(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Ref != r.ref || got.Session != r.session || got.Frontend != r.frontend || !mapsEqual(got.FrontendAttrs, r.frontendAttrs) {
		t.Errorf("decoded %v", &got)
	}
	if len(got.Exporters) != 1 || got.Exporters[0].Type != "image" || !mapsEqual(got.Exporters[0].Attrs, r.exporterAttrs) {
		t.Errorf("exporters: %v", got.Exporters)
	}
	if got.ExporterDeprecated != "image" || !mapsEqual(got.ExporterAttrsDeprecated, r.exporterAttrs) {
		t.Errorf("deprecated exporter: %q %v", got.ExporterDeprecated, got.ExporterAttrsDeprecated)
	}
}

func TestBuildKitWorkersDecoding(t *testing.T) {
	t.Parallel()
	b, err := proto.Marshal(&controlapi.ListWorkersResponse{Record: []*apitypes.WorkerRecord{
		{ID: "w1", Labels: map[string]string{bkLabelExecutor: "oci"}},
		{ID: "w2", Labels: map[string]string{bkLabelExecutor: "containerd", bkLabelNamespace: "k8s.io"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	ws := decodeWorkers(b)
	if len(ws) != 2 || ws[0].id != "w1" || ws[1].labels[bkLabelNamespace] != "k8s.io" || ws[1].labels[bkLabelExecutor] != "containerd" {
		t.Errorf("workers: %+v", ws)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

// contextTree writes a build context: .dockerignore leaves out *.tmp and the logs folder.
func contextTree(t *testing.T) (string, ImageArtifact) {
	t.Helper()
	root := t.TempDir()
	for name, body := range map[string]string{
		"web/Dockerfile":      "FROM scratch\nCOPY . /\n",
		"web/.dockerignore":   "*.tmp\nlogs\n",
		"web/index.html":      "<h1>web</h1>",
		"web/scratch.tmp":     "ignored",
		"web/logs/today.txt":  "ignored",
		"web/static/app.js":   "app",
		"web/static/b/c.css":  "css",
		"outside/other.thing": "not sent",
	} {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("index.html", filepath.Join(root, "web", "home.html")); err != nil {
		t.Fatal(err)
	}
	return root, ImageArtifact{Image: "web", Context: "web"}
}

// openChecked lists and hashes a context as a BuildKit build does.
func openChecked(t *testing.T, root string, a ImageArtifact) *contextFS {
	t.Helper()
	bc, err := openContext(root, a)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bc.close)
	bc.sums = map[string][sha256.Size]byte{}
	if err := bc.write(nil, sha256.New()); err != nil {
		t.Fatal(err)
	}
	cfs := &contextFS{bc: bc, byPath: map[string]*contextEntry{}}
	for i := range bc.entries {
		cfs.byPath[bc.entries[i].rel] = &bc.entries[i]
	}
	return cfs
}

func walkNames(t *testing.T, f fsutil.FS, fn func(string, fs.DirEntry) error) []string {
	t.Helper()
	var names []string
	err := f.Walk(context.Background(), "/", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if _, ok := fi.Sys().(*fstypes.Stat); !ok {
			t.Errorf("%s: no fsutil stat", p)
		}
		names = append(names, filepath.ToSlash(p))
		if fn != nil {
			return fn(p, d)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// The session sends what the Docker path sends: .dockerignore applied, the Dockerfile and
// .dockerignore kept, links as links, in fsutil's walking order; SkipDir skips a folder.
func TestBuildKitContextWalk(t *testing.T) {
	t.Parallel()
	root, a := contextTree(t)
	cfs := openChecked(t, root, a)
	want := []string{".dockerignore", "Dockerfile", "home.html", "index.html", "static", "static/app.js", "static/b", "static/b/c.css"}
	if got := walkNames(t, cfs, nil); !slices.Equal(got, want) {
		t.Errorf("walk: got %q, want %q", got, want)
	}
	// A walk of one path (fsutil's FollowPaths asks so): that path and what is under it.
	for target, want := range map[string][]string{"static": {"static", "static/app.js", "static/b", "static/b/c.css"}, "/Dockerfile": {"Dockerfile"}, "Dockerfile.dockerignore": nil} {
		var got []string
		if err := cfs.Walk(context.Background(), target, func(p string, _ fs.DirEntry, _ error) error {
			got = append(got, filepath.ToSlash(p))
			return nil
		}); err != nil || !slices.Equal(got, want) {
			t.Errorf("walk %q: got %q (%v), want %q", target, got, err, want)
		}
	}
	got := walkNames(t, cfs, func(p string, d fs.DirEntry) error {
		if filepath.ToSlash(p) == "static/b" {
			return filepath.SkipDir
		}
		return nil
	})
	if want := []string{".dockerignore", "Dockerfile", "home.html", "index.html", "static", "static/app.js", "static/b"}; !slices.Equal(got, want) {
		t.Errorf("walk skipping static/b: got %q, want %q", got, want)
	}
	var link string
	walkNames(t, cfs, func(p string, d fs.DirEntry) error {
		if p == "home.html" {
			fi, _ := d.Info()
			link = fi.Sys().(*fstypes.Stat).Linkname
		}
		return nil
	})
	if link != "index.html" {
		t.Errorf("home.html links to %q, want index.html", link)
	}
	if _, err := cfs.Open("scratch.tmp"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("open an ignored file: %v, want not found", err)
	}
	if _, err := cfs.Open("../outside/other.thing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("open outside the context: %v, want not found", err)
	}
	rc, err := cfs.Open("index.html")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || string(b) != "<h1>web</h1>" {
		t.Errorf("index.html: %q, %v", b, err)
	}
}

// A file that changed since its hash (same size or not, or no longer a file) is not sent:
// the build fails with ErrContextChanged, so an image's tag always names what it was built from.
func TestBuildKitContextChanged(t *testing.T) {
	t.Parallel()
	for name, change := range map[string]func(p string) error{
		"same size": func(p string) error { return os.WriteFile(p, []byte("<h1>WEB</h1>"), 0o644) },
		"longer":    func(p string) error { return os.WriteFile(p, []byte("<h1>web!</h1>"), 0o644) },
		"folder": func(p string) error {
			if err := os.Remove(p); err != nil {
				return err
			}
			return os.Mkdir(p, 0o755)
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			root, a := contextTree(t)
			cfs := openChecked(t, root, a)
			if err := change(filepath.Join(root, "web", "index.html")); err != nil {
				t.Skip(err)
			}
			rc, err := cfs.Open("index.html")
			if err == nil {
				_, err = io.ReadAll(rc)
				rc.Close()
			}
			if !errors.Is(err, ErrContextChanged) {
				t.Errorf("read a changed file: %v, want ErrContextChanged", err)
			}
			if c := cfs.changed.Load(); c == nil || !errors.Is(*c, ErrContextChanged) {
				t.Errorf("the change is not recorded: %v", c)
			}
		})
	}
}

// A Dockerfile from outside the context is served on its own, from what was hashed.
func TestBuildKitOutsideDockerfile(t *testing.T) {
	t.Parallel()
	f := &fileFS{name: outsideDockerfile, data: []byte("FROM scratch\n")}
	if got := walkNames(t, f, nil); !slices.Equal(got, []string{outsideDockerfile}) {
		t.Errorf("walk: %q", got)
	}
	// The frontend asks for the Dockerfile's own ignore file, which is not there.
	if err := f.Walk(context.Background(), outsideDockerfile+".dockerignore", func(p string, _ fs.DirEntry, _ error) error {
		t.Errorf("walking a missing path found %q", p)
		return nil
	}); err != nil {
		t.Error(err)
	}
	rc, err := f.Open(outsideDockerfile)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	if string(b) != "FROM scratch\n" {
		t.Errorf("read %q", b)
	}
}
