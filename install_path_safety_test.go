// Tests that install.sh's PATH setup, and --uninstall's removal of it, edit only files that are
// the caller's alone: root (plain su keeps HARMONY_HOME, XDG_*, ZDOTDIR) must not read or write
// through folders another user controls, and no install may put a folder others can write first
// on PATH. Also: the files install.sh did not write are left alone, and an install and uninstall
// leave the profiles as they were.
package install_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

const otherUID = 4242

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (to give folders to another user)")
	}
}

// otherUsersDir returns a folder owned by another user (otherUID), holding files (name →
// content, "-> target" for a symbolic link), all of them the other user's.
func otherUsersDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if target, ok := strings.CutPrefix(content, "-> "); ok {
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
		} else if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, otherUID, otherUID)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// rootFile returns a file of root's, in a folder of root's, holding content.
func rootFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "root-file")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func unchanged(t *testing.T, what, dir string, before map[string]string) {
	t.Helper()
	if after := homeFiles(t, dir); !equalMaps(before, after) {
		t.Errorf("%s changed:\nbefore %q\nafter  %q", what, before, after)
	}
}

func fileIs(t *testing.T, p, want string) {
	t.Helper()
	if got, err := os.ReadFile(p); err != nil || string(got) != want {
		t.Errorf("%s changed (%v):\n%q\nwant\n%q", p, err, got, want)
	}
}

