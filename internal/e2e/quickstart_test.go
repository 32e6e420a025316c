//go:build linux

package e2e_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/NationTech/harmony-agent/internal/releasetest"
	"github.com/NationTech/harmony-agent/internal/testcluster"
	"github.com/NationTech/harmony-agent/launch"
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

// installURL is where the README's quick start fetches install.sh.
const installURL = "https://raw.githubusercontent.com/NationTech/harmony-agent/main/install.sh"

// quickStart returns the lines of the README's quick start: the first sh block under
// "## Quick start", which must fetch install.sh from installURL and run harmony launch.
func quickStart(t *testing.T, readme string) []string {
	t.Helper()
	b, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Quick start\n")
	if !ok {
		t.Fatal("README.md has no \"## Quick start\" section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	_, block, ok := strings.Cut(section, "```sh\n")
	if !ok {
		t.Fatal("the quick start has no sh block")
	}
	block, _, ok = strings.Cut(block, "```")
	if !ok {
		t.Fatal("the quick start's sh block does not end")
	}
	lines := strings.Split(strings.TrimSpace(block), "\n")
	if !strings.Contains(block, installURL+" | sh") || !strings.HasPrefix(lines[len(lines)-1], "harmony launch") {
		t.Fatalf("the quick start no longer installs from %s and ends with harmony launch:\n%s", installURL, block)
	}
	return lines
}

// pathWithout is this process's PATH without the folders that hold a program named name.
func pathWithout(name string) string {
	var kept []string
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			continue
		}
		kept = append(kept, dir)
	}
	return strings.Join(kept, string(filepath.ListSeparator))
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

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

	// A fresh account: a new HOME, and a PATH without its ~/.local/bin (a login shell's
	// ~/.profile adds that folder only when it existed at login) nor any other harmony.
	home := t.TempDir()
	bin := filepath.Join(home, ".local", "bin")
	env := []string{
		"HOME=" + home, "PATH=" + pathWithout("harmony"), "SHELL=/bin/sh", "NO_COLOR=1",
		// the install folder is the default one (~/.local/bin): set because the tests run as
		// root, whose default is /usr/local/bin
		"HARMONY_MIRROR=" + srv.URL, "HARMONY_MINISIGN_PUBKEY=" + snap.Pubkey, "HARMONY_INSTALL_DIR=" + bin,
		"HARMONY_ROOT=" + t.TempDir(), "HARMONY_TEST_APISERVER_KUBECONFIG=" + c.Kubeconfig,
		// No Docker engine: "auto" picks k3d when the engine holds harmony's k3d node, and
		// bootstrap's k3d end-to-end test (another package, run at the same time by go test ./...)
		// creates that node in the machine's engine. Without an engine, auto is k3s, as on a
		// machine where nothing is set up.
		"DOCKER_HOST=unix://" + filepath.Join(home, "no-docker.sock"),
	}
	t.Cleanup(func() { run(t, env, filepath.Join(bin, "harmony"), "runtime", "stop") })

	// 1. The README's quick start, its lines run in order in one shell, in the example's folder
	// (the one-line install reads install.sh from this tree instead of GitHub).
	lines := quickStart(t, filepath.Join(root, "README.md"))
	project := filepath.Join(t.TempDir(), "hello")
	if err := os.CopyFS(project, os.DirFS(filepath.Join(root, "examples", "hello"))); err != nil {
		t.Fatal(err)
	}
	var script strings.Builder
	for i, line := range lines {
		line = strings.ReplaceAll(line, installURL, "file://"+filepath.Join(root, "install.sh"))
		if strings.HasPrefix(line, "cd your-repo") {
			line = "cd " + shellQuote(project) // the README's placeholder: the example's copy
		}
		fmt.Fprintf(&script, "printf '%%s\\n' %s\n%s\nrc=$?\nif [ \"$rc\" != 0 ]; then echo \"quick start: line %d exited $rc\"; exit \"$rc\"; fi\n",
			shellQuote("$ "+line), line, i+1)
	}
	session := exec.Command("sh", "-c", script.String())
	session.Dir, session.Env = project, env
	launchOut, err := session.CombinedOutput()
	if err != nil {
		t.Fatalf("the quick start: %v\n%s", err, launchOut)
	}
	harmony := filepath.Join(bin, "harmony")
	for _, want := range []string{
		"installed harmony " + snap.Version + " to " + harmony,
		"bootstrapping it first", "] node ready", "k3s v1.36.4+k3s1 is ready",
		"launching " + project + ": 3 objects from the manifests/ folder, namespace hello",
		"all 3 objects ready", "namespace hello: 3 created", "REACH IT AT", "http://localhost:",
	} {
		if !strings.Contains(string(launchOut), want) {
			t.Errorf("the quick start's output lacks %q:\n%s", want, launchOut)
		}
	}
	t.Logf("the quick start:\n%s", launchOut)
	deploy, err := c.Client.AppsV1().Deployments("hello").Get(t.Context(), "hello", metav1GetOptions)
	if err != nil || deploy.Status.AvailableReplicas != 2 {
		t.Fatalf("deployment hello not available: %v", err)
	}

	// 2. A dry run after the launch plans no change; status shows each object; then down.
	out, code := run(t, env, harmony, "launch", "--dry-run", project)
	if code != 0 || strings.Count(out, "unchanged ") != 3 || !strings.Contains(out, "dry run: nothing was changed") {
		t.Fatalf("dry run after launch (exit %d):\n%s", code, out)
	}
	out, code = run(t, env, harmony, "status", "-o", "json", project)
	var st launch.Output
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || len(st.Objects) != 3 || !st.Ready {
		t.Fatalf("status -o json (exit %d):\n%s", code, out)
	}
	for _, o := range st.Objects {
		if !o.Ready || o.Namespace != "hello" {
			t.Fatalf("status -o json: %+v", o)
		}
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
