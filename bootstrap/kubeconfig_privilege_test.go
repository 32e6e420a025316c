//go:build unix

package bootstrap_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"k8s.io/client-go/tools/clientcmd"

	"github.com/NationTech/harmony-agent/bootstrap"
	"github.com/NationTech/harmony-agent/internal/hint"
)

// The user harmony acts for in these tests: a uid no account uses, so nothing the test hands
// over can belong to anyone real.
const testUID, testGID = 4242, 4242

const runtimeKubeconfig = `apiVersion: v1
kind: Config
clusters: [{name: default, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: default, user: {token: runtime-admin}}]
contexts: [{name: default, context: {cluster: default, user: default}}]
current-context: default
`

const adminKubeconfig = `apiVersion: v1
kind: Config
clusters: [{name: prod, cluster: {server: "https://prod.example:6443"}}]
users: [{name: prod, user: {token: prod-admin-secret}}]
contexts: [{name: prod, context: {cluster: prod, user: prod}}]
current-context: prod
`

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatal("privilege confusion tests need root (CI runs as root)")
	}
	t.Skip("privilege confusion tests need root")
}

type owned struct {
	uid, gid int
	mode     os.FileMode
}

func ownerOf(t *testing.T, p string) owned {
	t.Helper()
	st, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	sys := st.Sys().(*syscall.Stat_t)
	return owned{int(sys.Uid), int(sys.Gid), st.Mode().Perm()}
}

// fakeMachine is a root directory with a home owned by the test user and a root-only
// /etc/rancher/k3s (the runtime's own kubeconfig and another cluster's admin credentials).
type fakeMachine struct {
	root, home, etc string
	user            *bootstrap.User
}

