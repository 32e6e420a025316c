// Tests of install.sh (run for real under dash, bash and busybox sh against a local release
// server serving the snapshot release that scripts/test builds) and of install.ps1's contract.
package install_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/NationTech/harmony-agent/installer"
	"github.com/NationTech/harmony-agent/internal/releasetest"
)

type snapshot = releasetest.Snapshot

func needSnapshot(t *testing.T) snapshot { return releasetest.NeedSnapshot(t) }

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
	script, _ := filepath.Abs("install.sh")
	cmd := exec.Command(shell[0], append(append(shell[1:], script), args...)...)
	cmd.Env = env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return run{out.String(), code}
}

func baseEnv(home, mirror, pubkey, path string) []string {
	return []string{
		"HOME=" + home, "PATH=" + path, "SHELL=/bin/sh",
		"HARMONY_MIRROR=" + mirror, "HARMONY_MINISIGN_PUBKEY=" + pubkey,
		"HARMONY_INSTALL_DIR=" + filepath.Join(home, ".local", "bin"),
	}
}

func TestInstallShUnderEveryShell(t *testing.T) {
	snap := needSnapshot(t)
	for _, shell := range [][]string{{"dash"}, {"bash"}, {"busybox", "sh"}} {
		t.Run(shell[0], func(t *testing.T) {
			t.Parallel()
			srv, tag := serve(t, snap)
			home := t.TempDir()
			env := baseEnv(home, srv.URL, snap.Pubkey, os.Getenv("PATH"))
			bin := filepath.Join(home, ".local", "bin", "harmony")

			r := installSh(t, shell, env)
			if r.code != 0 {
				t.Fatalf("install failed (%d):\n%s", r.code, r.out)
			}
			for _, want := range []string{"signature of checksums.txt verified", "installed harmony " + snap.Version, "not on your PATH"} {
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

			// --modify-path adds the directory to the profile once.
			for range 2 {
				if r = installSh(t, shell, env, "--modify-path"); r.code != 0 {
					t.Fatalf("--modify-path failed:\n%s", r.out)
				}
			}
			profile, _ := os.ReadFile(filepath.Join(home, ".profile"))
			if n := strings.Count(string(profile), filepath.Dir(bin)); n != 1 {
				t.Fatalf("profile mentions the install dir %d times, want once:\n%s", n, profile)
			}

			if r = installSh(t, shell, env, "--uninstall"); r.code != 0 || !strings.Contains(r.out, "removed") {
				t.Fatalf("--uninstall failed:\n%s", r.out)
			}
			if _, err := os.Stat(bin); !os.IsNotExist(err) {
				t.Fatal("--uninstall left the binary")
			}
			if profile, _ := os.ReadFile(filepath.Join(home, ".profile")); strings.Contains(string(profile), filepath.Dir(bin)) {
				t.Fatal("--uninstall left the PATH line in the profile")
			}
		})
	}
}

// toolsPath returns a PATH holding only links to the named tools, to run install.sh on a
// machine without minisign or without curl.
func toolsPath(t *testing.T, tools ...string) string {
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
	return dir
}

var baseTools = []string{"sed", "cut", "head", "tr", "mkdir", "mktemp", "cp", "chmod", "mv", "rm", "id", "uname", "dirname", "grep", "cat", "tar", "gzip", "sha256sum"}

func TestInstallShWithoutMinisignOrCurl(t *testing.T) {
	snap := needSnapshot(t)
	tests := []struct {
		name  string
		tools []string
		want  string
	}{
		{"no minisign: checksum only, said plainly", append([]string{"curl"}, baseTools...), "only the SHA-256 checksum was checked"},
		{"no curl: wget", append([]string{"wget", "minisign"}, baseTools...), "signature of checksums.txt verified"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, _ := serve(t, snap)
			home := t.TempDir()
			r := installSh(t, []string{"/usr/bin/dash"}, baseEnv(home, srv.URL, snap.Pubkey, toolsPath(t, tt.tools...)))
			if r.code != 0 || !strings.Contains(r.out, tt.want) {
				t.Fatalf("exit %d, want success saying %q:\n%s", r.code, tt.want, r.out)
			}
			if _, err := os.Stat(filepath.Join(home, ".local", "bin", "harmony")); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestInstallShRefusesAndKeepsThePreviousBinary(t *testing.T) {
	snap := needSnapshot(t)
	archive := "harmony_" + snap.Version + "_linux_amd64.tar.gz"
	tests := []struct {
		name  string
		setup func(srv *releasetest.Server, tag string, env *[]string)
		want  string
	}{
		{"tampered archive", func(srv *releasetest.Server, tag string, _ *[]string) {
			srv.Corrupt(installer.ReleaseRepo, tag, archive)
		}, "checksum mismatch"},
		{"tampered checksums.txt", func(srv *releasetest.Server, tag string, _ *[]string) {
			srv.Corrupt(installer.ReleaseRepo, tag, "checksums.txt")
		}, "does not verify"},
		{"stripped signature", func(srv *releasetest.Server, tag string, _ *[]string) {
			srv.Remove(installer.ReleaseRepo, tag, "checksums.txt.minisig")
		}, "signature checksums.txt.minisig is missing"},
		{"missing asset for the platform", func(srv *releasetest.Server, tag string, _ *[]string) {
			srv.Remove(installer.ReleaseRepo, tag, archive)
		}, "cannot download " + archive},
		{"unreachable mirror", func(_ *releasetest.Server, _ string, env *[]string) {
			*env = append(*env, "HARMONY_MIRROR=http://127.0.0.1:1")
		}, "unreachable mirror"},
		{"unknown version", func(_ *releasetest.Server, _ string, env *[]string) {
			*env = append(*env, "HARMONY_VERSION=v9.9.9")
		}, "cannot download release v9.9.9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv, tag := serve(t, snap)
			home := t.TempDir()
			env := baseEnv(home, srv.URL, snap.Pubkey, os.Getenv("PATH"))
			tt.setup(srv, tag, &env)
			bin := filepath.Join(home, ".local", "bin", "harmony")
			old := []byte("#!/bin/sh\necho 'harmony 0.0.0-old'\n")
			if err := os.MkdirAll(filepath.Dir(bin), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(bin, old, 0o755); err != nil {
				t.Fatal(err)
			}
			r := installSh(t, []string{"dash"}, env)
			if r.code == 0 || !strings.Contains(r.out, "harmony-install: error: ") || !strings.Contains(r.out, tt.want) {
				t.Fatalf("exit %d, want a failure saying %q:\n%s", r.code, tt.want, r.out)
			}
			if got, _ := os.ReadFile(bin); !bytes.Equal(got, old) {
				t.Fatal("the previous binary was changed")
			}
			if left, _ := os.ReadDir(filepath.Dir(bin)); len(left) != 1 {
				t.Fatalf("install dir holds %v, want only the previous binary", left)
			}
		})
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
	for _, v := range env.FindAllString(string(sh), -1) {
		if !bytes.Contains(ps, []byte(v)) {
			t.Errorf("install.ps1 ignores %s, which install.sh honours", v)
		}
	}
	flags := map[string]string{"--version": "-Version", "--modify-path": "-ModifyPath", "--bootstrap": "-Bootstrap", "--uninstall": "-Uninstall"}
	for shFlag, psParam := range flags {
		if !bytes.Contains(sh, []byte(shFlag)) || !bytes.Contains(ps, []byte("$"+strings.TrimPrefix(psParam, "-"))) {
			t.Errorf("flag %s / parameter %s missing from one of the scripts", shFlag, psParam)
		}
	}
	for _, must := range []string{"Get-FileHash -Algorithm SHA256", "checksums.txt.minisig", "releases/latest/download", "[Environment]::SetEnvironmentVariable('Path'"} {
		if !bytes.Contains(ps, []byte(must)) {
			t.Errorf("install.ps1 lacks %q", must)
		}
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
}
