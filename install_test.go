// Tests of install.sh (run for real under dash, bash and busybox sh against a local release
// server serving the snapshot release that scripts/test builds) and of install.ps1's contract.
//
// Threats checked here by name (../shared/DESIGN.md, trust chain): arbitrary software (tampered
// archive or checksums.txt, a signature by another key, a stripped signature), rollback and
// mix-and-match (older signed files served for a requested version or as the latest), no
// verifier on the machine, plain-http transport, endless data, a mirror that stalls or drips.
package install_test

import (
	"bytes"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/NationTech/harmony-agent/installer"
	"github.com/NationTech/harmony-agent/internal/releasetest"
	"github.com/NationTech/harmony-agent/internal/sshkey"
)

type snapshot = releasetest.Snapshot

func needSnapshot(t *testing.T) snapshot { return releasetest.NeedSnapshot(t) }

var shells = [][]string{{"dash"}, {"bash"}, {"busybox", "sh"}}

// serve returns a release server with the snapshot published as its tag and as latest.
func serve(t *testing.T, s snapshot) (*releasetest.Server, string) {
	srv := releasetest.New(t)
	s.Serve(t, srv)
	return srv, s.Tag()
}

type run struct {
	out  string
	code int
}

func installSh(t *testing.T, shell []string, env []string, args ...string) run {
	t.Helper()
	cmd, out := installShCmd(t, shell, env, args...)
	return finished(t, cmd.Run(), out)
}

// installShCmd prepares a run of install.sh under shell, its output going to out.
func installShCmd(t *testing.T, shell []string, env []string, args ...string) (cmd *exec.Cmd, out *bytes.Buffer) {
	t.Helper()
	script, _ := filepath.Abs("install.sh")
	cmd = exec.Command(shell[0], append(append(shell[1:], script), args...)...)
	if !filepath.IsAbs(shell[0]) {
		p, err := exec.LookPath(shell[0])
		if err != nil {
			t.Fatal(err)
		}
		cmd.Path = p
	}
	cmd.Env = env
	out = new(bytes.Buffer)
	cmd.Stdout, cmd.Stderr = out, out
	return cmd, out
}

// finished is the run of a command that ended with err.
func finished(t *testing.T, err error, out *bytes.Buffer) run {
	t.Helper()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return run{out.String(), code}
}

// env is install.sh's environment in a test: the snapshot's test keys replace the release keys.
func env(t *testing.T, snap snapshot, home, mirror, path string) []string {
	_, sshPub := snap.SSH(t)
	return []string{
		"HOME=" + home, "PATH=" + path, "SHELL=/bin/sh",
		"HARMONY_MIRROR=" + mirror, "HARMONY_MINISIGN_PUBKEY=" + snap.Pubkey, "HARMONY_SSH_PUBKEY=" + sshPub,
		"HARMONY_INSTALL_DIR=" + filepath.Join(home, ".local", "bin"),
	}
}

func binPath(home string) string { return filepath.Join(home, ".local", "bin", "harmony") }

// keyIDs returns the key id install.sh must print for each test key: the minisign key id (as in
// test.pub's comment) and the ssh key's SHA-256 fingerprint.
func keyIDs(t *testing.T, snap snapshot) (minisignID, sshFingerprint string) {
	pub, err := os.ReadFile(filepath.Join(filepath.Dir(snap.KeyFile), "test.pub"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`minisign public key ([0-9A-F]{1,16})`).FindSubmatch(pub)
	if m == nil {
		t.Fatalf("no key id in test.pub:\n%s", pub)
	}
	_, sshPub := snap.SSH(t)
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(sshPub))
	if err != nil {
		t.Fatal(err)
	}
	return string(m[1]), ssh.FingerprintSHA256(k)
}

func TestInstallShUnderEveryShell(t *testing.T) {
	snap := needSnapshot(t)
	minisignID, sshFP := keyIDs(t, snap)
	for _, shell := range shells {
		t.Run(shell[0], func(t *testing.T) {
			t.Parallel()
			srv, tag := serve(t, snap)
			home := t.TempDir()
			env := env(t, snap, home, srv.URL, os.Getenv("PATH"))
			bin := binPath(home)

			r := installSh(t, shell, env)
			if r.code != 0 {
				t.Fatalf("install failed (%d):\n%s", r.code, r.out)
			}
			for _, want := range []string{
				"signature of checksums.txt verified with minisign", "installed harmony " + snap.Version,
				"to use harmony in this shell, run: ",
				"HARMONY_MINISIGN_PUBKEY replaces the release key: trusting key " + minisignID,
				"HARMONY_SSH_PUBKEY replaces the release key: trusting key " + sshFP,
			} {
				if !strings.Contains(r.out, want) {
					t.Errorf("output lacks %q:\n%s", want, r.out)
				}
			}
			version, err := exec.Command(bin, "version").Output()
			if err != nil || !strings.Contains(string(version), "harmony "+snap.Version) {
				t.Fatalf("installed binary: %q, %v", version, err)
			}
			before, _ := os.Stat(bin)
			archiveHits := srv.Hits(installer.ReleaseRepo, tag, "harmony_"+snap.Version+"_linux_amd64.tar.gz")

			// A re-run (here naming the version) changes nothing and says so.
			r = installSh(t, shell, append(env, "HARMONY_VERSION="+tag))
			after, _ := os.Stat(bin)
			if r.code != 0 || !strings.Contains(r.out, "already installed") || !after.ModTime().Equal(before.ModTime()) ||
				srv.Hits(installer.ReleaseRepo, tag, "harmony_"+snap.Version+"_linux_amd64.tar.gz") != archiveHits {
				t.Fatalf("re-run was not a no-op (%d):\n%s", r.code, r.out)
			}

			// --modify-path, now the default, is still accepted: the profile reads the env file once.
			for range 2 {
				if r = installSh(t, shell, env, "--modify-path"); r.code != 0 {
					t.Fatalf("--modify-path failed:\n%s", r.out)
				}
			}
			if n := readsEnv(t, filepath.Join(home, ".profile"), "harmony/env\""); n != 1 {
				t.Fatalf(".profile reads the env file %d times, want once", n)
			}

			if r = installSh(t, shell, env, "--uninstall"); r.code != 0 || !strings.Contains(r.out, "removed") {
				t.Fatalf("--uninstall failed:\n%s", r.out)
			}
			if _, err := os.Stat(bin); !os.IsNotExist(err) {
				t.Fatal("--uninstall left the binary")
			}
			if profile, _ := os.ReadFile(filepath.Join(home, ".profile")); strings.Contains(string(profile), "harmony") {
				t.Fatalf("--uninstall left the PATH line in the profile:\n%s", profile)
			}
			if _, err := os.Stat(envFile(home)); !os.IsNotExist(err) {
				t.Fatalf("--uninstall left the env file (%v)", err)
			}
		})
	}
}

