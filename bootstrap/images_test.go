//go:build linux

package bootstrap_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/jsonmessage"

	"github.com/NationTech/harmony-agent/bootstrap"
	"github.com/NationTech/harmony-agent/internal/ctrstandin"
	"github.com/NationTech/harmony-agent/internal/dockertest"
)

// buildImage builds a FROM scratch image holding files under tag, removed when the test ends.
func buildImage(t *testing.T, dc *client.Client, tag, dockerfile string, files map[string][]byte, links map[string]string) {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	// A first step naming the image: parallel tests building the same files never share the
	// classic builder's cached layers, which one test's cleanup could remove under another.
	first, rest, _ := strings.Cut(dockerfile, "\n")
	files["Dockerfile"] = []byte(first + "\nLABEL dev.harmony.test=\"" + tag + "\"\n" + rest)
	for name, data := range files {
		mode := int64(0o644)
		if strings.HasPrefix(name, "rootfs/bin/") {
			mode = 0o755
		}
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: mode, Size: int64(len(data)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write(data)
	}
	for name, target := range links {
		if err := tw.WriteHeader(&tar.Header{Name: name, Linkname: target, Typeflag: tar.TypeSymlink, Mode: 0o777}); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// NoCache: the classic builder's cache probe of a FROM scratch step reads every parentless
	// image, and fails ("unable to find image sha256:…") when a parallel test removes one meanwhile.
	resp, err := dc.ImageBuild(ctx, &buf, types.ImageBuildOptions{Tags: []string{tag}, Remove: true, ForceRemove: true, NoCache: true})
	if err != nil {
		t.Fatal(err)
	}
	err = jsonmessage.DisplayJSONMessagesStream(resp.Body, io.Discard, 0, false, nil)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("build %s: %v", tag, err)
	}
	// Only the tag: never its parents (PruneChildren), which the classic builder's cache may
	// share with an identical build of a test running in parallel, in this package or another
	// ("unable to find image sha256:…" in that build).
	t.Cleanup(func() { _, _ = dc.ImageRemove(ctx, tag, image.RemoveOptions{Force: true}) })
}

func randomName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// TestK3dImagesLoadIntoEveryNode streams images out of the real Docker engine into every node of
// a stand-in k3d cluster (a server and an agent) through the k3d library's import, whose ctr
// records each import, and reads them back with ls.
func TestK3dImagesLoadIntoEveryNode(t *testing.T) {
	t.Parallel()
	dc := dockertest.Need(t)
	cl := dockertest.StandinCluster(t, dc, dockertest.Imports, dockertest.Imports)
	a, b := randomName("harmony-test-a:harmony-"), randomName("harmony.invalid/team/harmony-test-b:harmony-")
	buildImage(t, dc, a, "FROM scratch\nCOPY hello /hello\n", map[string][]byte{"hello": []byte("a")}, nil)
	buildImage(t, dc, b, "FROM scratch\nCOPY hello /hello\n", map[string][]byte{"hello": []byte("b")}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	store := &bootstrap.K3dImages{Docker: dc, Cluster: cl.Name}

	have, err := store.HasImages(ctx, []string{a, b})
	if err != nil || have[a] || have[b] {
		t.Fatalf("before loading: %v %v", have, err)
	}
	if err := store.LoadImages(ctx, []string{a, b}); err != nil {
		t.Fatal(err)
	}
	for _, node := range cl.Nodes {
		imports := dockertest.NodeImports(t, dc, node)
		// docker save names the images in an order of its own
		if len(imports) != 1 || !sameSet(imports[0], []string{"docker.io/library/" + a, b}) {
			t.Fatalf("node %s recorded the imports %q, want one import of both images", node, imports)
		}
	}
	have, err = store.HasImages(ctx, []string{a, b, "harmony-test-never-loaded:x"})
	if err != nil || !have[a] || !have[b] || have["harmony-test-never-loaded:x"] {
		t.Fatalf("after loading: %v %v", have, err)
	}

	// An image the engine does not have, alone or with one it has: an error, nothing imported.
	for _, tags := range [][]string{{"harmony-test-never-built:x"}, {a, "harmony-test-never-built:x"}} {
		err = store.LoadImages(ctx, tags)
		if !errors.Is(err, bootstrap.ErrImageLoad) || !strings.Contains(err.Error(), "harmony-test-never-built:x") {
			t.Fatalf("loading %q: %v", tags, err)
		}
		for _, node := range cl.Nodes {
			if n := len(dockertest.NodeImports(t, dc, node)); n != 1 {
				t.Fatalf("a failed load recorded an import in %s (%d imports)", node, n)
			}
		}
	}
	// A cluster that is not there: an error naming it.
	gone := &bootstrap.K3dImages{Docker: dc, Cluster: "harmony-test-no-such-cluster"}
	if _, err := gone.HasImages(ctx, []string{a}); err == nil || !strings.Contains(err.Error(), "harmony-test-no-such-cluster") {
		t.Fatalf("a missing cluster: %v", err)
	}
	if err := gone.LoadImages(ctx, []string{a}); !errors.Is(err, bootstrap.ErrImageLoad) || !strings.Contains(err.Error(), "harmony-test-no-such-cluster") {
		t.Fatalf("loading into a missing cluster: %v", err)
	}
}

// TestK3dImagesFailingNodeReturns loads images into a stand-in cluster whose agent's ctr refuses
// the import at once, reading nothing: the load returns (well before its deadline: k3d's stream
// into the other node must not wait for a reader that is gone) with an error naming the node and
// quoting ctr, and the server's import is not reported as a success.
func TestK3dImagesFailingNodeReturns(t *testing.T) {
	t.Parallel()
	dc := dockertest.Need(t)
	cl := dockertest.StandinCluster(t, dc, dockertest.Imports, dockertest.RefusesImports)
	a := bigImage(t, dc, "harmony-test-fail:harmony-")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	store := &bootstrap.K3dImages{Docker: dc, Cluster: cl.Name}

	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- store.LoadImages(ctx, []string{a}) }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		t.Fatal("LoadImages did not return before its deadline: the import hangs on the failing node")
	}
	if ctx.Err() != nil {
		t.Fatalf("LoadImages returned only when its deadline passed: %v", err)
	}
	if !errors.Is(err, bootstrap.ErrImageLoad) {
		t.Fatalf("got %v, want ErrImageLoad", err)
	}
	t.Logf("returned after %s: %v", time.Since(start).Round(time.Millisecond), err)
	for _, want := range []string{cl.Nodes[1], dockertest.FailMessage} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q:\n%v", want, err)
		}
	}
	if n := len(dockertest.NodeImports(t, dc, cl.Nodes[1])); n != 0 {
		t.Errorf("the failing node recorded %d imports", n)
	}
}

