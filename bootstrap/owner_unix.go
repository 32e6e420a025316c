//go:build unix

package bootstrap

import (
	"os"
	"path/filepath"
	"strconv"
)

// chownToInvokingUser gives a file harmony wrote for the user (and its directory) back to the
// user who ran sudo, so credentials are owned by whom they are for.
func chownToInvokingUser(path string) error {
	uid, err1 := strconv.Atoi(os.Getenv("SUDO_UID"))
	gid, err2 := strconv.Atoi(os.Getenv("SUDO_GID"))
	if err1 != nil || err2 != nil || os.Geteuid() != 0 {
		return nil
	}
	_ = os.Chown(filepath.Dir(path), uid, gid)
	return os.Chown(path, uid, gid)
}

// isRoot reports whether harmony runs with root privileges.
func isRoot() bool { return os.Geteuid() == 0 }