// toolsPath returns a PATH holding only links to the named tools (and the stand-ins given as
// name → script), to run install.sh on a machine without minisign, ssh-keygen or curl.
func toolsPath(t *testing.T, tools []string, standins map[string]string) string {
	dir := t.TempDir()
	for _, tool := range tools {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Fatalf("%s: %v", tool, err)
		}
		if err := os.Symlink(p, filepath.Join(dir, tool)); err != nil {
			t.Fatal(err)
		}
	}
	for name, script := range standins {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

var baseTools = []string{"sed", "cut", "head", "tr", "mkdir", "mktemp", "cp", "chmod", "mv", "rm", "id", "uname",
	"dirname", "grep", "cat", "ls", "tar", "gzip", "sha256sum", "wc", "od", "base64", "expr", "sleep", "date"}

func tools(extra ...string) []string { return append(append([]string(nil), baseTools...), extra...) }

// oldSSHKeygen is a stand-in for an OpenSSH older than 8.1, whose ssh-keygen has no -Y.
const oldSSHKeygen = "#!/bin/sh\n# stand-in: ssh-keygen of OpenSSH 7.9, which has no -Y\necho 'ssh-keygen: unknown option -- Y' >&2\necho 'usage: ssh-keygen [-q] [-b bits] [-C comment] [-f output_keyfile]' >&2\nexit 1\n"

// Which verifier install.sh uses, and what it does without one.
func TestInstallShVerifiers(t *testing.T) {
	snap := needSnapshot(t)
	tests := []struct {
		name     string
		tools    []string
		standins map[string]string
		args     []string
		ok       bool
		want     []string
		// busybox, when set, is what busybox sh says instead, failing: it runs its own applets
		// (here its wget, which cannot refuse a redirect to plain http) before PATH's programs.
		busybox []string
	}{
		{"minisign", tools("curl", "minisign"), nil, nil, true,
			[]string{"signature of checksums.txt verified with minisign (trusted comment: harmony " + snap.Version + " checksums)"}, nil},
		{"ssh-keygen, no minisign", tools("curl", "ssh-keygen"), nil, nil, true,
			[]string{"signature of checksums.txt verified with ssh-keygen"}, nil},
		{"no curl: GNU wget", tools("wget", "ssh-keygen"), nil, nil, true,
			[]string{"signature of checksums.txt verified with ssh-keygen"}, []string{"neither curl nor GNU wget is installed"}},
		{"no verifier: refused, says what to install", tools("curl"), nil, nil, false,
			[]string{"cannot check the release signature: neither minisign nor ssh-keygen", "OpenSSH", "--insecure-skip-signature"}, nil},
		{"ssh-keygen older than 8.1: refused", tools("curl"), map[string]string{"ssh-keygen": oldSSHKeygen}, nil, false,
			[]string{"ssh-keygen is too old", "OpenSSH 8.1", "--insecure-skip-signature"}, nil},
		{"no verifier, --insecure-skip-signature: checksum alone, loudly", tools("curl"), nil, []string{"--insecure-skip-signature"}, true,
			[]string{"WARNING: --insecure-skip-signature", "NOT verified"}, nil},
	}
	for _, shell := range shells {
		for _, tt := range tests {
			t.Run(shell[0]+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				srv, _ := serve(t, snap)
				home := t.TempDir()
				ok, wants := tt.ok, tt.want
				if shell[0] == "busybox" && tt.busybox != nil {
					ok, wants = false, tt.busybox
				}
				r := installSh(t, shell, env(t, snap, home, srv.URL, toolsPath(t, tt.tools, tt.standins)), tt.args...)
				if (r.code == 0) != ok {
					t.Fatalf("exit %d, want success=%v:\n%s", r.code, ok, r.out)
				}
				for _, want := range wants {
					if !strings.Contains(r.out, want) {
						t.Errorf("output lacks %q:\n%s", want, r.out)
					}
				}
				_, err := os.Stat(binPath(home))
				if ok && err != nil {
					t.Fatal(err)
				}
				if !ok && !os.IsNotExist(err) {
					t.Fatalf("a refused install left %s (%v)", binPath(home), err)
				}
			})
		}
	}
}

