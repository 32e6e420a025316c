//go:build linux

package bootstrap_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/NationTech/harmony-agent/bootstrap"
	"github.com/NationTech/harmony-agent/internal/releasetest"
	"github.com/NationTech/harmony-agent/internal/testcluster"
	"github.com/NationTech/harmony-agent/manifests"
)

var (
	cluster    *testcluster.Cluster
	harmonyBin string
	standin    []byte
	testKey    *releasetest.Key
)

func TestMain(m *testing.M) {
	os.Exit(func() int {
		dir, err := os.MkdirTemp("", "bootstrap-e2e-")
		if err != nil {
			panic(err)
		}
		defer os.RemoveAll(dir)
		if err := buildBinaries(dir); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return testcluster.Main(m, &cluster)
	}())
}

func buildBinaries(dir string) error {
	testKey = releasetest.NewKey(&testing.T{})
	var err error
	if harmonyBin, err = releasetest.BuildHarmony(dir, testKey.Public); err != nil {
		return err
	}
	path, err := releasetest.BuildK3sStandin(dir)
	if err != nil {
		return err
	}
	standin, err = os.ReadFile(path)
	return err
}

// machine is one simulated Linux machine: a HARMONY_ROOT, a user with a kubeconfig that already
// has a context of its own, and a mirror serving the stand-in as k3s.
type machine struct {
	t          testing.TB
	root, home string
	kubeconfig string
	srv        *releasetest.Server
	env        []string
}

const k3sTag = "v1.36.4+k3s1"

func newMachine(t testing.TB, extraEnv ...string) *machine {
	c := testcluster.Need(t, cluster)
	m := &machine{t: t, root: t.TempDir(), home: t.TempDir(), srv: releasetest.New(t)}
	if _, err := m.srv.K3sRelease("v0.0.0-test", testKey.Sign, standin, 2); err != nil {
		t.Fatal(err)
	}
	m.kubeconfig = filepath.Join(m.home, ".kube", "config")
	existing := `apiVersion: v1
kind: Config
clusters: [{name: work, cluster: {server: "https://work.example:6443"}}]
users: [{name: work, user: {token: secret}}]
contexts: [{name: work, context: {cluster: work, user: work}}]
current-context: work
`
	if err := os.MkdirAll(filepath.Dir(m.kubeconfig), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(m.kubeconfig, []byte(existing), 0o600); err != nil {
		t.Fatal(err)
	}
	m.env = append([]string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + m.home, "KUBECONFIG=" + m.kubeconfig,
		"HARMONY_ROOT=" + m.root, "HARMONY_HOME=" + filepath.Join(m.home, "harmony"), "HARMONY_MIRROR=" + m.srv.URL,
		"HARMONY_TEST_APISERVER_KUBECONFIG=" + c.Kubeconfig, "NO_COLOR=1",
	}, extraEnv...)
	t.Cleanup(func() { m.harmony("runtime", "stop") }) // never leave a stand-in running
	return m
}

type result struct {
	stdout, stderr string
	code           int
}

func (m *machine) harmony(args ...string) result {
	m.t.Helper()
	return m.harmonyWithin(0, args...)
}

// harmonyWithin runs harmony and, when d is set, fails the test if it has not ended after d.
func (m *machine) harmonyWithin(d time.Duration, args ...string) result {
	m.t.Helper()
	ctx := context.Background()
	if d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, d)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, harmonyBin, args...)
	cmd.Env = m.env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ctx.Err() != nil {
		m.t.Fatalf("harmony %s was still running after %s\nstdout: %s\nstderr: %s", strings.Join(args, " "), d, out.String(), errb.String())
	}
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		m.t.Fatal(err)
	}
	return result{out.String(), errb.String(), code}
}