// TestK3dImagesCancelledImportReturns: an import into a cluster whose agent's ctr waits forever,
// reading nothing (a stuck containerd), returns once its context is cancelled (Ctrl-C), with
// ErrImageLoad and the cancellation, rather than waiting on the node.
func TestK3dImagesCancelledImportReturns(t *testing.T) {
	t.Parallel()
	dc := dockertest.Need(t)
	cl := dockertest.StandinCluster(t, dc, dockertest.Imports, dockertest.HangsOnImport)
	a := bigImage(t, dc, "harmony-test-hang:harmony-")
	guard, stop := context.WithTimeout(context.Background(), 90*time.Second)
	defer stop()
	ctx, cancel := context.WithCancel(guard)
	defer cancel()
	store := &bootstrap.K3dImages{Docker: dc, Cluster: cl.Name}

	done := make(chan error, 1)
	go func() { done <- store.LoadImages(ctx, []string{a}) }()
	// Cancel once the stuck node runs the import.
	for {
		c, err := dc.ContainerInspect(guard, cl.Nodes[1])
		if err != nil {
			t.Fatal(err)
		}
		if len(c.ExecIDs) > 0 {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("LoadImages returned before the stuck node ran the import: %v", err)
		case <-guard.Done():
			t.Fatal("the stuck node never ran the import")
		case <-time.After(20 * time.Millisecond):
		}
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, bootstrap.ErrImageLoad) || !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want ErrImageLoad and context.Canceled", err)
		}
		t.Logf("returned: %v", err)
	case <-guard.Done():
		t.Fatal("LoadImages did not return after its context was cancelled: the import waits on the stuck node")
	}
}