// A mirror frozen on an old release serves it as "latest" for ever: past the time the release's
// signed checksums.txt vouched for being the newest (or without one), install.sh installs it (it
// is genuine) but warns, on both signature paths; a version asked for by name, or a current
// release, gets no warning.
func TestInstallShWarnsOfAFrozenMirror(t *testing.T) {
	snap := needSnapshot(t)
	sums, err := os.ReadFile(filepath.Join(snap.Dist, "checksums.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, l := range strings.SplitAfter(string(sums), "\n") {
		if !strings.Contains(l, "  harmony-current-until-") {
			kept = append(kept, l)
		}
	}
	if len(kept) == len(strings.SplitAfter(string(sums), "\n")) {
		t.Fatalf("the snapshot's checksums.txt lists no harmony-current-until file:\n%s", sums)
	}
	past := time.Now().Add(-48 * time.Hour).UTC()
	untilName := releasetest.UntilAsset(past)
	withPast := strings.Join(kept, "") + string(releasetest.Checksums(map[string][]byte{untilName: nil}))
	for _, tc := range []struct {
		name  string
		sums  string
		tools []string
		args  []string
		want  string
	}{
		{"past its time, minisign", withPast, tools("curl", "minisign"), nil, "was signed as current only until " + strings.TrimPrefix(untilName, "harmony-current-until-") + " (UTC)"},
		{"past its time, ssh-keygen", withPast, tools("curl", "ssh-keygen"), nil, "was signed as current only until " + strings.TrimPrefix(untilName, "harmony-current-until-") + " (UTC)"},
		{"no time listed", strings.Join(kept, ""), tools("curl", "minisign"), nil, "does not say until when it is current"},
		{"a time over a year ahead", strings.Join(kept, "") + string(releasetest.Checksums(map[string][]byte{releasetest.UntilAsset(time.Now().Add(3 * 366 * 24 * time.Hour)): nil})),
			tools("curl", "minisign"), nil, "more than a year ahead"},
		// 370 days on is always next year's date: a check of the year alone would let it pass.
		{"a time just over a year ahead", strings.Join(kept, "") + string(releasetest.Checksums(map[string][]byte{releasetest.UntilAsset(time.Now().Add(370 * 24 * time.Hour)): nil})),
			tools("curl", "minisign"), nil, "more than a year ahead"},
		{"a past time and a later current one (re-signed), a CRLF line", strings.Join(kept, "") + string(releasetest.Checksums(map[string][]byte{untilName: nil})) +
			strings.Replace(string(releasetest.Checksums(map[string][]byte{releasetest.UntilAsset(time.Now().Add(24 * time.Hour)): nil})), "\n", "\r\n", 1),
			tools("curl", "ssh-keygen"), nil, ""},
		{"asked for by name", withPast, tools("curl", "minisign"), []string{"--version", snap.Tag()}, ""},
		{"current (the snapshot as built)", string(sums), tools("curl", "ssh-keygen"), nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, tag := serve(t, snap)
			if tc.sums != string(sums) {
				minisig, sshsig := snap.SignChecksums(t, []byte(tc.sums), snap.Version)
				srv.Replace(installer.ReleaseRepo, tag, "checksums.txt", []byte(tc.sums))
				srv.Replace(installer.ReleaseRepo, tag, "checksums.txt.minisig", minisig)
				srv.Replace(installer.ReleaseRepo, tag, "checksums.txt.sig", sshsig)
			}
			r := installSh(t, shells[0], env(t, snap, t.TempDir(), srv.URL, toolsPath(t, tc.tools, nil)), tc.args...)
			if r.code != 0 {
				t.Fatalf("exit %d:\n%s", r.code, r.out)
			}
			switch {
			case tc.want == "" && strings.Contains(r.out, "WARNING"):
				t.Fatalf("a warning:\n%s", r.out)
			case tc.want != "" && (!strings.Contains(r.out, "WARNING: the newest release this mirror offers, "+snap.Version+",") || !strings.Contains(r.out, tc.want)):
				t.Fatalf("want a warning %q:\n%s", tc.want, r.out)
			}
		})
	}
}