// Root's PATH setup uses root's own folders (HARMONY_HOME, XDG_DATA_HOME, XDG_CONFIG_HOME and
// ZDOTDIR are ignored), and no install sets PATH up when the install folder, the env folder or
// a profile is not the caller's alone: it says why and prints the line to run.
func TestInstallShPathSetupTrustsOnlyTheCallersFolders(t *testing.T) {
	needRoot(t)
	snap := needSnapshot(t)
	standins := map[string]string{"zsh": "#!/bin/sh\nexit 0\n", "fish": "#!/bin/sh\nexit 0\n"}
	type setup struct {
		home, other string
		env         *[]string
	}
	tests := []struct {
		name string
		// other's files (another user's folder)
		other func(t *testing.T) map[string]string
		setup func(t *testing.T, s setup)
		// refused: PATH is not set up, the output says why; else root's own files read the env file
		refused string
		// noInstall: the install itself is refused (the folder harmony would go into)
		noInstall bool
	}{
		{"root: HARMONY_HOME and XDG_DATA_HOME in another user's folder are ignored", nil, func(_ *testing.T, s setup) {
			*s.env = append(*s.env, "HARMONY_HOME="+filepath.Join(s.other, "hh"), "XDG_DATA_HOME="+s.other)
		}, "", false},
		{"root: ZDOTDIR in another user's folder, its .zshenv a link to root's file, is ignored", func(t *testing.T) map[string]string {
			return map[string]string{".zshenv": "-> " + rootFile(t, "# root's file\n")}
		}, func(_ *testing.T, s setup) {
			*s.env = append(*s.env, "ZDOTDIR="+s.other)
		}, "", false},
		{"root: XDG_CONFIG_HOME in another user's folder is ignored", nil, func(_ *testing.T, s setup) {
			*s.env = append(*s.env, "XDG_CONFIG_HOME="+s.other)
		}, "", false},
		{"an install folder of another user's", nil, func(t *testing.T, s setup) {
			dir := filepath.Join(s.other, "bin")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(dir, otherUID, otherUID); err != nil {
				t.Fatal(err)
			}
			*s.env = append(*s.env, "HARMONY_INSTALL_DIR="+dir)
		}, "is not yours", true},
		{"an install folder anyone can write", nil, func(t *testing.T, s setup) {
			dir := filepath.Join(s.home, "shared-bin")
			if err := os.Mkdir(dir, 0o777); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, 0o777); err != nil {
				t.Fatal(err)
			}
			*s.env = append(*s.env, "HARMONY_INSTALL_DIR="+dir)
		}, "other users can write", true},
		{"an env folder anyone can write", nil, func(t *testing.T, s setup) {
			dir := filepath.Dir(envFile(s.home))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, 0o777); err != nil {
				t.Fatal(err)
			}
		}, "other users can write", false},
		{"a profile linked to another user's file", func(*testing.T) map[string]string {
			return map[string]string{"bashrc": "# another user's file\n"}
		}, func(t *testing.T, s setup) {
			if err := os.Symlink(filepath.Join(s.other, "bashrc"), filepath.Join(s.home, ".bashrc")); err != nil {
				t.Fatal(err)
			}
		}, "is not yours", false},
		{"an install folder reached through another user's link", func(*testing.T) map[string]string {
			return map[string]string{"lnk": "-> /usr/local"}
		}, func(_ *testing.T, s setup) {
			// The link leads to root's folder today; its owner can point it anywhere tomorrow.
			*s.env = append(*s.env, "HARMONY_INSTALL_DIR="+filepath.Join(s.other, "lnk", "harmony-test-bin"))
		}, "is a link another user owns", true},
		{"root: an env folder root's group can write (group 0 is often shared)", nil, func(t *testing.T, s setup) {
			dir := filepath.Dir(envFile(s.home))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, 0o775); err != nil {
				t.Fatal(err)
			}
		}, "other users can write", false},
		{"a profile anyone can write", nil, func(t *testing.T, s setup) {
			p := filepath.Join(s.home, ".bashrc")
			writeFiles(t, s.home, map[string]string{".bashrc": "# bashrc\n"})
			if err := os.Chmod(p, 0o666); err != nil {
				t.Fatal(err)
			}
		}, "other users can write", false},
	}
	for _, shell := range shells {
		for _, tt := range tests {
			t.Run(shell[0]+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				srv, _ := serve(t, snap)
				home := t.TempDir()
				var seed map[string]string
				if tt.other != nil {
					seed = tt.other(t)
				}
				other := otherUsersDir(t, seed)
				path := toolsPath(t, tools("curl", "minisign"), standins)
				env := env(t, snap, home, srv.URL, path)
				tt.setup(t, setup{home, other, &env})
				otherBefore := homeFiles(t, other)
				homeBefore := homeFiles(t, home)
				var rootFiles []string
				for _, c := range otherBefore {
					if target, ok := strings.CutPrefix(c, "-> "); ok {
						rootFiles = append(rootFiles, target)
					}
				}

				r := installSh(t, shell, env)
				if tt.noInstall {
					if r.code == 0 || !strings.Contains(r.out, "not installing into") || !strings.Contains(r.out, tt.refused) {
						t.Fatalf("install into an unsafe folder: exit %d, want a refusal naming %q:\n%s", r.code, tt.refused, r.out)
					}
					unchanged(t, "the other user's folder", other, otherBefore)
					unchanged(t, "HOME", home, homeBefore)
					return
				}
				if r.code != 0 || !strings.Contains(r.out, "installed harmony") {
					t.Fatalf("install failed (%d):\n%s", r.code, r.out)
				}
				unchanged(t, "the other user's folder", other, otherBefore)
				for _, p := range rootFiles {
					fileIs(t, p, "# root's file\n")
				}
				if tt.refused != "" {
					unchanged(t, "HOME", home, homeBefore)
					for _, want := range []string{tt.refused, "to use harmony in this shell, run: export PATH='"} {
						if !strings.Contains(r.out, want) {
							t.Errorf("output lacks %q:\n%s", want, r.out)
						}
					}
					return
				}
				if n := readsEnv(t, filepath.Join(home, ".profile"), "\"$HOME/.local/share/harmony/env\""); n != 1 {
					t.Errorf(".profile reads root's env file %d times, want once", n)
				}
				if _, err := os.Stat(envFile(home)); err != nil {
					t.Error(err)
				}
				if strings.Contains(tt.name, "ZDOTDIR") {
					if n := readsEnv(t, filepath.Join(home, ".zshenv"), "harmony/env\""); n != 1 {
						t.Errorf(".zshenv reads the env file %d times, want once", n)
					}
				}
				if strings.Contains(tt.name, "XDG_CONFIG_HOME") {
					if n := readsEnv(t, filepath.Join(home, ".config/fish/conf.d/harmony.fish"), "harmony/env.fish\""); n != 1 {
						t.Errorf("harmony.fish reads the env file %d times, want once", n)
					}
				}
			})
		}
	}
}

