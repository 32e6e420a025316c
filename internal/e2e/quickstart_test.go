//go:build linux

package e2e_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/NationTech/harmony-agent/internal/releasetest"
	"github.com/NationTech/harmony-agent/internal/testcluster"
)

var cluster *testcluster.Cluster

func TestMain(m *testing.M) {
	os.Exit(testcluster.Main(m, &cluster))
}

func run(t *testing.T, env []string, name string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return out.String(), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return out.String(), 0
}

func TestQuickStart(t *testing.T) {
	c := testcluster.Need(t, cluster)
	snap := releasetest.NeedSnapshot(t)
	root, err := releasetest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	// The mirror: the snapshot release, and a runtime manifest (signed with the release key)
	// whose k3s is the test stand-in.
	srv := releasetest.New(t)
	snap.Serve(t, srv)
	standinPath, err := releasetest.BuildK3sStandin(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	standin, _ := os.ReadFile(standinPath)
	if _, err := srv.K3sRelease(snap.Tag(), func(b []byte) []byte { return snap.Sign(t, b) }, standin, 2); err != nil {
		t.Fatal(err)
	}

	home := t.TempDir()
	bin := filepath.Join(home, ".local", "bin")
	env := []string{
		"HOME=" + home, "PATH=" + bin + ":" + os.Getenv("PATH"), "SHELL=/bin/sh", "NO_COLOR=1",
		"HARMONY_MIRROR=" + srv.URL, "HARMONY_MINISIGN_PUBKEY=" + snap.Pubkey, "HARMONY_INSTALL_DIR=" + bin,
		"HARMONY_ROOT=" + t.TempDir(), "HARMONY_TEST_APISERVER_KUBECONFIG=" + c.Kubeconfig,
		// No Docker engine: "auto" picks k3d when the engine holds harmony's k3d node, and
		// bootstrap's k3d end-to-end test (another package, run at the same time by go test ./...)
		// creates that node in the machine's engine. Without an engine, auto is k3s, as on a
		// machine where nothing is set up.
		"DOCKER_HOST=unix://" + filepath.Join(home, "no-docker.sock"),
	}
	t.Cleanup(func() { run(t, env, filepath.Join(bin, "harmony"), "runtime", "stop") })

	// 1. The one-line install.
	out, code := run(t, env, "sh", "-c", "sh < "+filepath.Join(root, "install.sh"))
	if code != 0 || !strings.Contains(out, "installed harmony "+snap.Version) {
		t.Fatalf("install.sh (exit %d):\n%s", code, out)
	}

	// 2. harmony launch in the example, with nothing else set up.
	project := filepath.Join(t.TempDir(), "hello")
	if err := os.CopyFS(project, os.DirFS(filepath.Join(root, "examples", "hello"))); err != nil {
		t.Fatal(err)
	}
	harmony := filepath.Join(bin, "harmony") // as the shell finds it on PATH
	launchCmd := exec.Command(harmony, "launch")
	launchCmd.Dir, launchCmd.Env = project, env
	launchOut, err := launchCmd.CombinedOutput()
	if err != nil {
		t.Fatalf("harmony launch: %v\n%s", err, launchOut)
	}
	for _, want := range []string{
		"bootstrapping it first", "] node ready", "k3s v1.36.4+k3s1 is ready",
		"launching " + project + ": 3 objects from the manifests/ folder, namespace hello",
		"all 3 objects ready", "namespace hello: 3 created", "REACH IT AT", "http://localhost:",
	} {
		if !strings.Contains(string(launchOut), want) {
			t.Errorf("launch output lacks %q:\n%s", want, launchOut)
		}
	}
	t.Logf("harmony launch:\n%s", launchOut)
	deploy, err := c.Client.AppsV1().Deployments("hello").Get(t.Context(), "hello", metav1GetOptions)
	if err != nil || deploy.Status.AvailableReplicas != 2 {
		t.Fatalf("deployment hello not available: %v", err)
	}

	// 3. A dry run after the launch plans no change; status shows each object; then down.
	out, code = run(t, env, harmony, "launch", "--dry-run", project)
	if code != 0 || strings.Count(out, "unchanged ") != 3 || !strings.Contains(out, "dry run: nothing was changed") {
		t.Fatalf("dry run after launch (exit %d):\n%s", code, out)
	}
	out, code = run(t, env, harmony, "status", "-o", "json", project)
	if code != 0 || strings.Count(out, `"status": "Current"`) != 3 {
		t.Fatalf("status -o json (exit %d):\n%s", code, out)
	}
	out, code = run(t, env, harmony, "status", project)
	if code != 0 || !strings.Contains(out, "deployment/hello (namespace hello)") || !strings.Contains(out, "Current") {
		t.Fatalf("status (exit %d):\n%s", code, out)
	}
	out, code = run(t, env, harmony, "down", project)
	if code != 0 || !strings.Contains(out, "deleted namespace hello") {
		t.Fatalf("down (exit %d):\n%s", code, out)
	}
	if _, err := c.Client.AppsV1().Deployments("hello").Get(t.Context(), "hello", metav1GetOptions); err == nil {
		t.Fatal("down left the deployment")
	}
}