// olderRelease publishes on srv, under tag, a genuinely signed older release: harmony 0.0.0
// (the snapshot's linux/amd64 archive under 0.0.0's name), signed by the snapshot's keys.
func olderRelease(t *testing.T, snap snapshot, srv *releasetest.Server, tag string) {
	t.Helper()
	const version = "0.0.0"
	archive, err := os.ReadFile(filepath.Join(snap.Dist, "harmony_"+snap.Version+"_linux_amd64.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	name := "harmony_" + version + "_linux_amd64.tar.gz"
	sums := releasetest.Checksums(map[string][]byte{name: archive})
	minisig, sshsig := snap.SignChecksums(t, sums, version)
	srv.Add(installer.ReleaseRepo, tag, name, archive)
	srv.Add(installer.ReleaseRepo, tag, "checksums.txt", sums)
	srv.Add(installer.ReleaseRepo, tag, "checksums.txt.minisig", minisig)
	srv.Add(installer.ReleaseRepo, tag, "checksums.txt.sig", sshsig)
}

// hostile fronts srv: requests for asset are answered by h, every other one by srv.
func hostile(t *testing.T, srv *releasetest.Server, asset string, h http.HandlerFunc) string {
	u, _ := url.Parse(srv.URL)
	proxy := httputil.NewSingleHostReverseProxy(u)
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/"+asset) {
			h(w, r)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s.URL
}

// endless streams zeros without a Content-Length (at most 256 MiB, then it gives up).
func endless(w http.ResponseWriter, _ *http.Request) {
	chunk := make([]byte, 32<<10)
	for range 8192 {
		if _, err := w.Write(chunk); err != nil {
			return
		}
		w.(http.Flusher).Flush()
	}
}

// huge announces a 10 GiB body and sends 1 MiB of it.
func huge(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Length", fmt.Sprint(int64(10)<<30))
	_, _ = w.Write(make([]byte, 1<<20))
}

func TestInstallShRefusesAndKeepsThePreviousBinary(t *testing.T) {
	snap := needSnapshot(t)
	archive := "harmony_" + snap.Version + "_linux_amd64.tar.gz"
	otherKey := releasetest.NewKey(t)
	repo := installer.ReleaseRepo
	type setup struct {
		srv  *releasetest.Server
		tag  string
		env  *[]string
		args *[]string
	}
	tests := []struct {
		name string
		// verifier: "minisign", "ssh-keygen" or "" for both
		verifier string
		// installed: "old" (a stand-in older harmony) or "snapshot" (the real snapshot, installed first)
		installed string
		setup     func(t *testing.T, s setup)
		want      string
	}{
		{"arbitrary software: tampered archive", "", "old", func(_ *testing.T, s setup) {
			s.srv.Corrupt(repo, s.tag, archive)
		}, "checksum mismatch"},
		{"arbitrary software: tampered checksums.txt", "", "old", func(_ *testing.T, s setup) {
			s.srv.Corrupt(repo, s.tag, "checksums.txt")
		}, "does not verify"},
		{"arbitrary software: minisign signature stripped", "minisign", "old", func(_ *testing.T, s setup) {
			s.srv.Remove(repo, s.tag, "checksums.txt.minisig")
		}, "signature checksums.txt.minisig is missing"},
		{"arbitrary software: ssh signature stripped", "ssh-keygen", "old", func(_ *testing.T, s setup) {
			s.srv.Remove(repo, s.tag, "checksums.txt.sig")
		}, "signature checksums.txt.sig is missing"},
		{"wrong key: checksums.txt signed by another minisign key", "minisign", "old", func(_ *testing.T, s setup) {
			sums, _ := os.ReadFile(filepath.Join(snap.Dist, "checksums.txt"))
			s.srv.Replace(repo, s.tag, "checksums.txt.minisig", otherKey.Sign(sums))
		}, "does not verify"},
		{"wrong key: checksums.txt signed by another ssh key", "ssh-keygen", "old", func(t *testing.T, s setup) {
			s.srv.Replace(repo, s.tag, "checksums.txt.sig", sshSignWithNewKey(t, filepath.Join(snap.Dist, "checksums.txt")))
		}, "does not verify"},
		{"mix-and-match: trusted comment names another version", "minisign", "old", func(t *testing.T, s setup) {
			sums, _ := os.ReadFile(filepath.Join(snap.Dist, "checksums.txt"))
			minisig, _ := snap.SignChecksums(t, sums, "9.9.9")
			s.srv.Replace(repo, s.tag, "checksums.txt.minisig", minisig)
		}, "trusted comment"},
		{"mix-and-match: signed checksums.txt listing two versions", "", "old", func(t *testing.T, s setup) {
			sums, _ := os.ReadFile(filepath.Join(snap.Dist, "checksums.txt"))
			sums = append(sums, []byte(strings.Repeat("0", 64)+"  harmony_9.9.9_linux_arm64.tar.gz\n")...)
			minisig, sshsig := snap.SignChecksums(t, sums, snap.Version)
			s.srv.Replace(repo, s.tag, "checksums.txt", sums)
			s.srv.Replace(repo, s.tag, "checksums.txt.minisig", minisig)
			s.srv.Replace(repo, s.tag, "checksums.txt.sig", sshsig)
		}, "more than one version"},
		{"mix-and-match: requested version served an older release's signed files", "", "old", func(t *testing.T, s setup) {
			olderRelease(t, snap, s.srv, "v9.9.9")
			*s.args = append(*s.args, "--version", "v9.9.9")
		}, "answered v9.9.9 with the signed files of harmony 0.0.0"},
		{"rollback: latest served as an older signed release", "", "snapshot", func(t *testing.T, s setup) {
			olderRelease(t, snap, s.srv, "v0.0.0")
			s.srv.SetLatest(repo, "v0.0.0")
		}, "refusing to replace the newer harmony " + snap.Version + " with 0.0.0"},
		{"missing asset for the platform", "", "old", func(_ *testing.T, s setup) {
			s.srv.Remove(repo, s.tag, archive)
		}, "cannot download " + archive},
		{"unreachable mirror", "", "old", func(_ *testing.T, s setup) {
			*s.env = append(*s.env, "HARMONY_MIRROR=http://127.0.0.1:1")
		}, "unreachable mirror"},
		{"unknown version", "", "old", func(_ *testing.T, s setup) {
			*s.env = append(*s.env, "HARMONY_VERSION=v9.9.9")
		}, "cannot download release v9.9.9"},
		{"transport: plain-http mirror that is not loopback", "", "old", func(_ *testing.T, s setup) {
			*s.env = append(*s.env, "HARMONY_MIRROR=http://mirror.invalid")
		}, "HARMONY_MIRROR must be an https:// URL"},
		{"transport: plain-http mirror dressed as loopback", "", "old", func(_ *testing.T, s setup) {
			*s.env = append(*s.env, "HARMONY_MIRROR=http://127.0.0.1.mirror.invalid")
		}, "HARMONY_MIRROR must be an https:// URL"},
		{"endless data: checksums.txt without end", "", "old", func(t *testing.T, s setup) {
			*s.env = append(*s.env, "HARMONY_MIRROR="+hostile(t, s.srv, "checksums.txt", endless))
		}, "the server sent more than"},
		{"endless data: archive announcing 10 GiB", "", "old", func(t *testing.T, s setup) {
			*s.env = append(*s.env, "HARMONY_MIRROR="+hostile(t, s.srv, archive, huge))
		}, "the server sent more than"},
	}
	for _, shell := range shells {
		for _, tt := range tests {
			for _, verifier := range []string{"minisign", "ssh-keygen"} {
				if tt.verifier != "" && tt.verifier != verifier {
					continue
				}
				t.Run(shell[0]+"/"+tt.name+"/"+verifier, func(t *testing.T) {
					t.Parallel()
					srv, tag := serve(t, snap)
					home := t.TempDir()
					env := env(t, snap, home, srv.URL, toolsPath(t, tools("curl", verifier), nil))
					bin := binPath(home)
					if tt.installed == "snapshot" {
						if r := installSh(t, shell, env); r.code != 0 {
							t.Fatalf("installing the snapshot first: %s", r.out)
						}
					} else {
						installOld(t, bin)
					}
					before, _ := os.ReadFile(bin)
					var args []string
					tt.setup(t, setup{srv, tag, &env, &args})
					r := installSh(t, shell, env, args...)
					if r.code == 0 || !strings.Contains(r.out, "harmony-install: error: ") || !strings.Contains(r.out, tt.want) {
						t.Fatalf("exit %d, want a failure saying %q:\n%s", r.code, tt.want, r.out)
					}
					keptPrevious(t, bin, before)
				})
			}
		}
	}
}

// installOld puts a stand-in for an older harmony at bin.
func installOld(t *testing.T, bin string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
		t.Fatal(err)
	}
	old := "#!/bin/sh\necho '{\"version\": \"0.0.0-old\"}'\n"
	if err := os.WriteFile(bin, []byte(old), 0o755); err != nil {
		t.Fatal(err)
	}
}

// keptPrevious checks that a failed install left bin as it was (before) and nothing beside it.
func keptPrevious(t *testing.T, bin string, before []byte) {
	t.Helper()
	if got, _ := os.ReadFile(bin); !bytes.Equal(got, before) {
		t.Fatal("the previous binary was changed")
	}
	if left, _ := os.ReadDir(filepath.Dir(bin)); len(left) != 1 {
		t.Fatalf("install dir holds %v, want only the previous binary", left)
	}
}

// stalled answers with the headers of an n-byte body and then sends nothing; dripping sends
// that body one zero byte every 2 s. Either drops the connection once the client has gone or
// at giveUp, so that an install.sh without a bound fails the test instead of hanging it.
func stalled(n int, giveUp time.Time, hits *atomic.Int32) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Length", fmt.Sprint(n))
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-time.After(time.Until(giveUp)):
		}
		panic(http.ErrAbortHandler)
	}
}

