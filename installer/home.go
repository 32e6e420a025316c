package installer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/NationTech/harmony-agent/internal/hint"
)

// HomeEnv names the environment variable that overrides harmony's per-user data directory.
const HomeEnv = "HARMONY_HOME"

// RootEnv names the variable that prefixes every system path (like DESTDIR), so packaging and
// tests can run the whole flow without touching the real system.
const RootEnv = "HARMONY_ROOT"

// SystemHome returns root's own data directory, /var/lib/harmony under HARMONY_ROOT: root's
// cache (cache/sha256), state, lock and accepted runtime manifest live there, beside the
// versioned k3s layout, and only root can write it.
func SystemHome() string {
	root := os.Getenv(RootEnv)
	if root == "" {
		root = string(filepath.Separator)
	}
	if abs, err := filepath.Abs(root); err == nil {
		root = abs
	}
	return filepath.Join(root, "var", "lib", "harmony")
}

// Home returns the data directory of the user harmony runs as. For root (harmony run as root,
// or re-run through sudo) it is SystemHome, whatever HARMONY_HOME, HOME or XDG_DATA_HOME say:
// those may name a directory the invoking user can write, and root must never take files from
// it (they could be planted) nor leave root-owned files in it. For anyone else it is
// HARMONY_HOME, else the OS's user data dir ($XDG_DATA_HOME/harmony or ~/.local/share/harmony
// on Linux, ~/Library/Application Support/harmony on macOS, %LOCALAPPDATA%\harmony on Windows).
func Home() (string, error) { return home(os.Geteuid()) }

func home(euid int) (string, error) {
	if euid == 0 {
		return SystemHome(), nil
	}
	if h := os.Getenv(HomeEnv); h != "" {
		return filepath.Abs(h)
	}
	switch runtime.GOOS {
	case "windows":
		if d := os.Getenv("LOCALAPPDATA"); d != "" {
			return filepath.Join(d, "harmony"), nil
		}
	case "darwin":
		if d, err := os.UserHomeDir(); err == nil {
			return filepath.Join(d, "Library", "Application Support", "harmony"), nil
		}
	default:
		if d := os.Getenv("XDG_DATA_HOME"); filepath.IsAbs(d) {
			return filepath.Join(d, "harmony"), nil
		}
		if d, err := os.UserHomeDir(); err == nil {
			return filepath.Join(d, ".local", "share", "harmony"), nil
		}
	}
	return "", fmt.Errorf("cannot find a home directory for harmony's data: set %s", HomeEnv)
}

// CacheDir returns the content-addressed cache directory under home.
func CacheDir(home string) string {
	return filepath.Join(home, "cache", "sha256")
}

// ErrHomeNotWritable means harmony's data directory cannot be written by the user harmony runs as.
var ErrHomeNotWritable = errors.New("harmony's data folder is not writable")

// CheckHome checks, before anything is fetched, that the user harmony runs as can write its
// data directory home (or create it). The error says who owns what is in the way and the
// command that fixes it.
func CheckHome(home string) error {
	what := "harmony's data folder"
	if os.Getenv(HomeEnv) != "" {
		what = HomeEnv
	}
	dir := home
	for {
		st, err := os.Stat(dir)
		if err == nil {
			if !st.IsDir() {
				return hint.With(fmt.Errorf("%s %q: %q is not a folder: %w", what, home, dir, ErrHomeNotWritable),
					"point "+HomeEnv+" at a folder you own, e.g. export "+HomeEnv+"="+suggestedHome())
			}
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return hint.With(fmt.Errorf("%s %q: %w: %w", what, home, ErrHomeNotWritable, err),
				"point "+HomeEnv+" at a folder you own, e.g. export "+HomeEnv+"="+suggestedHome())
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return nil
		}
		dir = parent
	}
	if canWrite(dir) {
		return nil
	}
	me, owner := currentUser(), ownerOf(dir)
	var msg, fix string
	ownedBy := ""
	if owner.name != "" {
		ownedBy = " is owned by " + owner.String()
	}
	if dir == home {
		msg = fmt.Sprintf("%s %q%s: %s cannot write it", what, home, ownedBy, me)
		fix = "sudo chown -R " + me.name + " " + shellQuote(home)
	} else {
		msg = fmt.Sprintf("%s %q does not exist, and %s cannot create it: %q%s", what, home, me, dir, ownedBy)
		if ownedBy == "" {
			msg = fmt.Sprintf("%s %q does not exist, and %s cannot create it in %q", what, home, me, dir)
		}
		fix = "sudo mkdir -p " + shellQuote(home) + " && sudo chown " + me.name + " " + shellQuote(home)
	}
	return hint.With(&homeError{msg}, "make it yours: "+fix, "or use a folder you own: export "+HomeEnv+"="+suggestedHome())
}

// homeError is an ErrHomeNotWritable with its own sentence.
type homeError struct{ msg string }

func (e *homeError) Error() string        { return e.msg }
func (e *homeError) Is(target error) bool { return target == ErrHomeNotWritable }

// canWrite reports whether this process can create a file in dir, by creating one.
func canWrite(dir string) bool {
	f, err := os.CreateTemp(dir, ".harmony-write-check-*")
	if err != nil {
		return false
	}
	f.Close()
	_ = os.Remove(f.Name())
	return true
}

// account is a user as messages name it: "alice (uid 1000)".
type account struct {
	name string
	id   string
}

func (a account) String() string {
	if a.id == "" || a.id == a.name {
		return a.name
	}
	return fmt.Sprintf("%s (uid %s)", a.name, a.id)
}

func currentUser() account {
	if u, err := user.Current(); err == nil {
		return account{name: u.Username, id: u.Uid}
	}
	return account{name: "$(id -un)"}
}

// lookupUID names the user with uid (the number when it has no name).
func lookupUID(uid string) account {
	if u, err := user.LookupId(uid); err == nil {
		return account{name: u.Username, id: uid}
	}
	return account{name: uid, id: uid}
}

// suggestedHome is the default data folder in the user's home, written for a shell.
func suggestedHome() string {
	switch runtime.GOOS {
	case "windows":
		return `%LOCALAPPDATA%\harmony`
	case "darwin":
		return `"$HOME/Library/Application Support/harmony"`
	}
	return "$HOME/.local/share/harmony"
}

func shellQuote(s string) string {
	if strings.ContainsAny(s, " \t'\"$`\\!*?[]{}()<>|&;#~") {
		return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
	}
	return s
}