// --uninstall as root edits only root's files: nothing in a HOME of another user's, nor in
// another user's ZDOTDIR or XDG_CONFIG_HOME, nor a file of root's linked from there.
func TestInstallShUninstallTouchesOnlyTheCallersFiles(t *testing.T) {
	needRoot(t)
	snap := needSnapshot(t)
	marked := "if [ -f x ]; then . x; fi " + "# added by harmony install.sh\n"
	for _, shell := range shells {
		t.Run(shell[0]+"/HOME of another user's", func(t *testing.T) {
			t.Parallel()
			srv, _ := serve(t, snap)
			home := otherUsersDir(t, map[string]string{".profile": "# the user's profile\n" + marked, ".bashrc": marked})
			env := env(t, snap, home, srv.URL, toolsPath(t, tools("curl", "minisign"), nil))
			before := homeFiles(t, home)
			r := installSh(t, shell, env, "--uninstall")
			if r.code != 0 {
				t.Fatalf("--uninstall failed:\n%s", r.out)
			}
			unchanged(t, "HOME", home, before)
			if !strings.Contains(r.out, "is not yours") {
				t.Errorf("output does not say why the profiles were left alone:\n%s", r.out)
			}
		})
		t.Run(shell[0]+"/ZDOTDIR and XDG_CONFIG_HOME of another user's", func(t *testing.T) {
			t.Parallel()
			srv, _ := serve(t, snap)
			home := t.TempDir()
			rootZshenv := rootFile(t, "# root's file\n"+marked)
			other := otherUsersDir(t, map[string]string{".zshenv": "-> " + rootZshenv, "fish/conf.d/harmony.fish": marked, "harmony/env": "# harmony's shell setup (written by install.sh\n"})
			env := append(env(t, snap, home, srv.URL, toolsPath(t, tools("curl", "minisign"), nil)),
				"ZDOTDIR="+other, "XDG_CONFIG_HOME="+other, "XDG_DATA_HOME="+other)
			before := homeFiles(t, other)
			r := installSh(t, shell, env, "--uninstall")
			if r.code != 0 {
				t.Fatalf("--uninstall failed:\n%s", r.out)
			}
			unchanged(t, "the other user's folder", other, before)
			fileIs(t, rootZshenv, "# root's file\n"+marked)
		})
	}
}

// install.sh makes its temporary files with mktemp: a name from its process id ($$) can be
// guessed, and a link planted there followed.
func TestInstallShMakesNoPredictableTempFiles(t *testing.T) {
	t.Parallel()
	script, err := os.ReadFile("install.sh")
	if err != nil {
		t.Fatal(err)
	}
	for i, line := range strings.Split(string(script), "\n") {
		if strings.Contains(line, "$$") {
			t.Errorf("install.sh:%d names a file with $$: %s", i+1, line)
		}
		if regexp.MustCompile(`\bcp -p\b`).MatchString(line) {
			t.Errorf("install.sh:%d copies onto a path with cp -p: %s", i+1, line)
		}
	}
}

// A relative HARMONY_INSTALL_DIR is made absolute: PATH gets the folder, not a name that means
// another folder in every other working directory.
func TestInstallShRelativeInstallDir(t *testing.T) {
	snap := needSnapshot(t)
	for _, shell := range shells {
		t.Run(shell[0], func(t *testing.T) {
			t.Parallel()
			srv, _ := serve(t, snap)
			home := t.TempDir()
			work := filepath.Join(home, "work")
			if err := os.Mkdir(work, 0o755); err != nil {
				t.Fatal(err)
			}
			path := toolsPath(t, tools("curl", "minisign"), nil)
			env := append(env(t, snap, home, srv.URL, path), "HARMONY_INSTALL_DIR=bin")
			cmd, out := installShCmd(t, shell, env)
			cmd.Dir = work
			r := finished(t, cmd.Run(), out)
			if r.code != 0 {
				t.Fatalf("install failed (%d):\n%s", r.code, r.out)
			}
			envSh, err := os.ReadFile(envFile(home))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(envSh), `"$HOME/work/bin"`) {
				t.Errorf("the env file does not name the absolute folder:\n%s", envSh)
			}
			want := filepath.Join(work, "bin", "harmony")
			if got := findsHarmony(t, shell, home, path, printedCommand(r.out)); got != want {
				t.Errorf("after %s, command -v harmony says %q, want %s", printedCommand(r.out), got, want)
			}
			cmd, out = installShCmd(t, shell, env, "--uninstall")
			cmd.Dir = work
			if r := finished(t, cmd.Run(), out); r.code != 0 || !strings.Contains(r.out, "removed "+want) {
				t.Errorf("--uninstall (%d):\n%s", r.code, r.out)
			}
		})
	}
}