func dripping(n int, giveUp time.Time, hits *atomic.Int32) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Length", fmt.Sprint(n))
		w.WriteHeader(http.StatusOK)
		tick := time.NewTicker(2 * time.Second)
		defer tick.Stop()
		for range n {
			select {
			case <-r.Context().Done():
				panic(http.ErrAbortHandler)
			case now := <-tick.C:
				if now.After(giveUp) {
					panic(http.ErrAbortHandler)
				}
			}
			if _, err := w.Write([]byte{0}); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	}
}

// A mirror that accepts the connection and then stalls, or drip-feeds a byte every 2 s, stops
// install.sh within about 30 s (curl by itself has no read timeout; GNU wget's -T is an idle
// timeout that a drip defeats): it says which download stalled and what to do, is not silently
// retried, and keeps the previous binary. The four installs spend their 30 s waiting, so they
// run at once in one test rather than taking four of go test's -parallel slots in turn.
func TestInstallShStopsAStalledDownload(t *testing.T) {
	t.Parallel()
	snap := needSnapshot(t)
	archive := "harmony_" + snap.Version + "_linux_amd64.tar.gz"
	const limit = 60 * time.Second // SPEED_TIME (30 s) and slack
	type install struct {
		name, asset string
		hits        atomic.Int32
		bin         string
		before      []byte
		cmd         *exec.Cmd
		out         *bytes.Buffer
		err         error
		took        time.Duration
	}
	cases := []struct {
		downloader, fault, asset string
		shell                    []string
	}{
		{"curl", "stalls after the headers", archive, []string{"dash"}},
		{"curl", "drips", "checksums.txt", []string{"busybox", "sh"}},
		{"wget", "stalls after the headers", "checksums.txt", []string{"bash"}},
		{"wget", "drips", archive, []string{"dash"}},
	}
	giveUp := time.Now().Add(2 * limit)
	installs := make([]*install, len(cases))
	for i, c := range cases {
		in := &install{name: c.downloader + "/" + c.shell[0] + "/" + c.asset + " " + c.fault, asset: c.asset}
		srv, _ := serve(t, snap)
		size, err := os.Stat(filepath.Join(snap.Dist, c.asset))
		if err != nil {
			t.Fatal(err)
		}
		fault := stalled
		if c.fault == "drips" {
			fault = dripping
		}
		home := t.TempDir()
		mirror := hostile(t, srv, c.asset, fault(int(size.Size()), giveUp, &in.hits))
		in.bin = binPath(home)
		installOld(t, in.bin)
		in.before, _ = os.ReadFile(in.bin)
		in.cmd, in.out = installShCmd(t, c.shell, env(t, snap, home, mirror, toolsPath(t, tools(c.downloader, "ssh-keygen"), nil)))
		installs[i] = in
	}
	var wg sync.WaitGroup
	for _, in := range installs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			in.err = in.cmd.Run()
			in.took = time.Since(start)
		}()
	}
	wg.Wait()
	for _, in := range installs {
		t.Run(in.name, func(t *testing.T) {
			r := finished(t, in.err, in.out)
			t.Logf("stopped after %s", in.took.Round(time.Second))
			if r.code == 0 || in.took > limit {
				t.Fatalf("exit %d after %s, want a failure within %s:\n%s", r.code, in.took.Round(time.Second), limit, r.out)
			}
			for _, want := range []string{
				"harmony-install: error: stopped downloading " + in.asset + ": the server stalled or was too slow",
				"/" + in.asset + ")", "retry", "HARMONY_MIRROR", "nothing was installed",
			} {
				if !strings.Contains(r.out, want) {
					t.Errorf("output lacks %q:\n%s", want, r.out)
				}
			}
			// wget may reconnect once within the 30 s (its own 20 s read timeout): not 3 times.
			if n := in.hits.Load(); n > 2 {
				t.Errorf("the stalled %s was requested %d times", in.asset, n)
			}
			keptPrevious(t, in.bin, in.before)
		})
	}
}

