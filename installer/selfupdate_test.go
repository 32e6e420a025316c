//go:build linux || darwin

package installer_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/NationTech/harmony-agent/internal/releasetest"
)

// Two real harmony builds (v1.0.0 and v1.1.0, both trusting one throwaway release key), built
// once for every self-update test.
var builds struct {
	once     sync.Once
	err      error
	key      *releasetest.Key
	old, new []byte
}

func harmonyBuilds(t *testing.T) (*releasetest.Key, []byte, []byte) {
	t.Helper()
	builds.once.Do(func() {
		builds.key = releasetest.NewKey(t)
		dir, err := os.MkdirTemp("", "harmony-selfupdate-builds-")
		if err != nil {
			builds.err = err
			return
		}
		defer os.RemoveAll(dir)
		var wg sync.WaitGroup
		var errOld, errNew error
		var pOld, pNew string
		wg.Add(2)
		go func() {
			defer wg.Done()
			pOld, errOld = releasetest.BuildHarmonyVersion(dir, "1.0.0", builds.key.Public)
		}()
		go func() {
			defer wg.Done()
			pNew, errNew = releasetest.BuildHarmonyVersion(dir, "1.1.0", builds.key.Public)
		}()
		wg.Wait()
		if errOld != nil || errNew != nil {
			builds.err = errOrNil(errOld, errNew)
			return
		}
		builds.old, builds.err = os.ReadFile(pOld)
		if builds.err == nil {
			builds.new, builds.err = os.ReadFile(pNew)
		}
	})
	if builds.err != nil {
		t.Fatal(builds.err)
	}
	return builds.key, builds.old, builds.new
}

func errOrNil(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// world is one user's machine: an installed harmony, its home, and a mirror.
type world struct {
	t    *testing.T
	srv  *releasetest.Server
	dir  string // holds bin/harmony and home/
	exe  string
	env  []string
	orig []byte
}

func newWorld(t *testing.T, installed []byte) *world {
	t.Helper()
	// Not t.TempDir: its parent is private to root, and one test runs harmony as another user.
	dir, err := os.MkdirTemp("", "harmony-selfupdate-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, srv: releasetest.New(t), dir: dir, exe: filepath.Join(dir, "bin", "harmony"), orig: installed}
	if err := os.MkdirAll(filepath.Dir(w.exe), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(w.exe, installed, 0o755); err != nil {
		t.Fatal(err)
	}
	w.env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + filepath.Join(dir, "home"),
		"HARMONY_HOME=" + filepath.Join(dir, "home", "harmony"),
		"HARMONY_MIRROR=" + w.srv.URL,
		// As root (CI), harmony keeps its cache and state under HARMONY_ROOT, not HARMONY_HOME.
		"HARMONY_ROOT=" + filepath.Join(dir, "root"),
		"NO_COLOR=1",
	}
	return w
}

func (w *world) run(args ...string) (string, int) {
	return w.runAs(nil, args...)
}

func (w *world) runAs(cred *syscall.Credential, args ...string) (string, int) {
	w.t.Helper()
	cmd := exec.Command(w.exe, args...)
	cmd.Env = w.env
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return out.String(), ee.ExitCode()
	} else if err != nil {
		w.t.Fatal(err)
	}
	return out.String(), 0
}

// version is what the installed binary reports.
func (w *world) version() string {
	w.t.Helper()
	out, code := w.run("version", "-o", "json")
	if code != 0 {
		w.t.Fatalf("installed harmony does not run (exit %d): %s", code, out)
	}
	var info struct{ Version string }
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		w.t.Fatalf("version -o json: %v: %s", err, out)
	}
	return info.Version
}

// intact checks that the installed binary is the original one, runs, and that nothing was
// left beside it.
func (w *world) intact() {
	w.t.Helper()
	got, err := os.ReadFile(w.exe)
	if err != nil {
		w.t.Fatal(err)
	}
	if !bytes.Equal(got, w.orig) {
		w.t.Fatal("the installed binary changed")
	}
	if v := w.version(); v != "1.0.0" {
		w.t.Fatalf("installed harmony reports %q, want 1.0.0", v)
	}
	w.clean()
}

func (w *world) clean() {
	w.t.Helper()
	entries, err := os.ReadDir(filepath.Dir(w.exe))
	if err != nil {
		w.t.Fatal(err)
	}
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		w.t.Fatalf("the install folder holds %v, want only harmony", names)
	}
}

