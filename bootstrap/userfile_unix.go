//go:build unix

package bootstrap

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// InvokingUser returns the user who ran sudo when harmony runs as root through it, or nil when
// harmony acts for itself (not root, run by root directly, or sudo from root).
func InvokingUser() (*User, error) {
	if os.Geteuid() != 0 || os.Getenv("SUDO_UID") == "" {
		return nil, nil
	}
	uid, err := strconv.Atoi(os.Getenv("SUDO_UID"))
	if err != nil || uid < 0 {
		return nil, fmt.Errorf("SUDO_UID %q is not a user id", os.Getenv("SUDO_UID"))
	}
	if uid == 0 {
		return nil, nil
	}
	u, err := user.LookupId(strconv.Itoa(uid))
	if err != nil {
		return nil, fmt.Errorf("find the home of uid %d, who ran sudo: %w", uid, err)
	}
	gid, err := strconv.Atoi(os.Getenv("SUDO_GID"))
	if err != nil {
		if gid, err = strconv.Atoi(u.Gid); err != nil {
			return nil, fmt.Errorf("find the group of uid %d, who ran sudo: %w", uid, err)
		}
	}
	return &User{UID: uid, GID: gid, Home: u.HomeDir}, nil
}

// ownHome is the home of the user harmony runs as, from the user database ("" when unknown).
func ownHome() string {
	if u, err := user.LookupId(strconv.Itoa(os.Geteuid())); err == nil {
		return u.HomeDir
	}
	return ""
}

// ownedDir is a directory opened once; every later operation goes through its descriptor, so no
// link or rename can redirect it elsewhere.
type ownedDir struct {
	f    *os.File
	path string
}

func (d *ownedDir) fd() int      { return int(d.f.Fd()) }
func (d *ownedDir) Close() error { return d.f.Close() }

// openKubeconfigDir opens the directory that holds path. Acting for a user (root through sudo),
// path must lie inside the user's home and every directory from the home down must be a real
// directory (never a link) owned by that user; a missing one is created (when create) and handed
// to the user through its open descriptor. It returns nil, nil when a directory is missing and
// create is false.
func openKubeconfigDir(path string, u *User, create bool) (*ownedDir, error) {
	dir := filepath.Dir(path)
	if u == nil {
		if create {
			if err := os.MkdirAll(dir, 0o700); err != nil {
				return nil, err
			}
		}
		f, err := os.Open(dir)
		if errors.Is(err, os.ErrNotExist) && !create {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return &ownedDir{f: f, path: dir}, nil
	}
	home, rel, err := insideHome(path, u)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Open(home, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open the home of uid %d %q: %w", u.UID, home, err)
	}
	if err := ownedBy(fd, home, path, u); err != nil {
		unix.Close(fd)
		return nil, err
	}
	cur := home
	for _, name := range strings.Split(filepath.Dir(rel), string(filepath.Separator)) {
		if name == "." {
			continue
		}
		next, err := openChildDir(fd, cur, name, path, u, create)
		unix.Close(fd)
		if next < 0 || err != nil {
			return nil, err
		}
		fd, cur = next, filepath.Join(cur, name)
	}
	return &ownedDir{f: os.NewFile(uintptr(fd), cur), path: cur}, nil
}

// insideHome returns the user's home and path relative to it, or a refusal when path is outside.
func insideHome(path string, u *User) (string, string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", "", err
	}
	homes := []string{filepath.Clean(u.Home)}
	if real, err := filepath.EvalSymlinks(u.Home); err == nil && real != homes[0] {
		homes = append(homes, real) // the home as the administrator set it may go through a link
	}
	for _, home := range homes {
		if within(home, abs) {
			rel, err := filepath.Rel(home, abs)
			return home, rel, err
		}
	}
	return "", "", refuse(fmt.Sprintf("kubeconfig %q is outside the home of the user who ran sudo (%q); harmony, running as root, writes nothing there", path, u.Home),
		"unset KUBECONFIG to use ~/.kube/config, or point it at a file under "+u.Home,
		"to keep the runtime's kubeconfig elsewhere yourself: sudo harmony kubeconfig > FILE")
}