// Asking for an older version by name replaces a newer one, saying so.
func TestInstallShDowngradesOnlyWhenAsked(t *testing.T) {
	snap := needSnapshot(t)
	for _, shell := range shells {
		t.Run(shell[0], func(t *testing.T) {
			t.Parallel()
			srv, _ := serve(t, snap)
			olderRelease(t, snap, srv, "v0.0.0")
			home := t.TempDir()
			env := env(t, snap, home, srv.URL, toolsPath(t, tools("curl", "ssh-keygen"), nil))
			if r := installSh(t, shell, env); r.code != 0 {
				t.Fatalf("install: %s", r.out)
			}
			r := installSh(t, shell, env, "--version", "0.0.0")
			if r.code != 0 || !strings.Contains(r.out, "replacing the newer harmony "+snap.Version+" with 0.0.0, as asked") ||
				!strings.Contains(r.out, "installed harmony 0.0.0") {
				t.Fatalf("explicit downgrade (exit %d):\n%s", r.code, r.out)
			}
		})
	}
}

func sshSignWithNewKey(t *testing.T, file string) []byte {
	dir := t.TempDir()
	key := filepath.Join(dir, "other")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	msg := filepath.Join(dir, "checksums.txt")
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(msg, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ssh-keygen", "-Y", "sign", "-n", sshkey.Namespace, "-f", key, msg).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -Y sign: %v\n%s", err, out)
	}
	sig, err := os.ReadFile(msg + ".sig")
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// An https mirror whose "latest" redirects to plain http is refused by curl and by GNU wget
// (whose --https-only does not cover redirects); the same redirect to https is followed.
func TestInstallShRefusesARedirectToPlainHTTP(t *testing.T) {
	snap := needSnapshot(t)
	for _, downloader := range []string{"curl", "wget"} {
		for _, target := range []string{"https", "http"} {
			t.Run(downloader+"/to "+target, func(t *testing.T) {
				t.Parallel()
				plain, tag := serve(t, snap)
				u, _ := url.Parse(plain.URL)
				proxy := httputil.NewSingleHostReverseProxy(u)
				var tlsURL string
				front := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if repo, asset, ok := strings.Cut(r.URL.Path, "/releases/latest/download/"); ok {
						base := tlsURL
						if target == "http" {
							base = plain.URL
						}
						http.Redirect(w, r, base+repo+"/releases/download/"+tag+"/"+asset, http.StatusFound)
						return
					}
					proxy.ServeHTTP(w, r)
				}))
				t.Cleanup(front.Close)
				tlsURL = front.URL
				dir := t.TempDir()
				ca := filepath.Join(dir, "ca.pem")
				if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: front.Certificate().Raw}), 0o644); err != nil {
					t.Fatal(err)
				}
				wgetrc := filepath.Join(dir, "wgetrc")
				if err := os.WriteFile(wgetrc, []byte("ca_certificate = "+ca+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				home := t.TempDir()
				env := append(env(t, snap, home, front.URL, toolsPath(t, tools(downloader, "ssh-keygen"), nil)),
					"CURL_CA_BUNDLE="+ca, "WGETRC="+wgetrc)
				r := installSh(t, []string{"dash"}, env)
				plainHits := plain.Hits(installer.ReleaseRepo, tag, "checksums.txt")
				if target == "https" {
					if r.code != 0 {
						t.Fatalf("install over https failed (%d):\n%s", r.code, r.out)
					}
					return
				}
				if r.code == 0 || !strings.Contains(r.out, "cannot download release latest") {
					t.Fatalf("exit %d, want a refusal:\n%s", r.code, r.out)
				}
				if plainHits != 0 {
					t.Fatalf("install.sh fetched checksums.txt over plain http (%d requests)", plainHits)
				}
				if _, err := os.Stat(binPath(home)); !os.IsNotExist(err) {
					t.Fatal("something was installed")
				}
			})
		}
	}
}

// install.sh honours a plain-http mirror only on loopback; its downloads are https-only.
func TestInstallShTransportIsHTTPSOnly(t *testing.T) {
	t.Parallel()
	sh, err := os.ReadFile("install.sh")
	if err != nil {
		t.Fatal(err)
	}
	for _, must := range []string{"--proto '=https'", "--proto-redir '=https'", "--tlsv1.2", "--https-only", "--max-filesize"} {
		if !bytes.Contains(sh, []byte(must)) {
			t.Errorf("install.sh lacks %q", must)
		}
	}
}