func TestSelfUpdateReplacesTheBinary(t *testing.T) {
	key, old, new := harmonyBuilds(t)
	w := newWorld(t, old)
	if _, err := w.srv.PublishHarmony(key, "1.1.0", "1.1.0", new); err != nil {
		t.Fatal(err)
	}
	w.srv.SetLatest(releasetest.HarmonyRepo, "v1.1.0")

	out, code := w.run("self-update", "--check")
	if code != 0 || !strings.Contains(out, "harmony v1.1.0 is available (you have v1.0.0): harmony self-update") {
		t.Fatalf("--check: exit %d: %s", code, out)
	}
	w.intact() // --check changes nothing

	out, code = w.run("self-update", "--check", "-o", "json")
	if code != 0 || !strings.Contains(out, `"updateAvailable": true`) || !strings.Contains(out, `"target": "1.1.0"`) {
		t.Fatalf("--check -o json: exit %d: %s", code, out)
	}

	out, code = w.run("self-update")
	if code != 0 || !strings.Contains(out, "harmony updated: v1.0.0 → v1.1.0") {
		t.Fatalf("self-update: exit %d: %s", code, out)
	}
	if v := w.version(); v != "1.1.0" {
		t.Fatalf("after self-update harmony reports %q, want 1.1.0", v)
	}
	got, _ := os.ReadFile(w.exe)
	if !bytes.Equal(got, new) {
		t.Fatal("the installed binary is not the released one")
	}
	w.clean()

	out, code = w.run("self-update")
	if code != 0 || !strings.Contains(out, "harmony v1.1.0 is the newest release: nothing to do") {
		t.Fatalf("second self-update: exit %d: %s", code, out)
	}
}

// Each attack or failure leaves the installed harmony as it was, working, and says why.
func TestSelfUpdateRefuses(t *testing.T) {
	key, old, new := harmonyBuilds(t)
	other := releasetest.NewKey(t)
	for _, tc := range []struct {
		name  string
		setup func(w *world)
		args  []string
		code  int
		want  string
	}{
		{
			name: "tampered archive (arbitrary software)",
			setup: func(w *world) {
				rel, _ := w.srv.PublishHarmony(key, "1.1.0", "1.1.0", new)
				w.srv.Corrupt(releasetest.HarmonyRepo, "v1.1.0", rel.Archive)
			},
			code: 1, want: "checksum mismatch",
		},
		{
			name: "bad signature",
			setup: func(w *world) {
				rel, _ := w.srv.PublishHarmony(key, "1.1.0", "1.1.0", new)
				w.srv.Replace(releasetest.HarmonyRepo, "v1.1.0", "checksums.txt", append(rel.Checksums, "0000000000000000000000000000000000000000000000000000000000000000  extra\n"...))
			},
			code: 1, want: "does not match the file",
		},
		{
			name:  "signed by another key (wrong key)",
			setup: func(w *world) { _, _ = w.srv.PublishHarmony(other, "1.1.0", "1.1.0", new) },
			code:  1, want: "which this binary does not trust",
		},
		{
			name: "older release served as latest (rollback)",
			setup: func(w *world) {
				_, _ = w.srv.PublishHarmony(key, "0.9.0", "0.9.0", old)
				w.srv.SetLatest(releasetest.HarmonyRepo, "v0.9.0")
			},
			code: 1, want: "the newest release on " + "http",
		},
		{
			name:  "another version's signed files under the asked tag (mix-and-match)",
			setup: func(w *world) { _, _ = w.srv.PublishHarmony(key, "1.1.0", "1.0.0", new) },
			args:  []string{"--version", "v1.1.0"},
			code:  1, want: "its signed checksums.txt is for v1.0.0",
		},
		{
			name: "a new binary that does not run",
			setup: func(w *world) {
				_, _ = w.srv.PublishHarmony(key, "1.1.0", "1.1.0", []byte("#!/bin/sh\necho broken >&2\nexit 3\n"))
			},
			code: 1, want: "the new harmony v1.1.0 does not run here",
		},
		{
			name:  "a new binary that reports another version",
			setup: func(w *world) { _, _ = w.srv.PublishHarmony(key, "1.2.0", "1.2.0", new) },
			args:  []string{"--version", "1.2.0"},
			code:  1, want: "expected v1.2.0",
		},
		{
			name: "a downgrade without confirmation",
			setup: func(w *world) {
				_, _ = w.srv.PublishHarmony(key, "0.9.0", "0.9.0", old)
			},
			args: []string{"--version", "v0.9.0"},
			code: 2, want: "add --yes to confirm",
		},
		{
			name: "a binary owned by dpkg",
			setup: func(w *world) {
				_, _ = w.srv.PublishHarmony(key, "1.1.0", "1.1.0", new)
				info := filepath.Join(w.dir, "root", "var", "lib", "dpkg", "info")
				_ = os.MkdirAll(info, 0o755)
				_ = os.WriteFile(filepath.Join(info, "harmony.list"), []byte("/.\n"+w.exe+"\n"), 0o644)
			},
			code: 1, want: "upgrade it with: sudo apt-get install --only-upgrade harmony",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, old)
			w.srv.SetLatest(releasetest.HarmonyRepo, "v1.1.0")
			tc.setup(w)
			out, code := w.run(append([]string{"self-update"}, tc.args...)...)
			if code != tc.code || !strings.Contains(out, tc.want) {
				t.Fatalf("exit %d, want %d with %q:\n%s", code, tc.code, tc.want, out)
			}
			if !strings.Contains(out, "harmony: hint: ") {
				t.Errorf("no hint:\n%s", out)
			}
			w.intact()
		})
	}
}