func (m *machine) mustHarmony(args ...string) result {
	m.t.Helper()
	r := m.harmony(args...)
	if r.code != 0 {
		m.t.Fatalf("harmony %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

func (m *machine) path(p string) string { return filepath.Join(m.root, p) }

func (m *machine) pid() int {
	b, err := os.ReadFile(m.path("/var/lib/harmony/k3s/k3s.pid"))
	if err != nil {
		return 0
	}
	var pid int
	fmt.Sscan(string(b), &pid)
	return pid
}

func alive(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false
	}
	stat, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	i := bytes.LastIndexByte(stat, ')')
	return i < 0 || i+2 >= len(stat) || stat[i+2] != 'Z'
}

func (m *machine) status() bootstrap.Status {
	var st bootstrap.Status
	r := m.mustHarmony("runtime", "status", "--json")
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		m.t.Fatalf("status --json: %v\n%s", err, r.stdout)
	}
	return st
}

func TestBootstrapInstallsSupervisesAndUninstalls(t *testing.T) {
	t.Parallel()
	m := newMachine(t)

	r := m.mustHarmony("bootstrap")
	for _, phase := range []string{"download", "verify", "install", "network", "service", "start", "API ready", "node ready", "this machine only"} {
		if !strings.Contains(r.stderr, "] "+phase) {
			t.Errorf("progress lacks phase %q:\n%s", phase, r.stderr)
		}
	}
	// Verified install in the versioned layout, with the upstream paths.
	installed, err := os.ReadFile(m.path("/var/lib/harmony/k3s/" + k3sTag + "/k3s"))
	if err != nil || !bytes.Equal(installed, standin) {
		t.Fatalf("installed binary: %v", err)
	}
	if target, _ := os.Readlink(m.path("/var/lib/harmony/k3s/current")); target != k3sTag {
		t.Fatalf("current → %q", target)
	}
	if b, err := os.ReadFile(m.path("/usr/local/bin/k3s")); err != nil || !bytes.Equal(b, standin) {
		t.Fatalf("/usr/local/bin/k3s does not lead to the installed binary: %v", err)
	}
	if target, _ := os.Readlink(m.path("/usr/local/bin/kubectl")); target != "k3s" {
		t.Fatalf("kubectl link → %q", target)
	}
	// Supervised without an init system: a pid file and a live process.
	pid := m.pid()
	if !alive(pid) {
		t.Fatalf("no live k3s process (pid %d)", pid)
	}
	// The kubeconfig keeps the user's context and current-context, and gains "harmony" (0600, backed up).
	cfg, err := clientcmd.LoadFromFile(m.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.CurrentContext != "work" || cfg.Contexts["work"] == nil || cfg.Contexts["harmony"] == nil || cfg.AuthInfos["work"].Token != "secret" {
		t.Fatalf("kubeconfig merge lost something: current %q, contexts %v", cfg.CurrentContext, cfg.Contexts)
	}
	if st, _ := os.Stat(m.kubeconfig); st.Mode().Perm() != 0o600 {
		t.Fatalf("kubeconfig mode %v", st.Mode())
	}
	if backups, _ := filepath.Glob(m.kubeconfig + ".harmony-backup-*"); len(backups) != 1 {
		t.Fatalf("backups: %v", backups)
	}
	st := m.status()
	if !st.Installed || st.Version != k3sTag || !st.Running || !st.APIHealthy || !st.NodeReady {
		t.Fatalf("status after bootstrap: %+v", st)
	}

	// Idempotent: a second bootstrap touches nothing, not even the network.
	hits := m.srv.Hits(manifests.K3sRepo, k3sTag, "k3s") + m.srv.Hits("NationTech/harmony-agent", "v0.0.0-test", manifests.RemoteName)
	r = m.mustHarmony("bootstrap")
	if !strings.Contains(r.stdout, "already installed and healthy") || m.pid() != pid {
		t.Fatalf("second bootstrap was not a no-op: %s %s", r.stdout, r.stderr)
	}
	if now := m.srv.Hits(manifests.K3sRepo, k3sTag, "k3s") + m.srv.Hits("NationTech/harmony-agent", "v0.0.0-test", manifests.RemoteName); now != hits {
		t.Fatalf("second bootstrap made %d requests", now-hits)
	}

	// harmony kubeconfig prints the runtime's config with the harmony context.
	r = m.mustHarmony("kubeconfig")
	if !strings.Contains(r.stdout, "current-context: harmony") {
		t.Fatalf("kubeconfig output:\n%s", r.stdout)
	}

	// stop, start, restart.
	m.mustHarmony("runtime", "stop")
	if alive(pid) || m.pid() != 0 || m.status().Running {
		t.Fatal("runtime stop left k3s running")
	}
	m.mustHarmony("runtime", "start")
	if !alive(m.pid()) || !m.status().APIHealthy {
		t.Fatal("runtime start did not bring k3s back")
	}
	before := m.pid()
	m.mustHarmony("runtime", "restart")
	if after := m.pid(); after == before || !alive(after) || alive(before) {
		t.Fatalf("restart: pid %d → %d", before, after)
	}

	// uninstall removes harmony's k3s and its context, and keeps the user's.
	last := m.pid()
	m.mustHarmony("runtime", "uninstall")
	if alive(last) {
		t.Fatal("uninstall left k3s running")
	}
	for _, p := range []string{"/usr/local/bin/k3s", "/usr/local/bin/kubectl", "/var/lib/harmony/k3s", "/etc/rancher/k3s/harmony-local-only.sh"} {
		if _, err := os.Lstat(m.path(p)); !os.IsNotExist(err) {
			t.Errorf("%s still exists after uninstall", p)
		}
	}
	cfg, _ = clientcmd.LoadFromFile(m.kubeconfig)
	if cfg.Contexts["harmony"] != nil || cfg.Contexts["work"] == nil || cfg.CurrentContext != "work" {
		t.Fatalf("kubeconfig after uninstall: %v current %q", cfg.Contexts, cfg.CurrentContext)
	}
}

func TestBootstrapSwitchesContextWhenNoneIsSet(t *testing.T) {
	t.Parallel()
	m := newMachine(t)
	if err := os.Remove(m.kubeconfig); err != nil {
		t.Fatal(err)
	}
	m.mustHarmony("bootstrap")
	cfg, err := clientcmd.LoadFromFile(m.kubeconfig)
	if err != nil || cfg.CurrentContext != "harmony" {
		t.Fatalf("current context %q, %v", cfg.CurrentContext, err)
	}
}

// On a cgroup v1 host (this CI machine is one; here a fake one), the kubelet of Kubernetes 1.35
// and later refuses to start unless told: bootstrap starts k3s with fail-cgroupv1=false, and
// says so with the way to cgroup v2. A host where a blocking check fails is refused before
// anything is downloaded, with the check's fix; --skip-checks lets the user past it.
func TestBootstrapOnACgroupV1Host(t *testing.T) {
	t.Parallel()
	m := newMachine(t)
	cgroupTree(t, m.root, "1")

	r := m.mustHarmony("bootstrap")
	for _, w := range []string{"cgroup v1", bootstrap.CgroupV1KubeletArg, bootstrap.CgroupV2Fix} {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("bootstrap does not say %q:\n%s", w, r.stderr)
		}
	}
	log, err := os.ReadFile(m.path("/var/log/k3s.log"))
	must(t, err)
	if !strings.Contains(string(log), "args: server ") || !strings.Contains(string(log), " "+bootstrap.CgroupV1KubeletArg) {
		t.Fatalf("k3s was not started with %s:\n%s", bootstrap.CgroupV1KubeletArg, log)
	}
}

func TestBootstrapStopsOnAFailedCheck(t *testing.T) {
	t.Parallel()
	m := newMachine(t)
	cgroupTree(t, m.root, "2")
	// SELinux enforcing without k3s's policy.
	must(t, os.MkdirAll(m.path("/sys/fs/selinux"), 0o755))
	must(t, os.WriteFile(m.path("/sys/fs/selinux/enforce"), []byte("1"), 0o644))

	r := m.harmony("bootstrap")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\n%s", r.code, r.stderr)
	}
	for _, w := range []string{`preflight check "selinux" failed`, "harmony: hint: fix: sudo dnf install -y container-selinux k3s-selinux", "--skip-checks selinux"} {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
		}
	}
	if hits := m.srv.Hits(manifests.K3sRepo, k3sTag, "k3s") + m.srv.Hits("NationTech/harmony-agent", "v0.0.0-test", manifests.RemoteName); hits != 0 {
		t.Errorf("a refused bootstrap made %d requests", hits)
	}
	if _, err := os.Lstat(m.path("/var/lib/harmony/k3s")); !os.IsNotExist(err) {
		t.Error("a refused bootstrap installed something")
	}

	r = m.mustHarmony("bootstrap", "--skip-checks", "selinux")
	if !m.status().NodeReady {
		t.Fatalf("bootstrap --skip-checks selinux: %s", r.stderr)
	}
}

