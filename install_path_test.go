// Tests of how install.sh puts the install folder on PATH: by default, for new shells through the
// shells' profile files (which read one env file), and for the current shell through the one
// command it prints; never when told not to, nor when the folder is on PATH already.
package install_test

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// envFile is where install.sh writes the env file for a HOME without HARMONY_HOME or
// XDG_DATA_HOME on Linux: harmony's data folder.
func envFile(home string) string { return filepath.Join(home, ".local", "share", "harmony", "env") }

// printedCommand is the command install.sh printed for the current shell ("" when none).
func printedCommand(out string) string {
	m := regexp.MustCompile(`(?m)to use harmony in this shell, run: (.+)$`).FindStringSubmatch(out)
	if m == nil {
		return ""
	}
	return m[1]
}

// homeFiles returns every file under home but installed binaries (named harmony), by path, with
// its content (a symbolic link as "-> target").
func homeFiles(t *testing.T, home string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(home, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(home, p)
		switch {
		case d.IsDir():
			return nil
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			files[rel] = "-> " + target
			return err
		case d.Name() == "harmony": // the binary
			return nil
		}
		b, err := os.ReadFile(p)
		files[rel] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// readsEnv counts the lines of file that read harmony's env file (env or, for fish, env.fish).
func readsEnv(t *testing.T, file, env string) int {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v", err)
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, env) {
			n++
		}
	}
	return n
}

// findsHarmony runs script in a new shell (with PATH path) and returns what `command -v harmony`
// then says.
func findsHarmony(t *testing.T, shell []string, home, path, script string) string {
	t.Helper()
	cmd := exec.Command(shell[0], append(shell[1:], "-c", script+"\ncommand -v harmony")...)
	cmd.Env = []string{"HOME=" + home, "PATH=" + path}
	out, _ := cmd.CombinedOutput()
	return strings.TrimSpace(string(out))
}

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// pathCase is a case of TestInstallShSetsUpPath.
type pathCase struct {
	name string
	// home's files before the install
	seed map[string]string
	// more environment, and stand-ins for shells installed on the machine
	env      []string
	standins map[string]string
	// the files that must read the env file (relative to home) and those that must not exist
	want, absent []string
}