// A mirror frozen on an old release keeps serving it as the newest: past the time its signed
// checksums.txt vouched for that (or with no such time), self-update says so instead of "nothing
// to do" alone; within it, it says nothing more.
func TestSelfUpdateWarnsOfAFrozenMirror(t *testing.T) {
	key, old, _ := harmonyBuilds(t)
	past := time.Now().Add(-24 * time.Hour)
	for _, tc := range []struct {
		name  string
		until time.Time
		want  string
	}{
		{"current until yesterday", past, "was signed as current only until " + past.UTC().Format(time.DateOnly)},
		{"no time listed", time.Time{}, "does not say until when it is current"},
		{"current for 90 days more", time.Now().Add(90 * 24 * time.Hour), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, old)
			if _, err := w.srv.PublishHarmonyUntil(key, "1.0.0", "1.0.0", tc.until, old); err != nil {
				t.Fatal(err)
			}
			w.srv.SetLatest(releasetest.HarmonyRepo, "v1.0.0")
			for _, args := range [][]string{{"self-update"}, {"self-update", "--check"}} {
				out, code := w.run(args...)
				if code != 0 || !strings.Contains(out, "harmony v1.0.0 is the newest release: nothing to do") {
					t.Fatalf("%v: exit %d: %s", args, code, out)
				}
				if tc.want == "" {
					if strings.Contains(out, "warning:") {
						t.Errorf("%v: a warning for a current release:\n%s", args, out)
					}
				} else if !strings.Contains(out, "warning: the newest release the mirror offers, v1.0.0,") || !strings.Contains(out, tc.want) {
					t.Errorf("%v: want a warning %q:\n%s", args, tc.want, out)
				}
			}
			out, code := w.run("self-update", "--check", "-o", "json")
			if code != 0 || (tc.want != "") != strings.Contains(out, `"stale": "the newest release the mirror offers, v1.0.0,`) {
				t.Errorf("--check -o json: exit %d, stale reported %v: %s", code, tc.want != "", out)
			}
			// A version asked for by name is not "the newest": no warning.
			if out, _ := w.run("self-update", "--check", "--version", "v1.0.0"); strings.Contains(out, "warning:") {
				t.Errorf("--version v1.0.0: a warning for a release asked for by name:\n%s", out)
			}
			w.intact()
		})
	}
}

func TestSelfUpdateDowngradeWithConfirmation(t *testing.T) {
	key, old, new := harmonyBuilds(t)
	w := newWorld(t, new)
	if _, err := w.srv.PublishHarmony(key, "1.0.0", "1.0.0", old); err != nil {
		t.Fatal(err)
	}
	out, code := w.run("self-update", "--version", "v1.0.0", "--yes")
	if code != 0 || !strings.Contains(out, "harmony updated: v1.1.0 → v1.0.0") {
		t.Fatalf("exit %d: %s", code, out)
	}
	if v := w.version(); v != "1.0.0" {
		t.Fatalf("harmony reports %q after going back, want 1.0.0", v)
	}
}

