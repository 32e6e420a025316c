package installer

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ManagedBy reports which package manager installed exe, and the command that upgrades it
// ("" when none did). root is where package databases are read ("" means "/").
func ManagedBy(root, exe string) (manager, upgrade string) {
	if root == "" {
		root = "/"
	}
	slash := filepath.ToSlash(exe)
	lower := strings.ToLower(slash)
	switch {
	case strings.Contains(slash, "/Cellar/") || strings.HasPrefix(slash, "/opt/homebrew/") || strings.HasPrefix(slash, "/home/linuxbrew/.linuxbrew/"):
		return "Homebrew", "brew upgrade harmony"
	case strings.Contains(lower, "/scoop/apps/") || strings.Contains(lower, "/scoop/shims/"):
		return "Scoop", "scoop update harmony"
	case dpkgOwns(root, slash):
		return "dpkg", "sudo apt-get install --only-upgrade harmony"
	case apkOwns(root, slash):
		return "apk", "sudo apk upgrade harmony"
	case rpmOwns(root, exe):
		return "rpm", "sudo dnf upgrade harmony (or: sudo zypper update harmony)"
	}
	return "", ""
}

// dpkgOwns reads dpkg's file lists (var/lib/dpkg/info/*.list): one installed path per line.
func dpkgOwns(root, exe string) bool {
	lists, _ := filepath.Glob(filepath.Join(root, "var", "lib", "dpkg", "info", "*.list"))
	for _, l := range lists {
		b, err := os.ReadFile(l)
		if err != nil {
			continue
		}
		for _, line := range bytes.Split(b, []byte("\n")) {
			if string(line) == exe {
				return true
			}
		}
	}
	return false
}

// apkOwns reads apk's database (lib/apk/db/installed): "F:<dir>" then "R:<file>" lines.
func apkOwns(root, exe string) bool {
	f, err := os.Open(filepath.Join(root, "lib", "apk", "db", "installed"))
	if err != nil {
		return false
	}
	defer f.Close()
	dir := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "F:"):
			dir = "/" + strings.TrimPrefix(line, "F:")
		case strings.HasPrefix(line, "R:") && dir+"/"+strings.TrimPrefix(line, "R:") == exe:
			return true
		}
	}
	return false
}

// rpmOwns asks rpm (whose database is not a text file), when it is installed and root is "/".
func rpmOwns(root, exe string) bool {
	if root != "/" {
		return false
	}
	if _, err := exec.LookPath("rpm"); err != nil {
		return false
	}
	return exec.Command("rpm", "-qf", "--quiet", exe).Run() == nil
}