func newFakeMachine(t *testing.T) *fakeMachine {
	t.Helper()
	root := t.TempDir()
	m := &fakeMachine{root: root, home: filepath.Join(root, "home", "user"), etc: filepath.Join(root, "etc", "rancher", "k3s")}
	must(t, os.MkdirAll(m.home, 0o755))
	must(t, os.Chown(m.home, testUID, testGID))
	must(t, os.MkdirAll(m.etc, 0o700))
	must(t, os.WriteFile(filepath.Join(m.etc, "k3s.yaml"), []byte(runtimeKubeconfig), 0o600))
	must(t, os.WriteFile(filepath.Join(m.root, "etc", "admin.conf"), []byte(adminKubeconfig), 0o600))
	m.user = &bootstrap.User{UID: testUID, GID: testGID, Home: m.home}
	return m
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// asUser creates p (a directory when it ends in "/") owned by the test user.
func (m *fakeMachine) asUser(t *testing.T, p string, mode os.FileMode, content string) string {
	t.Helper()
	full := filepath.Join(m.home, p)
	if strings.HasSuffix(p, "/") {
		must(t, os.Mkdir(full, mode))
	} else {
		must(t, os.WriteFile(full, []byte(content), mode))
	}
	must(t, os.Chown(full, testUID, testGID))
	return full
}

// TestKubeconfigPrivilegeConfusion reproduces each way root, writing the kubeconfig for the user
// who ran sudo, could be led to hand that user something of root's, and checks every one is
// refused with the root-owned files left as they were.
func TestKubeconfigPrivilegeConfusion(t *testing.T) {
	needRoot(t)
	tests := []struct {
		name  string
		setup func(t *testing.T, m *fakeMachine) string // returns the kubeconfig path
		want  string
	}{
		{"KUBECONFIG names the runtime's own file outside the home", func(t *testing.T, m *fakeMachine) string {
			return filepath.Join(m.etc, "k3s.yaml")
		}, "is outside the home of the user who ran sudo"},
		{"~/.kube is a link to a root directory", func(t *testing.T, m *fakeMachine) string {
			must(t, os.Symlink(m.etc, filepath.Join(m.home, ".kube")))
			return filepath.Join(m.home, ".kube", "config")
		}, "is a symbolic link"},
		{"~/.kube/config is a link to another cluster's admin credentials", func(t *testing.T, m *fakeMachine) string {
			m.asUser(t, ".kube/", 0o755, "")
			p := filepath.Join(m.home, ".kube", "config")
			must(t, os.Symlink(filepath.Join(m.root, "etc", "admin.conf"), p))
			return p
		}, "is a symbolic link"},
		{"~/.kube/config is a hard link to root's admin credentials", func(t *testing.T, m *fakeMachine) string {
			m.asUser(t, ".kube/", 0o755, "")
			p := filepath.Join(m.home, ".kube", "config")
			must(t, os.Link(filepath.Join(m.root, "etc", "admin.conf"), p))
			return p
		}, "belongs to uid 0, not to uid 4242"},
		{"a directory in the home that belongs to someone else", func(t *testing.T, m *fakeMachine) string {
			shared := filepath.Join(m.home, "shared")
			must(t, os.Mkdir(shared, 0o777))
			return filepath.Join(shared, "config")
		}, "belongs to uid 0, not to uid 4242"},
		{"a link that leaves the home further down", func(t *testing.T, m *fakeMachine) string {
			m.asUser(t, ".kube/", 0o755, "")
			must(t, os.Symlink(m.etc, filepath.Join(m.home, ".kube", "k3s")))
			return filepath.Join(m.home, ".kube", "k3s", "k3s.yaml")
		}, "is a symbolic link"},
		{"a path that climbs out of the home", func(t *testing.T, m *fakeMachine) string {
			return m.home + "/../../etc/rancher/k3s/k3s.yaml"
		}, "is outside the home"},
		{"a FIFO instead of a file", func(t *testing.T, m *fakeMachine) string {
			m.asUser(t, ".kube/", 0o755, "")
			p := filepath.Join(m.home, ".kube", "config")
			must(t, syscall.Mkfifo(p, 0o600))
			must(t, os.Chown(p, testUID, testGID))
			return p
		}, "is not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := newFakeMachine(t)
			path := tt.setup(t, m)
			before := snapshot(t, m.root)
			k := bootstrap.UserKubeconfig{Path: path, For: m.user}

			_, err := k.Merge([]byte(runtimeKubeconfig), false)
			if !errors.Is(err, bootstrap.ErrKubeconfigRefused) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("merge: got %v, want a refusal saying %q", err, tt.want)
			}
			t.Logf("%v\n  hints: %q", err, hint.Of(err))
			if len(hint.Of(err)) == 0 {
				t.Errorf("the refusal %q gives no hint", err)
			}
			if err := k.Check(); !errors.Is(err, bootstrap.ErrKubeconfigRefused) {
				t.Errorf("check: got %v, want the same refusal", err)
			}
			if err := k.Remove(); !errors.Is(err, bootstrap.ErrKubeconfigRefused) {
				t.Errorf("remove: got %v, want the same refusal", err)
			}
			if after := snapshot(t, m.root); after != before {
				t.Errorf("a refused write changed the machine:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
}

// snapshot lists every path under root with its owner, mode and content (not following links).
func snapshot(t *testing.T, root string) string {
	t.Helper()
	var b strings.Builder
	must(t, filepath.Walk(root, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		o := ownerOf(t, p)
		b.WriteString(strings.TrimPrefix(p, root) + " " + info.Mode().String() + " " + strconv.Itoa(o.uid) + ":" + strconv.Itoa(o.gid))
		if info.Mode().IsRegular() {
			c, _ := os.ReadFile(p)
			b.WriteString(" " + string(c))
		}
		b.WriteString("\n")
		return nil
	}))
	return b.String()
}

// TestKubeconfigKeepsTheUsersOwnerAndMode: written as root for the user, the kubeconfig, its
// backup and the file after uninstall stay the user's, with the user's mode (privilege confusion:
// root must not take the user's file over).
func TestKubeconfigKeepsTheUsersOwnerAndMode(t *testing.T) {
	needRoot(t)
	t.Parallel()
	m := newFakeMachine(t)
	m.asUser(t, ".kube/", 0o750, "")
	path := m.asUser(t, ".kube/config", 0o640, adminKubeconfig)
	must(t, os.Chown(path, testUID, 4343)) // a group of the user's choosing
	k := bootstrap.UserKubeconfig{Path: path, For: m.user}

	if changed, err := k.Merge([]byte(runtimeKubeconfig), false); err != nil || !changed {
		t.Fatalf("merge: %v %v", changed, err)
	}
	want := owned{testUID, 4343, 0o640}
	if got := ownerOf(t, path); got != want {
		t.Errorf("merged kubeconfig: %+v, want %+v", got, want)
	}
	backups, _ := filepath.Glob(path + ".harmony-backup-*")
	if len(backups) != 1 {
		t.Fatalf("backups: %v", backups)
	}
	if got := ownerOf(t, backups[0]); got != want {
		t.Errorf("backup: %+v, want %+v", got, want)
	}
	if b, _ := os.ReadFile(backups[0]); string(b) != adminKubeconfig {
		t.Errorf("backup content: %s", b)
	}
	if got := ownerOf(t, filepath.Dir(path)); got != (owned{testUID, testGID, 0o750}) {
		t.Errorf("~/.kube changed: %+v", got)
	}
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil || cfg.Contexts["harmony"] == nil || cfg.Contexts["prod"] == nil || cfg.CurrentContext != "prod" {
		t.Fatalf("merged kubeconfig: %v %+v", err, cfg)
	}

	if err := k.Remove(); err != nil {
		t.Fatal(err)
	}
	if got := ownerOf(t, path); got != want {
		t.Errorf("after uninstall: %+v, want %+v", got, want)
	}
	if cfg, _ := clientcmd.LoadFromFile(path); cfg.Contexts["harmony"] != nil || cfg.Contexts["prod"] == nil {
		t.Errorf("after uninstall: contexts %v", cfg.Contexts)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".config.tmp-*")); len(left) != 0 {
		t.Errorf("temp files left: %v", left)
	}
}

// TestKubeconfigCreatedForTheUser: a ~/.kube and kubeconfig harmony creates for the user are
// handed to the user; the home itself is not touched.
func TestKubeconfigCreatedForTheUser(t *testing.T) {
	needRoot(t)
	t.Parallel()
	m := newFakeMachine(t)
	must(t, os.Chmod(m.home, 0o711))
	path := filepath.Join(m.home, ".kube", "config")
	k := bootstrap.UserKubeconfig{Path: path, For: m.user}
	if changed, err := k.Merge([]byte(runtimeKubeconfig), false); err != nil || !changed {
		t.Fatalf("merge: %v %v", changed, err)
	}
	for p, want := range map[string]owned{
		path:                          {testUID, testGID, 0o600},
		filepath.Dir(path):            {testUID, testGID, 0o700},
		m.home:                        {testUID, testGID, 0o711},
		filepath.Join(m.root, "home"): {0, 0, 0o755},
	} {
		if got := ownerOf(t, p); got != want {
			t.Errorf("%s: %+v, want %+v", p, got, want)
		}
	}
	if backups, _ := filepath.Glob(path + ".harmony-backup-*"); len(backups) != 0 {
		t.Errorf("backup of a file that did not exist: %v", backups)
	}
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil || cfg.CurrentContext != "harmony" {
		t.Fatalf("new kubeconfig: %v %+v", err, cfg)
	}
	// Written again with nothing to change: no write, no backup.
	if changed, err := k.Merge([]byte(runtimeKubeconfig), false); err != nil || changed {
		t.Fatalf("second merge: %v %v", changed, err)
	}
}

// TestInvokingUser: as root through sudo, the kubeconfig is written for the user who ran sudo
// (SUDO_UID, with the home from the user database, never from the environment), except a path
// in root's own home (after "sudo -i"); run by root directly, or sudo from root, harmony writes
// as itself.
func TestInvokingUser(t *testing.T) {
	needRoot(t)
	t.Setenv("HOME", "/tmp/not-the-home")
	t.Setenv("KUBECONFIG", "")
	t.Setenv(bootstrap.UserKubeconfigEnv, "/nonexistent/.kube/config")
	t.Setenv("SUDO_UID", "65534") // nobody, whose home is /nonexistent
	t.Setenv("SUDO_GID", "65534")
	k, err := bootstrap.NewUserKubeconfig()
	if err != nil {
		t.Fatal(err)
	}
	if k.For == nil || *k.For != (bootstrap.User{UID: 65534, GID: 65534, Home: "/nonexistent"}) {
		t.Fatalf("for %+v", k.For)
	}
	t.Setenv(bootstrap.UserKubeconfigEnv, "/root/.kube/config")
	if k, err := bootstrap.NewUserKubeconfig(); err != nil || k.For != nil {
		t.Errorf("a kubeconfig in root's own home: for %+v, %v", k.For, err)
	}
	t.Setenv("SUDO_UID", "0")
	if u, err := bootstrap.InvokingUser(); u != nil || err != nil {
		t.Errorf("sudo from root: %+v, %v", u, err)
	}
	t.Setenv("SUDO_UID", "")
	if u, err := bootstrap.InvokingUser(); u != nil || err != nil {
		t.Errorf("root directly: %+v, %v", u, err)
	}
	t.Setenv("SUDO_UID", "4242") // in no user database: refused, never guessed
	if _, err := bootstrap.InvokingUser(); err == nil {
		t.Error("an unknown SUDO_UID was accepted")
	}
}

// TestKubeconfigAsItself: harmony writing its own user's kubeconfig (not root for someone else)
// creates it 0600, keeps an existing file's mode on rewrite, backup and removal.
func TestKubeconfigAsItself(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "kube", "config")
	k := bootstrap.UserKubeconfig{Path: path}
	if changed, err := k.Merge([]byte(runtimeKubeconfig), false); err != nil || !changed {
		t.Fatalf("merge: %v %v", changed, err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("new kubeconfig: %v %v", st, err)
	}
	must(t, os.WriteFile(path, []byte(adminKubeconfig), 0o640))
	must(t, os.Chmod(path, 0o640))
	if changed, err := k.Merge([]byte(runtimeKubeconfig), false); err != nil || !changed {
		t.Fatalf("merge: %v %v", changed, err)
	}
	backups, _ := filepath.Glob(path + ".harmony-backup-*")
	if len(backups) != 1 {
		t.Fatalf("backups: %v", backups)
	}
	for _, p := range append(backups, path) {
		if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o640 {
			t.Errorf("%s: %v %v", p, st.Mode(), err)
		}
	}
	must(t, k.Remove())
	cfg, err := clientcmd.LoadFromFile(path)
	if err != nil || cfg.Contexts["harmony"] != nil || cfg.Contexts["prod"] == nil {
		t.Fatalf("after remove: %v %+v", err, cfg)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o640 {
		t.Errorf("after remove: %v", st.Mode())
	}
	// Removing from a kubeconfig that does not exist is nothing to do.
	if err := (bootstrap.UserKubeconfig{Path: filepath.Join(t.TempDir(), "none", "config")}).Remove(); err != nil {
		t.Errorf("remove from a missing file: %v", err)
	}
}