// An env or env.fish file install.sh did not write (in harmony's data folder, or in a
// HARMONY_HOME that is a project of the user's) is neither overwritten nor removed;
// install.sh says it is in the way. (Root's data folder is always ~/.local/share/harmony.)
func TestInstallShKeepsEnvFilesItDidNotWrite(t *testing.T) {
	snap := needSnapshot(t)
	for _, shell := range shells {
		t.Run(shell[0], func(t *testing.T) {
			t.Parallel()
			srv, _ := serve(t, snap)
			home := t.TempDir()
			project := filepath.Dir(envFile(home))
			own := map[string]string{"env": "# the project's env\nFOO=1\n", "env.fish": "set -gx FOO 1\n"}
			path := toolsPath(t, tools("curl", "minisign"), map[string]string{"fish": "#!/bin/sh\nexit 0\n"})
			env := env(t, snap, home, srv.URL, path)
			if os.Geteuid() != 0 {
				project = filepath.Join(home, "project")
				env = append(env, "HARMONY_HOME="+project)
			}
			writeFiles(t, project, own)
			before := homeFiles(t, home)
			r := installSh(t, shell, env)
			if r.code != 0 {
				t.Fatalf("install failed (%d):\n%s", r.code, r.out)
			}
			for name, content := range own {
				fileIs(t, filepath.Join(project, name), content)
			}
			for _, want := range []string{filepath.Join(project, "env") + " was not written by install.sh", "to use harmony in this shell, run: export PATH="} {
				if !strings.Contains(r.out, want) {
					t.Errorf("output lacks %q:\n%s", want, r.out)
				}
			}
			unchanged(t, "HOME", home, before)
			if r = installSh(t, shell, env, "--uninstall"); r.code != 0 {
				t.Fatalf("--uninstall failed:\n%s", r.out)
			}
			for name, content := range own {
				fileIs(t, filepath.Join(project, name), content)
			}
		})
	}
}

// An install then --uninstall leaves each profile as it was, byte for byte, however it ended;
// the line install.sh adds follows the file's last line without a blank line between.
func TestInstallShCyclesLeaveProfilesAsTheyWere(t *testing.T) {
	snap := needSnapshot(t)
	seed := map[string]string{
		".profile":      "# ends with a newline\nexport EDITOR=vi\n",
		".bashrc":       "# ends without one\nalias ll='ls -l'",
		".bash_profile": "# ends with a blank line\n. ~/.profile\n\n",
		".bash_login":   "",
	}
	for _, shell := range shells {
		t.Run(shell[0], func(t *testing.T) {
			t.Parallel()
			srv, _ := serve(t, snap)
			home := t.TempDir()
			writeFiles(t, home, seed)
			env := env(t, snap, home, srv.URL, toolsPath(t, tools("curl", "minisign"), nil))
			for cycle := range 2 {
				if r := installSh(t, shell, env); r.code != 0 {
					t.Fatalf("install failed (%d):\n%s", r.code, r.out)
				}
				for name, content := range seed {
					got, err := os.ReadFile(filepath.Join(home, name))
					if err != nil {
						t.Fatal(err)
					}
					added, ok := strings.CutPrefix(string(got), content)
					if !strings.HasSuffix(content, "\n") && content != "" {
						added, ok = strings.CutPrefix(added, "\n")
					}
					if !ok || strings.Count(added, "\n") != 1 || !strings.HasSuffix(added, "\n") || !strings.Contains(added, "harmony/env") {
						t.Errorf("cycle %d: install added to %s more or less than one line:\n%q", cycle, name, got)
					}
				}
				if r := installSh(t, shell, env, "--uninstall"); r.code != 0 {
					t.Fatalf("--uninstall failed:\n%s", r.out)
				}
				for name, content := range seed {
					fileIs(t, filepath.Join(home, name), content)
				}
			}
		})
	}
}

// asUser returns the command line that runs shell as otherUID, and a HOME of that user's
// (its folder and the tools' reachable).
func asUser(t *testing.T, shell []string) (cmdline []string, home string) {
	t.Helper()
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("needs setpriv")
	}
	home = otherUsersDir(t, nil)
	if err := os.Chmod(filepath.Dir(home), 0o755); err != nil {
		t.Fatal(err)
	}
	sh, err := exec.LookPath(shell[0])
	if err != nil {
		t.Fatal(err)
	}
	uid := strconv.Itoa(otherUID)
	return append([]string{"setpriv", "--reuid=" + uid, "--regid=" + uid, "--clear-groups", sh}, shell[1:]...), home
}