func TestSelfUpdateReadOnlyInstall(t *testing.T) {
	key, old, new := harmonyBuilds(t)
	w := newWorld(t, old)
	if _, err := w.srv.PublishHarmony(key, "1.1.0", "1.1.0", new); err != nil {
		t.Fatal(err)
	}
	w.srv.SetLatest(releasetest.HarmonyRepo, "v1.1.0")
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		// Root writes anywhere: run harmony as an unprivileged user whose home is its own.
		const nobody = 65534
		home := filepath.Join(w.dir, "home")
		if err := os.MkdirAll(home, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(home, nobody, nobody); err != nil {
			t.Fatal(err)
		}
		cred = &syscall.Credential{Uid: nobody, Gid: nobody}
	} else {
		if err := os.Chmod(filepath.Dir(w.exe), 0o555); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(filepath.Dir(w.exe), 0o755) })
	}
	out, code := w.runAs(cred, "self-update")
	if code != 1 || !strings.Contains(out, "is not writable by you") || !strings.Contains(out, "sudo harmony self-update") {
		t.Fatalf("exit %d: %s", code, out)
	}
	w.intact()
}

func TestSelfUpdateByPathOfPackageManager(t *testing.T) {
	key, old, new := harmonyBuilds(t)
	w := newWorld(t, old)
	if _, err := w.srv.PublishHarmony(key, "1.1.0", "1.1.0", new); err != nil {
		t.Fatal(err)
	}
	w.srv.SetLatest(releasetest.HarmonyRepo, "v1.1.0")
	brew := filepath.Join(w.dir, "Cellar", "harmony", "1.0.0", "bin", "harmony")
	if err := os.MkdirAll(filepath.Dir(brew), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(brew, old, 0o755); err != nil {
		t.Fatal(err)
	}
	w.exe = brew
	out, code := w.run("self-update", "--check")
	if code != 0 || !strings.Contains(out, "harmony v1.1.0 is available (you have v1.0.0): brew upgrade harmony") {
		t.Fatalf("--check: exit %d: %s", code, out)
	}
	out, code = w.run("self-update")
	if code != 1 || !strings.Contains(out, "Homebrew installed") || !strings.Contains(out, "brew upgrade harmony") {
		t.Fatalf("exit %d: %s", code, out)
	}
	w.intact()
}

// onTerminal runs the installed harmony with a pseudo-terminal on its standard streams
// (util-linux script), as a user at a shell does, and returns what the terminal showed.
func (w *world) onTerminal(env []string, args ...string) string {
	w.t.Helper()
	if runtime.GOOS != "linux" {
		w.t.Skip("util-linux script runs on Linux")
	}
	cmd := exec.Command("script", "-qec", w.exe+" "+strings.Join(args, " "), "/dev/null")
	cmd.Env = append(append([]string{}, w.env...), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		w.t.Fatalf("script: %v\n%s", err, out)
	}
	return string(out)
}

// The daily notice: shown on a terminal at most once a day, never in CI or when turned off.
func TestUpdateNotice(t *testing.T) {
	key, old, new := harmonyBuilds(t)
	const line = "harmony v1.1.0 is available (you have v1.0.0): harmony self-update"

	w := newWorld(t, old)
	if _, err := w.srv.PublishHarmony(key, "1.1.0", "1.1.0", new); err != nil {
		t.Fatal(err)
	}
	w.srv.SetLatest(releasetest.HarmonyRepo, "v1.1.0")

	for _, env := range [][]string{{"CI=true"}, {"HARMONY_NO_UPDATE_CHECK=1"}} {
		if out := w.onTerminal(env, "version"); strings.Contains(out, "is available") {
			t.Fatalf("notice with %v:\n%s", env, out)
		}
	}
	if n := w.srv.Hits(releasetest.HarmonyRepo, "v1.1.0", "checksums.txt"); n != 0 {
		t.Fatalf("with CI or HARMONY_NO_UPDATE_CHECK set, harmony asked the mirror %d times", n)
	}
	if out, _ := w.run("version"); strings.Contains(out, "is available") {
		t.Fatalf("notice without a terminal:\n%s", out)
	}

	// The check runs in the background; when it does not finish within the command, its result
	// shows on a later run. Either way the notice shows once.
	shown := 0
	for range 3 {
		out := w.onTerminal(nil, "version")
		if !strings.Contains(out, "harmony 1.0.0") {
			t.Fatalf("the command's own output is missing:\n%s", out)
		}
		if strings.Contains(out, line) {
			if i, j := strings.Index(out, "harmony 1.0.0"), strings.Index(out, line); j < i {
				t.Fatalf("the notice comes before the command's output:\n%s", out)
			}
			shown++
		}
	}
	if shown != 1 {
		t.Fatalf("notice shown %d times in three runs on one day, want once", shown)
	}
	if n := w.srv.Hits(releasetest.HarmonyRepo, "v1.1.0", "checksums.txt"); n != 1 {
		t.Fatalf("the mirror was asked %d times in one day, want once", n)
	}
}