func TestBootstrapFailuresLeaveNothingRunning(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		env   []string
		setup func(m *machine)
		args  []string
		want  []string
	}{
		{
			name:  "tampered artifact",
			setup: func(m *machine) { m.srv.Corrupt(manifests.K3sRepo, k3sTag, "k3s") },
			want:  []string{"checksum mismatch for k3s " + k3sTag, "the file was discarded", "harmony: hint: check HARMONY_MIRROR"},
		},
		{
			name: "stand-in that never becomes ready",
			env:  []string{"HARMONY_TEST_STANDIN_MODE=never-ready"},
			// Long enough for the stand-in to have written its log on a loaded machine (3s was
			// not: the log held only harmony's header line).
			args: []string{"--timeout", "10s"},
			want: []string{"runtime not ready: the API server was not ready after 10s", "address already in use", "likely cause: a port k3s needs"},
		},
		{
			name: "stand-in that exits at once",
			env:  []string{"HARMONY_TEST_STANDIN_MODE=exit"},
			want: []string{"k3s exited right after it started", "failed to find memory cgroup", "likely cause:"},
		},
		{
			name: "a k3s installed by someone else",
			setup: func(m *machine) {
				if err := os.MkdirAll(m.path("/usr/local/bin"), 0o755); err != nil {
					m.t.Fatal(err)
				}
				if err := os.WriteFile(m.path("/usr/local/bin/k3s"), []byte("upstream k3s"), 0o755); err != nil {
					m.t.Fatal(err)
				}
			},
			want: []string{"was not installed by harmony", "harmony never replaces a k3s it did not install"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := newMachine(t, tt.env...)
			if tt.setup != nil {
				tt.setup(m)
			}
			r := m.harmony(append([]string{"bootstrap"}, tt.args...)...)
			if r.code != 1 {
				t.Fatalf("exit %d, want 1\n%s", r.code, r.stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, r.stderr)
				}
			}
			if alive(m.pid()) {
				t.Error("a k3s process was left running")
			}
			if _, err := os.Stat(m.path("/var/lib/harmony/k3s/" + k3sTag + "/k3s")); !os.IsNotExist(err) {
				t.Error("a failed bootstrap left the k3s binary installed")
			}
			cfg, _ := clientcmd.LoadFromFile(m.kubeconfig)
			if cfg == nil || cfg.Contexts["harmony"] != nil || cfg.CurrentContext != "work" {
				t.Error("a failed bootstrap changed the kubeconfig")
			}
		})
	}
}