// A fresh HOME whose PATH lacks the install folder: the profiles of the shells on the machine
// read the env file (once, even after a second install, the user's lines kept), the command
// printed makes a new shell find harmony, and --uninstall takes it all back.
func TestInstallShSetsUpPath(t *testing.T) {
	snap := needSnapshot(t)
	standin := "#!/bin/sh\n# stand-in: a shell installed on the machine (install.sh only looks for it)\nexit 0\n"
	tests := []pathCase{
		{"sh and bash: .profile created, an existing .bashrc", map[string]string{".bashrc": "# the user's bashrc\nalias ll='ls -l'"},
			nil, nil, []string{".profile", ".bashrc"}, []string{".bash_profile", ".bash_login", ".zshenv", ".config"}},
		{"bash with .bash_profile and .bash_login, no .bashrc", map[string]string{
			".profile": "# the user's profile\nexport EDITOR=vi\n", ".bash_profile": ". ~/.profile\n", ".bash_login": "# login\n"},
			nil, nil, []string{".profile", ".bash_profile", ".bash_login"}, []string{".bashrc", ".zshenv"}},
		{"zsh installed", nil, nil, map[string]string{"zsh": standin},
			[]string{".profile", ".zshenv"}, []string{".bashrc", ".config"}},
		{"fish installed", nil, nil, map[string]string{"fish": standin},
			[]string{".profile", ".config/fish/conf.d/harmony.fish"}, []string{".zshenv"}},
	}
	// Root's setup stays in root's HOME (plain su keeps the user's ZDOTDIR and XDG_CONFIG_HOME).
	if os.Geteuid() == 0 {
		tests = append(tests, []pathCase{
			{"zsh with ZDOTDIR, as root", nil, []string{"ZDOTDIR={zdot}"}, map[string]string{"zsh": standin},
				[]string{".profile", ".zshenv"}, []string{".bashrc", "zdot"}},
			{"fish, XDG_CONFIG_HOME, as root", nil, []string{"XDG_CONFIG_HOME={cfg}"}, map[string]string{"fish": standin},
				[]string{".profile", ".config/fish/conf.d/harmony.fish"}, []string{"cfg"}},
		}...)
	} else {
		tests = append(tests, []pathCase{
			{"zsh with ZDOTDIR", nil, []string{"ZDOTDIR={zdot}"}, map[string]string{"zsh": standin},
				[]string{".profile", ".zshenv", "zdot/.zshenv"}, []string{".bashrc"}},
			{"fish, XDG_CONFIG_HOME", nil, []string{"XDG_CONFIG_HOME={cfg}"}, map[string]string{"fish": standin},
				[]string{".profile", "cfg/fish/conf.d/harmony.fish"}, []string{".config"}},
		}...)
	}
	for _, shell := range shells {
		for _, tt := range tests {
			t.Run(shell[0]+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				srv, _ := serve(t, snap)
				home := t.TempDir()
				writeFiles(t, home, tt.seed)
				path := toolsPath(t, tools("curl", "minisign"), tt.standins)
				env := env(t, snap, home, srv.URL, path)
				for _, e := range tt.env {
					e = strings.NewReplacer("{zdot}", filepath.Join(home, "zdot"), "{cfg}", filepath.Join(home, "cfg")).Replace(e)
					env = append(env, e)
				}

				r := installSh(t, shell, env)
				if r.code != 0 {
					t.Fatalf("install failed (%d):\n%s", r.code, r.out)
				}
				for _, f := range tt.want {
					envName := "harmony/env\""
					if strings.HasSuffix(f, ".fish") {
						envName = "harmony/env.fish\""
					}
					if n := readsEnv(t, filepath.Join(home, f), envName); n != 1 {
						t.Errorf("%s reads the env file %d times, want once", f, n)
					}
					if !strings.Contains(r.out, filepath.Join(home, f)) {
						t.Errorf("the output does not name %s, which changed:\n%s", f, r.out)
					}
				}
				for name, content := range tt.seed {
					if got, _ := os.ReadFile(filepath.Join(home, name)); !strings.HasPrefix(string(got), content) {
						t.Errorf("%s lost the user's lines:\n%s", name, got)
					}
				}
				for _, f := range tt.absent {
					if _, err := os.Lstat(filepath.Join(home, f)); !os.IsNotExist(err) {
						t.Errorf("install.sh created %s", f)
					}
				}
				if strings.Contains(tt.name, "fish") {
					if _, err := os.Stat(envFile(home) + ".fish"); err != nil {
						t.Errorf("no env.fish: %v", err)
					}
				}

				// The printed command makes a new shell, with the PATH the install had, find harmony.
				command := printedCommand(r.out)
				if command == "" {
					t.Fatalf("no command printed for the current shell:\n%s", r.out)
				}
				if got := findsHarmony(t, shell, home, path, command); got != binPath(home) {
					t.Fatalf("after %s, command -v harmony says %q, want %s", command, got, binPath(home))
				}
				// Twice is once: the env file puts the folder on PATH only when it is not there.
				twice := exec.Command(shell[0], append(shell[1:], "-c", command+"\n"+command+"\necho \"$PATH\"")...)
				twice.Env = []string{"HOME=" + home, "PATH=" + path}
				out, err := twice.Output()
				n := 0
				for _, dir := range strings.Split(strings.TrimSpace(string(out)), ":") {
					if dir == filepath.Dir(binPath(home)) {
						n++
					}
				}
				if err != nil || n != 1 {
					t.Errorf("after the command twice, PATH holds the folder %d times (%v): %s", n, err, out)
				}

				// A second install (same PATH) changes no file and prints the command again.
				before := homeFiles(t, home)
				r = installSh(t, shell, env)
				if r.code != 0 {
					t.Fatalf("second install failed (%d):\n%s", r.code, r.out)
				}
				if after := homeFiles(t, home); !equalMaps(before, after) {
					t.Errorf("the second install changed files:\nbefore %q\nafter  %q", before, after)
				}
				if printedCommand(r.out) != command {
					t.Errorf("the second install printed %q, want %q:\n%s", printedCommand(r.out), command, r.out)
				}

				// --uninstall removes the lines, the env files, and nothing else.
				if r = installSh(t, shell, env, "--uninstall"); r.code != 0 {
					t.Fatalf("--uninstall failed:\n%s", r.out)
				}
				for f, content := range homeFiles(t, home) {
					if strings.Contains(f, "harmony") || strings.Contains(content, "harmony") {
						t.Errorf("--uninstall left %s mentioning harmony:\n%s", f, content)
					}
				}
				for name, content := range tt.seed {
					if got, _ := os.ReadFile(filepath.Join(home, name)); !strings.HasPrefix(string(got), content) {
						t.Errorf("--uninstall changed the user's lines of %s:\n%s", name, got)
					}
				}
			})
		}
	}
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// A new login shell, started as a fresh login starts one (a clean environment, the system's
// PATH), finds harmony after the default install: dash, busybox sh and bash read ~/.profile,
// bash ~/.bash_profile instead when there is one.
func TestInstallShNewLoginShellFindsHarmony(t *testing.T) {
	snap := needSnapshot(t)
	for _, login := range []struct {
		shell []string
		seed  map[string]string
	}{
		{[]string{"dash"}, nil},
		{[]string{"busybox", "sh"}, nil},
		{[]string{"bash"}, nil},
		{[]string{"bash"}, map[string]string{".bash_profile": "# bash reads this, not .profile\n"}},
	} {
		name := login.shell[0]
		if login.seed != nil {
			name += " with .bash_profile"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv, _ := serve(t, snap)
			home := t.TempDir()
			writeFiles(t, home, login.seed)
			if r := installSh(t, []string{"dash"}, env(t, snap, home, srv.URL, os.Getenv("PATH"))); r.code != 0 {
				t.Fatalf("install failed (%d):\n%s", r.code, r.out)
			}
			sh, err := exec.LookPath(login.shell[0])
			if err != nil {
				t.Fatal(err)
			}
			args := append(append([]string{"-i", "HOME=" + home, "PATH=/usr/bin:/bin", sh}, login.shell[1:]...), "-lc", "harmony version")
			out, err := exec.Command("env", args...).CombinedOutput()
			if err != nil || !strings.Contains(string(out), "harmony "+snap.Version) {
				t.Fatalf("a new login shell: harmony version: %v\n%s", err, out)
			}
		})
	}
}