// TestK3sImagesLoadThroughThePinnedK3s installs the k3s stand-in as harmony's k3s and loads
// images from the real Docker engine through its `k3s ctr` (HARMONY_ROOT: no sudo).
func TestK3sImagesLoadThroughThePinnedK3s(t *testing.T) {
	t.Parallel()
	dc := dockertest.Need(t)
	m := newMachine(t)
	m.mustHarmony("bootstrap")
	a := randomName("harmony.invalid/harmony-test-k3s:harmony-") // launch's shape of name
	buildImage(t, dc, a, "FROM scratch\nCOPY hello /hello\n", map[string][]byte{"hello": []byte("k3s")}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	k := &bootstrap.K3s{Paths: bootstrap.Paths{Root: m.root}, Out: io.Discard}
	store, err := k.Images(ctx, dc)
	if err != nil {
		t.Fatal(err)
	}
	if have, err := store.HasImages(ctx, []string{a}); err != nil || have[a] {
		t.Fatalf("before loading: %v %v", have, err)
	}
	if err := store.LoadImages(ctx, []string{a}); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(filepath.Dir(k.Paths.ContainerdSocket()), "standin-images")
	if imports := ctrstandin.Imports(dir); len(imports) != 1 || len(imports[0]) != 1 || imports[0][0] != a {
		t.Fatalf("the k3s stand-in recorded the imports %q", imports)
	}
	if have, err := store.HasImages(ctx, []string{a}); err != nil || !have[a] {
		t.Fatalf("after loading: %v %v", have, err)
	}

	// Not installed: a clear error before anything runs.
	none := &bootstrap.K3s{Paths: bootstrap.Paths{Root: t.TempDir()}}
	if _, err := none.Images(ctx, dc); !errors.Is(err, bootstrap.ErrNotInstalled) {
		t.Fatalf("k3s not installed: %v", err)
	}
}

// sameSet says whether got and want hold the same strings, in any order.
func sameSet(got, want []string) bool {
	g, w := slices.Clone(got), slices.Clone(want)
	slices.Sort(g)
	slices.Sort(w)
	return slices.Equal(g, w)
}

// plantingEngine is the real engine, with a file named like an image dropped into the current
// folder when harmony asks for the engine's image list: a local user who can write the current
// folder (a shared /tmp) winning the race between harmony's look at it and k3d's.
type plantingEngine struct {
	client.APIClient
	name string
	data []byte
}

func (p *plantingEngine) ImageList(ctx context.Context, o image.ListOptions) ([]image.Summary, error) {
	if err := os.WriteFile(p.name, p.data, 0o644); err != nil {
		return nil, err
	}
	return p.APIClient.ImageList(ctx, o)
}

// TestK3dImagesNeverReadAFileNamedLikeTheImage: k3d imports a name that is a file of the current
// folder as an image archive. A file named like the image, in the current folder before the
// import or dropped there while it runs, is never read: every node gets the engine's image, never
// the file's. The image is named as launch names it, harmony.invalid/…: the file is in a folder
// of that name.
func TestK3dImagesNeverReadAFileNamedLikeTheImage(t *testing.T) {
	dc := dockertest.Need(t)
	cl := dockertest.StandinCluster(t, dc, dockertest.Imports)
	a, evil := randomName("harmony.invalid/harmony-test-a:harmony-"), randomName("harmony-test-planted:x")
	buildImage(t, dc, a, "FROM scratch\nCOPY hello /hello\n", map[string][]byte{"hello": []byte("a")}, nil)
	buildImage(t, dc, evil, "FROM scratch\nCOPY hello /hello\n", map[string][]byte{"hello": []byte("evil")}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	rc, err := dc.ImageSave(ctx, []string{evil})
	if err != nil {
		t.Fatal(err)
	}
	archive, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Chdir(t.TempDir())
	if err := os.MkdirAll(filepath.Dir(a), 0o755); err != nil {
		t.Fatal(err)
	}
	node := cl.Nodes[0]
	for i, engine := range []client.APIClient{dc, &plantingEngine{APIClient: dc, name: a, data: archive}} {
		_ = os.Remove(a)
		if i == 0 {
			if err := os.WriteFile(a, archive, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		store := &bootstrap.K3dImages{Docker: engine, Cluster: cl.Name}
		err := store.LoadImages(ctx, []string{a})
		imports := dockertest.NodeImports(t, dc, node)
		for _, imp := range imports {
			if slices.Contains(imp, "docker.io/library/"+evil) {
				t.Fatalf("case %d: the node imported the file named like the image: %q", i, imports)
			}
		}
		if err != nil || len(imports) != i+1 || !slices.Equal(imports[i], []string{a}) {
			t.Fatalf("case %d: %v; the node recorded the imports %q, want the engine's %s", i, err, imports, a)
		}
	}
}

// bigImage builds an image named from prefix whose one layer is 8 MiB of random bytes: big
// enough that its stream cannot fit in the pipes' and sockets' buffers.
func bigImage(t *testing.T, dc *client.Client, prefix string) string {
	t.Helper()
	name := randomName(prefix)
	big := make([]byte, 8<<20)
	_, _ = rand.Read(big)
	buildImage(t, dc, name, "FROM scratch\nCOPY big /big\n", map[string][]byte{"big": big}, nil)
	return name
}