// The same, for a user (not root): HARMONY_HOME, ZDOTDIR and XDG_CONFIG_HOME are the user's
// to choose, but a folder of another user's there is neither written nor read, and an env file
// the user wrote in HARMONY_HOME is kept.
func TestInstallShAsAUser(t *testing.T) {
	needRoot(t)
	snap := needSnapshot(t)
	standins := map[string]string{"zsh": "#!/bin/sh\nexit 0\n", "fish": "#!/bin/sh\nexit 0\n"}
	marked := "x # added by harmony install.sh\n"
	for _, shell := range shells {
		t.Run(shell[0], func(t *testing.T) {
			t.Parallel()
			srv, _ := serve(t, snap)
			cmdline, home := asUser(t, shell)
			path := toolsPath(t, tools("curl", "minisign"), standins)
			if err := os.Chmod(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			run := func(env []string, args ...string) run {
				t.Helper()
				cmd, out := installShCmd(t, cmdline, env, args...)
				return finished(t, cmd.Run(), out)
			}
			base := env(t, snap, home, srv.URL, path)

			// A ZDOTDIR, then an XDG_CONFIG_HOME, of root's: no PATH setup, said why.
			rootDir := t.TempDir()
			if err := os.Chmod(rootDir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(filepath.Dir(rootDir), 0o755); err != nil {
				t.Fatal(err)
			}
			writeFiles(t, rootDir, map[string]string{".zshenv": "# root's\n" + marked, "fish/conf.d/harmony.fish": marked})
			rootBefore := homeFiles(t, rootDir)
			for _, v := range []string{"ZDOTDIR", "XDG_CONFIG_HOME"} {
				r := run(append(base, v+"="+rootDir))
				if r.code != 0 {
					t.Fatalf("install failed (%d):\n%s", r.code, r.out)
				}
				if !strings.Contains(r.out, "is not yours") || !strings.Contains(r.out, "to use harmony in this shell, run: export PATH=") {
					t.Errorf("%s of root's: the output does not say why PATH was not set up:\n%s", v, r.out)
				}
				if _, err := os.Stat(filepath.Join(home, ".profile")); !os.IsNotExist(err) {
					t.Errorf("%s of root's: .profile written (%v)", v, err)
				}
			}
			unchanged(t, "root's folder", rootDir, rootBefore)

			// HARMONY_HOME a project of the user's, with an env file of its own: kept.
			project := filepath.Join(home, "project")
			if r := run(base, "--uninstall"); r.code != 0 {
				t.Fatal(r.out)
			}
			if err := os.Mkdir(project, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(project, "env"), []byte("FOO=1\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(project, otherUID, otherUID); err != nil {
				t.Fatal(err)
			}
			r := run(append(base, "HARMONY_HOME="+project))
			if r.code != 0 || !strings.Contains(r.out, " was not written by install.sh") {
				t.Errorf("an env file of the user's in HARMONY_HOME (%d):\n%s", r.code, r.out)
			}
			fileIs(t, filepath.Join(project, "env"), "FOO=1\n")

			// Else the user's PATH setup works, in the user's own ZDOTDIR and XDG_CONFIG_HOME too,
			// and --uninstall takes it back, leaving root's files.
			own := append(base, "ZDOTDIR="+filepath.Join(home, "zdot"), "XDG_CONFIG_HOME="+filepath.Join(home, "cfg"))
			r = run(own)
			if r.code != 0 || !strings.Contains(r.out, "set up PATH for new shells") {
				t.Fatalf("install (%d):\n%s", r.code, r.out)
			}
			for _, f := range []string{"zdot/.zshenv", "cfg/fish/conf.d/harmony.fish", ".zshenv", ".profile"} {
				if n := readsEnv(t, filepath.Join(home, f), "harmony/env"); n != 1 {
					t.Errorf("%s reads the env file %d times, want once", f, n)
				}
			}
			if got := findsHarmony(t, shell, home, path, printedCommand(r.out)); got != binPath(home) {
				t.Errorf("after %s, command -v harmony says %q", printedCommand(r.out), got)
			}
			if r = run(append(base, "ZDOTDIR="+rootDir, "XDG_CONFIG_HOME="+rootDir), "--uninstall"); r.code != 0 {
				t.Fatalf("--uninstall:\n%s", r.out)
			}
			unchanged(t, "root's folder", rootDir, rootBefore)
			if r = run(own, "--uninstall"); r.code != 0 {
				t.Fatalf("--uninstall:\n%s", r.out)
			}
			for f, content := range homeFiles(t, home) {
				if strings.Contains(content, "harmony") {
					t.Errorf("--uninstall left %s mentioning harmony:\n%s", f, content)
				}
			}
		})
	}
}