type pathSetup struct {
	home, path string
	env, args  *[]string
}

// install.sh changes no file in HOME, and says nothing of PATH, when the folder is on PATH
// already; with --no-modify-path it changes nothing and says how to use harmony. When it
// cannot set PATH up (a folder PATH cannot hold, another user's HOME, a profile it cannot
// write) it says so, and the install itself succeeds.
func TestInstallShLeavesPathAlone(t *testing.T) {
	snap := needSnapshot(t)
	tests := []struct {
		name  string
		setup func(t *testing.T, s pathSetup)
		// want: what the output says ("" for nothing about PATH)
		want []string
		// changed: the files that may change (none when nil)
		changed []string
	}{
		{"the folder is on PATH already", func(_ *testing.T, s pathSetup) {
			*s.env = append(*s.env, "PATH="+filepath.Join(s.home, ".local", "bin")+":"+s.path)
		}, nil, nil},
		{"--no-modify-path", func(_ *testing.T, s pathSetup) {
			*s.args = append(*s.args, "--no-modify-path")
		}, []string{"is not on your PATH", "to use harmony in this shell, run: export PATH=", "| sh"}, nil},
		{"--modify-path then --no-modify-path: the last one counts", func(_ *testing.T, s pathSetup) {
			*s.args = append(*s.args, "--modify-path", "--no-modify-path")
		}, []string{"is not on your PATH"}, nil},
		{"a folder PATH cannot hold (':')", func(_ *testing.T, s pathSetup) {
			*s.env = append(*s.env, "HARMONY_INSTALL_DIR="+filepath.Join(s.home, "a:b"))
		}, []string{"PATH cannot hold", "a:b/harmony"}, nil},
		{"HOME owned by another user (root through sudo without -H)", func(t *testing.T, s pathSetup) {
			if os.Geteuid() != 0 {
				t.Skip("needs root to give HOME to another user")
			}
			if err := os.Chown(s.home, 65534, 65534); err != nil {
				t.Fatal(err)
			}
			// Root installs into a folder of its own (harmony is never written into, or run
			// from, a folder another user can change: TestInstallShPathSetupTrustsOnlyTheCallersFolders).
			*s.env = append(*s.env, "HARMONY_INSTALL_DIR="+filepath.Join(t.TempDir(), "bin"))
		}, []string{"is not yours", "export PATH="}, nil},
		{"a .profile that cannot be written: the others still are", func(t *testing.T, s pathSetup) {
			if err := os.Mkdir(filepath.Join(s.home, ".profile"), 0o755); err != nil {
				t.Fatal(err)
			}
			writeFiles(t, s.home, map[string]string{".bashrc": "# bashrc\n"})
		}, []string{"could not write " + ".profile", "to use harmony in this shell, run: ."},
			[]string{".bashrc", ".local/share/harmony/env"}},
	}
	for _, shell := range shells {
		for _, tt := range tests {
			t.Run(shell[0]+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				srv, _ := serve(t, snap)
				home := t.TempDir()
				// No zsh or fish on this PATH: which profiles they add is TestInstallShSetsUpPath's.
				path := toolsPath(t, tools("curl", "minisign"), nil)
				env := env(t, snap, home, srv.URL, path)
				var args []string
				tt.setup(t, pathSetup{home, path, &env, &args})
				before := homeFiles(t, home)
				r := installSh(t, shell, env, args...)
				if r.code != 0 || !strings.Contains(r.out, "installed harmony "+snap.Version) {
					t.Fatalf("install failed (%d):\n%s", r.code, r.out)
				}
				after := homeFiles(t, home)
				for _, f := range tt.changed {
					delete(before, f)
					delete(after, f)
				}
				if !equalMaps(before, after) {
					t.Errorf("files changed:\nbefore %q\nafter  %q", before, after)
				}
				// (the test's folders have PATH in their names)
				if tt.want == nil && strings.Contains(strings.ReplaceAll(r.out, home, "HOME"), "PATH") {
					t.Errorf("the output speaks of PATH:\n%s", r.out)
				}
				for _, want := range tt.want {
					if !strings.Contains(r.out, strings.ReplaceAll(want, ".profile", filepath.Join(home, ".profile"))) {
						t.Errorf("output lacks %q:\n%s", want, r.out)
					}
				}
				if len(tt.changed) > 0 {
					if n := readsEnv(t, filepath.Join(home, ".bashrc"), "harmony/env\""); n != 1 {
						t.Errorf(".bashrc reads the env file %d times, want once", n)
					}
				}
			})
		}
	}
}