// openChildDir opens name inside the directory parentFd without following a link, creating it
// for the user when missing and create is set. It returns -1, nil when missing and not created.
func openChildDir(parentFd int, parent, name, path string, u *User, create bool) (int, error) {
	const flags = unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	full := filepath.Join(parent, name)
	fd, err := unix.Openat(parentFd, name, flags, 0)
	created := false
	if err == unix.ENOENT {
		if !create {
			return -1, nil
		}
		if err = unix.Mkdirat(parentFd, name, 0o700); err != nil && err != unix.EEXIST {
			return -1, fmt.Errorf("create %q: %w", full, err)
		}
		created = err == nil
		fd, err = unix.Openat(parentFd, name, flags, 0)
	}
	if err != nil {
		var st unix.Stat_t
		if unix.Fstatat(parentFd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
			if st.Mode&unix.S_IFMT == unix.S_IFLNK {
				return -1, refuse(fmt.Sprintf("kubeconfig %q: %q is a symbolic link, and harmony, running as root, never follows a link in a user's home", path, full),
					"point KUBECONFIG at the file itself, under directories you own")
			}
			return -1, refuse(fmt.Sprintf("kubeconfig %q: %q is not a directory", path, full), "point KUBECONFIG at a file under directories you own")
		}
		return -1, fmt.Errorf("open %q: %w", full, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("stat %q: %w", full, err)
	}
	if created && int(st.Uid) == os.Geteuid() {
		// A directory harmony just made for the user is the user's.
		if err := unix.Fchown(fd, u.UID, u.GID); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("give %q to uid %d: %w", full, u.UID, err)
		}
		return fd, nil
	}
	if err := ownedBy(fd, full, path, u); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

// ownedBy refuses a directory or file that is not the user's.
func ownedBy(fd int, name, path string, u *User) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("stat %q: %w", name, err)
	}
	if int(st.Uid) != u.UID {
		return refuse(fmt.Sprintf("kubeconfig %q: %q belongs to uid %d, not to uid %d who ran sudo; harmony, running as root, writes only where that user could", path, name, st.Uid, u.UID),
			fmt.Sprintf("if it is yours, give it back: sudo chown %d %s", u.UID, name),
			"or point KUBECONFIG at a file you own")
	}
	return nil
}

// readIn reads name in dir, never through a link when acting for a user, and returns its owner
// and mode. A missing file is no error (exists is false).
func readIn(d *ownedDir, name, path string, u *User) ([]byte, fileMeta, error) {
	flags := unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NONBLOCK
	if u != nil {
		flags |= unix.O_NOFOLLOW
	}
	fd, err := unix.Openat(d.fd(), name, flags, 0)
	if err == unix.ENOENT {
		return nil, fileMeta{}, nil
	}
	if err == unix.ELOOP || err == unix.EMLINK {
		return nil, fileMeta{}, refuse(fmt.Sprintf("kubeconfig %q is a symbolic link, and harmony, running as root, never follows a link in a user's home", path),
			"point KUBECONFIG at the file the link leads to, if it is yours")
	}
	if err != nil {
		return nil, fileMeta{}, fmt.Errorf("read %q: %w", path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, fileMeta{}, fmt.Errorf("stat %q: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, fileMeta{}, refuse(fmt.Sprintf("kubeconfig %q is not a regular file", path), "point KUBECONFIG at a regular file")
	}
	if u != nil {
		if err := ownedBy(fd, path, path, u); err != nil {
			return nil, fileMeta{}, err
		}
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, fileMeta{}, fmt.Errorf("read %q: %w", path, err)
	}
	return data, fileMeta{exists: true, mode: os.FileMode(st.Mode) & os.ModePerm, uid: int(st.Uid), gid: int(st.Gid)}, nil
}

// writeIn replaces name in dir atomically (a new file renamed over it) with data, giving the new
// file meta's mode and, when harmony runs as root, meta's owner, both set through the open file.
func writeIn(d *ownedDir, name string, data []byte, meta fileMeta) (err error) {
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	tmp := "." + name + ".tmp-" + hex.EncodeToString(rnd[:])
	full := filepath.Join(d.path, name)
	fd, err := unix.Openat(d.fd(), tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("write %q: %w", full, err)
	}
	f := os.NewFile(uintptr(fd), filepath.Join(d.path, tmp))
	defer func() {
		if err != nil {
			f.Close()
			_ = unix.Unlinkat(d.fd(), tmp, 0)
		}
	}()
	if _, err = f.Write(data); err != nil {
		return fmt.Errorf("write %q: %w", full, err)
	}
	if meta.uid >= 0 && isRoot() {
		if err = f.Chown(meta.uid, meta.gid); err != nil {
			return fmt.Errorf("write %q: keep its owner: %w", full, err)
		}
	}
	if err = f.Chmod(meta.mode); err != nil {
		return fmt.Errorf("write %q: keep its mode: %w", full, err)
	}
	if err = f.Sync(); err != nil {
		return fmt.Errorf("write %q: %w", full, err)
	}
	if err = f.Close(); err != nil {
		return fmt.Errorf("write %q: %w", full, err)
	}
	if err = unix.Renameat(d.fd(), tmp, d.fd(), name); err != nil {
		return fmt.Errorf("write %q: %w", full, err)
	}
	_ = d.f.Sync()
	return nil
}