// Freeze: a mirror without the runtime manifest is not silently ignored. bootstrap warns that it
// has no current manifest (before the fix a 404 was skipped without a word), and runtime status
// says a remote manifest was never seen.
func TestBootstrapFreezeWarnsWhenTheMirrorHasNoManifest(t *testing.T) {
	t.Parallel()
	m := newMachine(t)
	m.srv.Remove(releasetest.HarmonyRepo, "v0.0.0-test", manifests.RemoteName)
	r := m.harmony("bootstrap")
	if !strings.Contains(r.stderr, "warning: no current runtime manifest from "+m.srv.URL) || !strings.Contains(r.stderr, "404") {
		t.Fatalf("bootstrap said nothing about the missing manifest:\n%s", r.stderr)
	}
	if st := m.status(); !st.ManifestLastSeen.IsZero() {
		t.Fatalf("status: a remote manifest was last seen %v", st.ManifestLastSeen)
	}
	if r := m.mustHarmony("runtime", "status"); !strings.Contains(r.stdout, "remote last seen never") {
		t.Fatalf("status does not say the remote manifest was never seen:\n%s", r.stdout)
	}
}

// tree lists every path under dir with its mode, to compare before and after.
func tree(t *testing.T, dir string) map[string]os.FileMode {
	t.Helper()
	out := map[string]os.FileMode{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		out[p] = info.Mode()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// Privilege confusion: harmony runs as root (as after sudo) with the invoking user's
// HARMONY_HOME in its environment. The user planted in their cache a file under the pinned
// digest and a link in place of the partial download. Root uses neither: it downloads into its
// own cache under HARMONY_ROOT, installs the verified bytes, and creates nothing in the user's
// data directory (no state, no lock, no root-owned directory).
func TestBootstrapPrivilegeConfusionRootIgnoresTheUsersHome(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("this test needs root, and CI runs as root")
		}
		t.Skip("needs root: only root ignores HARMONY_HOME")
	}
	t.Parallel()
	m := newMachine(t)
	userHome := filepath.Join(m.home, "harmony")
	digest := releasetest.Digest(standin)
	cache := filepath.Join(userHome, "cache", "sha256")
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cache, digest), []byte("#!/bin/sh\necho planted by the user\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(m.home, "victim")
	if err := os.WriteFile(victim, []byte("a root-owned file the user wants overwritten"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, filepath.Join(cache, digest+".partial")); err != nil {
		t.Fatal(err)
	}
	before := tree(t, userHome)

	m.mustHarmony("bootstrap")
	if b, err := os.ReadFile(m.path("/var/lib/harmony/k3s/" + k3sTag + "/k3s")); err != nil || !bytes.Equal(b, standin) {
		t.Fatalf("root installed something other than the verified k3s (%v)", err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "a root-owned file the user wants overwritten" {
		t.Fatal("root wrote through the planted link")
	}
	after := tree(t, userHome)
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("root changed the user's data directory:\nbefore %v\nafter  %v", before, after)
	}
	if b, err := os.ReadFile(m.path("/var/lib/harmony/cache/sha256/" + digest)); err != nil || !bytes.Equal(b, standin) {
		t.Fatalf("root's own cache lacks the verified k3s: %v", err)
	}
	if _, err := os.Stat(m.path("/var/lib/harmony/state.json")); err != nil {
		t.Fatalf("root's state is not in its own data directory: %v", err)
	}
}

// BenchmarkIdempotentBootstrap measures `harmony bootstrap` on a healthy runtime, process start
// included (the goal is under 0.2 s, with no network).
func BenchmarkIdempotentBootstrap(b *testing.B) {
	m := newMachine(b)
	m.mustHarmony("bootstrap")
	hits := m.srv.Hits(manifests.K3sRepo, k3sTag, "k3s")
	for b.Loop() {
		if r := m.mustHarmony("bootstrap"); !strings.Contains(r.stdout, "already installed and healthy") {
			b.Fatalf("not idempotent: %s", r.stdout)
		}
	}
	if m.srv.Hits(manifests.K3sRepo, k3sTag, "k3s") != hits {
		b.Fatal("an idempotent bootstrap downloaded")
	}
}
