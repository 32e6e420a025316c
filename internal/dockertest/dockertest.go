// Package dockertest is test support for the tests that need the real Docker engine (scripts/test
// installs and starts one): the engine itself, and the stand-ins built for it — a k3s node image
// whose ctr records imports, started as the nodes of a k3d cluster the k3d library finds, and
// the k3s stand-in installed in harmony's layout.
package dockertest

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/docker/docker/api/types/build"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/jsonmessage"

	"github.com/NationTech/harmony-agent/bootstrap"
	"github.com/NationTech/harmony-agent/internal/ctrstandin"
	"github.com/NationTech/harmony-agent/internal/releasetest"
)

// Need returns a client of the Docker engine, failing the test in CI (CI=true) when none
// answers and skipping it elsewhere.
func Need(t testing.TB) *client.Client {
	t.Helper()
	c, err := client.NewClientWithOpts(client.FromEnv, client.WithAPIVersionNegotiation())
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err = c.Ping(ctx)
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no Docker engine (scripts/test starts one): %v", err)
		}
		t.Skipf("no Docker engine: %v (scripts/test starts one)", err)
	}
	return c
}

// RandomHex is a short random name part, so parallel tests never share images or containers.
func RandomHex() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// BuildNodeStandin builds the k3s node stand-in program (bootstrap/testdata/k3s-node-standin)
// for Linux and returns it.
func BuildNodeStandin(t testing.TB) []byte {
	t.Helper()
	root, err := releasetest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "k3s")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, "./bootstrap/testdata/k3s-node-standin")
	cmd.Dir, cmd.Env = root, append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build the node stand-in: %v\n%s", err, b)
	}
	bin, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// Cluster is a k3d cluster of node stand-ins: containers labelled as k3d labels a cluster's
// nodes (app=k3d, k3d.cluster, k3d.role), so the k3d library finds them (ClusterGet).
type Cluster struct {
	Name string
	// Nodes are the node containers: the server first, then the agents.
	Nodes []string
}

// NodeFault is how a stand-in node's ctr imports.
type NodeFault int

const (
	// Imports records every import.
	Imports NodeFault = iota
	// RefusesImports fails every import at once, reading nothing: exit 1 with FailMessage.
	RefusesImports
	// HangsOnImport waits forever in every import, reading nothing.
	HangsOnImport
)

// StandinCluster starts a k3d cluster named uniquely with one stand-in node per fault given (the
// first a server, the others agents; one importing server when none is given). The nodes never
// serve: only their ctr is used, as harmony uses a k3d node's. The containers are removed with
// the test.
func StandinCluster(t testing.TB, dc *client.Client, faults ...NodeFault) Cluster {
	t.Helper()
	bin := BuildNodeStandin(t)
	cl := Cluster{Name: "harmony-test-" + RandomHex()}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, data := range map[string]string{
		"Dockerfile":             "FROM scratch\nCOPY rootfs/ /\nLABEL dev.harmony.test-standin=k3s-node\nENTRYPOINT [\"/bin/k3s\"]\n",
		"rootfs/bin/k3s":         string(bin),
		"rootfs/standin/mode":    "never-ready",
		"rootfs/standin/version": "v1.36.4+k3s1",
		// Unique content: parallel tests never share a cached layer another test's cleanup removes
		// ("unknown parent image ID").
		"rootfs/standin/cluster": cl.Name,
	} {
		_ = tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(data)), Typeflag: tar.TypeReg})
		_, _ = tw.Write([]byte(data))
	}
	_ = tw.WriteHeader(&tar.Header{Name: "rootfs/bin/ctr", Linkname: "k3s", Typeflag: tar.TypeSymlink, Mode: 0o777})
	_ = tw.Close()
	ctx := context.Background()
	ref := "harmony-test-node-standin:" + RandomHex()
	// NoCache: the classic builder's cache probe of a FROM scratch step reads every parentless
	// image, and fails ("unable to find image sha256:…") when a parallel test removes one meanwhile.
	resp, err := dc.ImageBuild(ctx, &buf, build.ImageBuildOptions{Tags: []string{ref}, Remove: true, ForceRemove: true, NoCache: true})
	if err != nil {
		t.Fatal(err)
	}
	err = jsonmessage.DisplayJSONMessagesStream(resp.Body, io.Discard, 0, false, nil)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = dc.ImageRemove(context.Background(), ref, image.RemoveOptions{Force: true, PruneChildren: true})
	})
	if len(faults) == 0 {
		faults = []NodeFault{Imports}
	}
	for i, fault := range faults {
		role, n := "server", 0
		if i > 0 {
			role, n = "agent", i-1
		}
		name := fmt.Sprintf("k3d-%s-%s-%d", cl.Name, role, n)
		labels := map[string]string{"app": "k3d", "k3d.cluster": cl.Name, "k3d.role": role}
		c, err := dc.ContainerCreate(ctx, &container.Config{Image: ref, Cmd: []string{"server"}, Labels: labels}, &container.HostConfig{NetworkMode: "none"}, nil, nil, name)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = dc.ContainerRemove(context.Background(), c.ID, container.RemoveOptions{Force: true}) })
		if fault != Imports {
			file, data := "standin/ctr-fail", FailMessage
			if fault == HangsOnImport {
				file, data = "standin/ctr-hang", ""
			}
			var tarball bytes.Buffer
			tw := tar.NewWriter(&tarball)
			_ = tw.WriteHeader(&tar.Header{Name: file, Mode: 0o644, Size: int64(len(data)), Typeflag: tar.TypeReg})
			_, _ = tw.Write([]byte(data))
			_ = tw.Close()
			if err := dc.CopyToContainer(ctx, c.ID, "/", &tarball, container.CopyToContainerOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		if err := dc.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
			t.Fatal(err)
		}
		cl.Nodes = append(cl.Nodes, name)
	}
	return cl
}

// FailMessage is what the ctr of a node that RefusesImports says.
const FailMessage = "failed to ingest the image stream: the node stand-in refuses every import"

// NodeImports is the ctr stand-in's record of the imports into node (none: nil).
func NodeImports(t testing.TB, dc *client.Client, node string) [][]string {
	t.Helper()
	rc, _, err := dc.CopyFromContainer(context.Background(), node, "/var/lib/rancher/k3s/standin-images/imports")
	if err != nil {
		return nil
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	if _, err := tr.Next(); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(tr)
	dir := t.TempDir()
	_ = os.WriteFile(filepath.Join(dir, "imports"), b, 0o644)
	return ctrstandin.Imports(dir)
}

// InstallK3sStandin lays the k3s stand-in out as harmony installs k3s (version dir, current
// link, binary link) under a fresh root, and returns the runtime and the folder where its ctr
// records imports.
func InstallK3sStandin(t testing.TB) (*bootstrap.K3s, string) {
	t.Helper()
	paths := bootstrap.Paths{Root: t.TempDir()}
	standin, err := releasetest.BuildK3sStandin(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	const v = "v1.36.4+k3s1"
	bin, err := os.ReadFile(standin)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{paths.VersionDir(v), paths.BinDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(paths.VersionDir(v), "k3s"), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(v, paths.CurrentLink()); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../var/lib/harmony/k3s/current/k3s", paths.Binary()); err != nil {
		t.Fatal(err)
	}
	return &bootstrap.K3s{Paths: paths, Out: io.Discard}, filepath.Join(filepath.Dir(paths.ContainerdSocket()), "standin-images")
}