// install.ps1 cannot run here (no PowerShell): check that it keeps install.sh's contract.
func TestInstallPs1KeepsTheContract(t *testing.T) {
	t.Parallel()
	sh, err := os.ReadFile("install.sh")
	if err != nil {
		t.Fatal(err)
	}
	ps, err := os.ReadFile("install.ps1")
	if err != nil {
		t.Fatal(err)
	}
	env := regexp.MustCompile(`HARMONY_[A-Z_]+`)
	// install.sh only: where its env file goes (install.ps1 sets PATH in the registry instead).
	shOnly := map[string]bool{"HARMONY_HOME": true}
	for _, v := range env.FindAllString(string(sh), -1) {
		if !shOnly[v] && !bytes.Contains(ps, []byte(v)) {
			t.Errorf("install.ps1 ignores %s, which install.sh honours", v)
		}
	}
	flags := map[string]string{"--version": "-Version", "--modify-path": "-ModifyPath", "--no-modify-path": "-NoModifyPath", "--bootstrap": "-Bootstrap",
		"--uninstall": "-Uninstall", "--insecure-skip-signature": "-InsecureSkipSignature"}
	for shFlag, psParam := range flags {
		if !bytes.Contains(sh, []byte(shFlag)) || !bytes.Contains(ps, []byte("$"+strings.TrimPrefix(psParam, "-"))) {
			t.Errorf("flag %s / parameter %s missing from one of the scripts", shFlag, psParam)
		}
	}
	for _, must := range []string{
		"Get-FileHash -Algorithm SHA256", "releases/latest/download",
		// both signatures, version-bound like install.sh
		"checksums.txt.minisig", "checksums.txt.sig", "'-Y', 'verify'", "harmony $targetVersion checksums",
		// a frozen mirror is noticed: the time checksums.txt lists, compared whatever the locale
		"harmony-current-until-([0-9]{8}T[0-9]{6}Z)$'", "[Globalization.CultureInfo]::InvariantCulture", "was signed as current only until", "more than a year ahead",
		"with the signed files of harmony", "refusing to replace the newer harmony",
		// https only, loopback excepted; bounded downloads
		"AllowAutoRedirect = $false", "IsLoopback", "$MaxArchiveBytes", "$MaxSmallBytes",
		// a stalled or dripping server is given up on (HttpClient.Timeout ends at the headers)
		"$in.ReadAsync(", ".Wait([TimeSpan]::FromSeconds($SpeedTime))", "$now -gt $budget", "Stop-Slow $Url $total $Max",
		"the server stalled or was too slow",
		// the user PATH keeps its registry kind (REG_EXPAND_SZ) and its unexpanded entries
		"DoNotExpandEnvironmentNames", "GetValueKind('Path')",
		// PATH is set up by default, -NoModifyPath (or the old -ModifyPath:$false) opts out, and
		// the window that ran the installer finds harmony too
		"[switch]$ModifyPath = $true", "[switch]$NoModifyPath", "-NoModifyPath:$NoModifyPath",
		"if (-not $ModifyPath) { $NoModifyPath = $true }", `$env:Path = "$InstallDir;$env:Path"`,
		"to use harmony in this window, run:",
		// a relative HARMONY_INSTALL_DIR is made absolute before it goes on PATH
		"$InstallDir = $ExecutionContext.SessionState.Path.GetUnresolvedProviderPathFromPSPath($InstallDir)",
	} {
		if !bytes.Contains(ps, []byte(must)) {
			t.Errorf("install.ps1 lacks %q", must)
		}
	}
	// The same speed floor and time budget as install.sh.
	for shVar, psVar := range map[string]string{"SPEED_LIMIT": "SpeedLimit", "SPEED_TIME": "SpeedTime", "MIN_RATE": "MinRate", "ALLOWANCE": "Allowance"} {
		shVal := regexp.MustCompile(`(?m)^` + shVar + `=(\d+)$`).FindSubmatch(sh)
		psVal := regexp.MustCompile(`(?m)^\s*\$` + psVar + ` = (\d+)$`).FindSubmatch(ps)
		if shVal == nil || psVal == nil || !bytes.Equal(shVal[1], psVal[1]) {
			t.Errorf("install.sh %s and install.ps1 $%s differ: %q, %q", shVar, psVar, shVal, psVal)
		}
	}
	// The user PATH is written unless -NoModifyPath: in the else branch of that test, nowhere else.
	setup := regexp.MustCompile(`(?s)elseif \(\$NoModifyPath\) \{[^}]*\} else \{\s*if \(-not \$onUserPath\) \{\s*Set-UserPath \(\(@\(\$entries\) \+ \$InstallDir\)`)
	if !setup.Match(ps) || bytes.Count(ps, []byte("+ $InstallDir)")) != 1 {
		t.Error("install.ps1 does not add the install folder to the user PATH by default (unless -NoModifyPath)")
	}
	if bytes.Contains(ps, []byte("$in.Read(")) {
		t.Error("install.ps1 reads a body with Stream.Read, which waits forever on a stalled server")
	}
	// `irm … | iex` runs the script in the user's session: `exit` would close the window.
	for i, line := range strings.Split(string(ps), "\n") {
		code, _, _ := strings.Cut(line, "#")
		if regexp.MustCompile(`(?i)\bexit\b`).MatchString(code) {
			t.Errorf("install.ps1:%d uses exit (use throw or return): %s", i+1, line)
		}
	}
	if bytes.Contains(ps, []byte("SetEnvironmentVariable('Path'")) {
		t.Error("install.ps1 writes Path with SetEnvironmentVariable, which turns REG_EXPAND_SZ into REG_SZ")
	}

	key := regexp.MustCompile(`RW[A-Za-z0-9+/]{54}`)
	pub, err := os.ReadFile("release/minisign.pub")
	if err != nil {
		t.Fatal(err)
	}
	want := key.Find(pub)
	if got := key.Find(sh); !bytes.Equal(got, want) {
		t.Errorf("install.sh release key %s differs from release/minisign.pub %s", got, want)
	}
	if got := key.Find(ps); !bytes.Equal(got, want) {
		t.Errorf("install.ps1 release key %s differs from release/minisign.pub %s", got, want)
	}
	sshKey := regexp.MustCompile(`ssh-ed25519 AAAA[A-Za-z0-9+/=]+`)
	signers, err := os.ReadFile("release/allowed_signers")
	if err != nil {
		t.Fatal(err)
	}
	wantSSH := sshKey.Find(signers)
	if got := sshKey.Find(sh); wantSSH == nil || !bytes.Equal(got, wantSSH) {
		t.Errorf("install.sh ssh release key %s differs from release/allowed_signers %s", got, wantSSH)
	}
	if got := sshKey.Find(ps); !bytes.Equal(got, wantSSH) {
		t.Errorf("install.ps1 ssh release key %s differs from release/allowed_signers %s", got, wantSSH)
	}
}

