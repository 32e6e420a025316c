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
	"path/filepath"
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
	files["Dockerfile"] = []byte(dockerfile)
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
	resp, err := dc.ImageBuild(ctx, &buf, types.ImageBuildOptions{Tags: []string{tag}, Remove: true, ForceRemove: true})
	if err != nil {
		t.Fatal(err)
	}
	err = jsonmessage.DisplayJSONMessagesStream(resp.Body, io.Discard, 0, false, nil)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("build %s: %v", tag, err)
	}
	t.Cleanup(func() { _, _ = dc.ImageRemove(ctx, tag, image.RemoveOptions{Force: true, PruneChildren: true}) })
}

func randomName(prefix string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// TestK3dImagesLoadIntoTheNode streams images out of the real Docker engine into the stand-in
// node's ctr (through Docker exec, as into a real k3d node), and reads them back with ls.
func TestK3dImagesLoadIntoTheNode(t *testing.T) {
	t.Parallel()
	dc := dockertest.Need(t)
	node := dockertest.StandinNode(t, dc)
	a, b := randomName("harmony-test-a:harmony-"), randomName("registry.example/team/harmony-test-b:harmony-")
	buildImage(t, dc, a, "FROM scratch\nCOPY hello /hello\n", map[string][]byte{"hello": []byte("a")}, nil)
	buildImage(t, dc, b, "FROM scratch\nCOPY hello /hello\n", map[string][]byte{"hello": []byte("b")}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	store := &bootstrap.K3dImages{Docker: dc, Node: node}

	have, err := store.HasImages(ctx, []string{a, b})
	if err != nil || have[a] || have[b] {
		t.Fatalf("before loading: %v %v", have, err)
	}
	if err := store.LoadImages(ctx, []string{a, b}); err != nil {
		t.Fatal(err)
	}
	imports := dockertest.NodeImports(t, dc, node)
	if len(imports) != 1 || len(imports[0]) != 2 || imports[0][0] != "docker.io/library/"+a || imports[0][1] != b {
		t.Fatalf("the node recorded the imports %q, want one import of both images", imports)
	}
	have, err = store.HasImages(ctx, []string{a, b, "harmony-test-never-loaded:x"})
	if err != nil || !have[a] || !have[b] || have["harmony-test-never-loaded:x"] {
		t.Fatalf("after loading: %v %v", have, err)
	}

	// An image the engine does not have: an error, and nothing imported.
	err = store.LoadImages(ctx, []string{"harmony-test-never-built:x"})
	if !errors.Is(err, bootstrap.ErrImageLoad) {
		t.Fatalf("loading a missing image: %v", err)
	}
	if n := len(dockertest.NodeImports(t, dc, node)); n != 1 {
		t.Fatalf("a failed load recorded an import (%d imports)", n)
	}
	// A node that is not there: an error naming it.
	gone := &bootstrap.K3dImages{Docker: dc, Node: "harmony-test-no-such-node"}
	if _, err := gone.HasImages(ctx, []string{a}); err == nil || !strings.Contains(err.Error(), "harmony-test-no-such-node") {
		t.Fatalf("a missing node: %v", err)
	}
}

// TestK3sImagesLoadThroughThePinnedK3s installs the k3s stand-in as harmony's k3s and loads
// images from the real Docker engine through its `k3s ctr` (HARMONY_ROOT: no sudo).
func TestK3sImagesLoadThroughThePinnedK3s(t *testing.T) {
	t.Parallel()
	dc := dockertest.Need(t)
	m := newMachine(t)
	m.mustHarmony("bootstrap")
	a := randomName("harmony-test-k3s:harmony-")
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
	if imports := ctrstandin.Imports(dir); len(imports) != 1 || len(imports[0]) != 1 || imports[0][0] != "docker.io/library/"+a {
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