// install.sh's version order (semver precedence) under each shell: it decides what counts as
// a downgrade.
func TestInstallShComparesVersions(t *testing.T) {
	t.Parallel()
	cases := []struct{ a, b, want string }{
		{"1.0.0", "1.0.0", "0"}, {"1.0.0", "1.0.1", "-1"}, {"1.2.0", "1.1.9", "1"}, {"1.10.0", "1.9.0", "1"},
		{"1.0.0-alpha", "1.0.0", "-1"}, {"1.0.0-alpha", "1.0.0-alpha.1", "-1"}, {"1.0.0-alpha.1", "1.0.0-alpha.beta", "-1"},
		{"1.0.0-beta.2", "1.0.0-beta.11", "-1"}, {"1.0.0-rc.1", "1.0.0-beta.11", "1"}, {"0.0.1-snapshot", "0.0.0", "1"},
		{"1.0.0+build.1", "1.0.0", "0"}, {"dev", "1.0.0", "?"}, {"1.0", "1.0.0", "?"},
	}
	script, err := os.ReadFile("install.sh")
	if err != nil {
		t.Fatal(err)
	}
	fn := regexp.MustCompile(`(?ms)^semver_cmp\(\) \{.*?^\}`).Find(script)
	if fn == nil {
		t.Fatal("install.sh has no semver_cmp")
	}
	var prog strings.Builder
	prog.Write(fn)
	prog.WriteString("\n")
	for _, c := range cases {
		fmt.Fprintf(&prog, "echo \"$(semver_cmp %q %q)\"\n", c.a, c.b)
	}
	for _, shell := range shells {
		cmd := exec.Command(shell[0], append(shell[1:], "-c", prog.String())...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: %v", shell[0], err)
		}
		got := strings.Fields(string(out))
		for i, c := range cases {
			if i >= len(got) || got[i] != c.want {
				t.Errorf("%s: semver_cmp %s %s = %v, want %s", shell[0], c.a, c.b, got, c.want)
			}
		}
	}
}

// Piped, as the README runs it, --help still helps ($0 is the shell then, not the script), and
// a HARMONY_MIRROR without a scheme is told so with the fix, not as "must be https" (issue 29).
func TestInstallShHelpPipedAndAMirrorWithoutScheme(t *testing.T) {
	t.Parallel()
	script, err := os.ReadFile("install.sh")
	if err != nil {
		t.Fatal(err)
	}
	for _, shell := range shells {
		t.Run(shell[0], func(t *testing.T) {
			t.Parallel()
			cmd := exec.Command(shell[0], append(shell[1:], "-s", "--", "--help")...)
			cmd.Stdin = bytes.NewReader(script)
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "--no-modify-path") || !strings.Contains(string(out), "--version V") {
				t.Fatalf("piped --help: %v\n%s", err, out)
			}
			cmd = exec.Command(shell[0], append(shell[1:], "install.sh")...)
			cmd.Env = append(os.Environ(), "HARMONY_MIRROR=127.0.0.1:8080")
			out, err = cmd.CombinedOutput()
			if err == nil || !strings.Contains(string(out), "HARMONY_MIRROR has no scheme: 127.0.0.1:8080") ||
				!strings.Contains(string(out), "HARMONY_MIRROR=https://127.0.0.1:8080") || strings.Contains(string(out), "must be an https") {
				t.Fatalf("a mirror without a scheme: %v\n%s", err, out)
			}
		})
	}
}

// The command install.sh prints to paste is safe to paste whatever the folder's name holds: it
// is single-quoted, so a name with $(…) is a name, never a command (hostile review).
func TestInstallShPrintsACommandSafeToPaste(t *testing.T) {
	snap := needSnapshot(t)
	srv, _ := serve(t, snap)
	home := t.TempDir()
	marker := filepath.Join(home, "pasted")
	dir := filepath.Join(home, "we$(touch "+marker+")ird", "bin")
	env := append(env(t, snap, home, srv.URL, toolsPath(t, tools("curl", "minisign"), nil)), "HARMONY_INSTALL_DIR="+dir)
	r := installSh(t, shells[0], env, "--no-modify-path")
	if r.code != 0 {
		t.Fatalf("exit %d:\n%s", r.code, r.out)
	}
	_, line, ok := strings.Cut(r.out, "to use harmony in this shell, run: ")
	if !ok {
		t.Fatalf("no command to paste:\n%s", r.out)
	}
	line, _, _ = strings.Cut(line, "\n")
	out, err := exec.Command("sh", "-c", line+"; command -v harmony").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != filepath.Join(dir, "harmony") {
		t.Fatalf("pasting %q: %v\n%s", line, err, out)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatalf("pasting %q ran the command in the folder's name", line)
	}
}
