//go:build linux

package cli_test

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/rogpeppe/go-internal/testscript"
)

func init() { scriptCmds["nobody"] = cmdNobody }

// nobodyID is the uid and gid of the unprivileged user "nobody".
const nobodyID = 65534

// cmdNobody runs harmony as the user nobody, for what harmony tells a user who is not root:
//
//	nobody harmony ARGS...
//
// nobody's PATH is the folder holding harmony, then $NOBODY_PATH; its HOME (and HARMONY_HOME
// inside it, unless $NOBODY_HARMONY_HOME names another) is $WORK/nobody-home, owned by it; KUBECONFIG, HARMONY_MIRROR,
// HARMONY_NO_UPDATE_CHECK, NO_COLOR and DOCKER_HOST are passed on, HARMONY_ROOT is not (a
// user who is not root has the machine's system paths). Only root can run it (use [root]).
func cmdNobody(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 1 || args[0] != "harmony" {
		ts.Fatalf("usage: nobody harmony ARGS...")
	}
	if os.Geteuid() != 0 {
		ts.Fatalf("nobody: only root can run a program as another user (guard the script with [root])")
	}
	work := ts.Getenv("WORK")
	// nobody must reach the work folder and the program: the test's own temporary folders are
	// opened for traversal, nothing above them.
	for _, d := range []string{filepath.Dir(work), work} {
		ts.Check(os.Chmod(d, 0o755))
	}
	bin := filepath.Join(work, ".nobody-bin", "harmony")
	if _, err := os.Stat(bin); errors.Is(err, os.ErrNotExist) {
		self, err := exec.LookPath("harmony") // testscript's copy of this test binary
		ts.Check(err)
		ts.Check(os.MkdirAll(filepath.Dir(bin), 0o755))
		if os.Link(self, bin) != nil {
			ts.Check(copyFile(self, bin))
		}
		ts.Check(os.Chmod(bin, 0o755))
	}
	home := filepath.Join(work, "nobody-home")
	ts.Check(os.MkdirAll(home, 0o755))
	ts.Check(os.Chown(home, nobodyID, nobodyID))
	path := filepath.Dir(bin)
	if extra := ts.Getenv("NOBODY_PATH"); extra != "" {
		path += string(filepath.ListSeparator) + extra
	}
	harmonyHome := filepath.Join(home, "harmony")
	if h := ts.Getenv("NOBODY_HARMONY_HOME"); h != "" {
		harmonyHome = h
	}
	env := []string{"HOME=" + home, "HARMONY_HOME=" + harmonyHome, "PATH=" + path}
	for _, k := range []string{"KUBECONFIG", "HARMONY_MIRROR", "HARMONY_NO_UPDATE_CHECK", "NO_COLOR", "DOCKER_HOST"} {
		if v := ts.Getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	cmd := exec.Command(bin, args[1:]...)
	cmd.Dir = ts.MkAbs(".")
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = ts.Stdout(), ts.Stderr()
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobodyID, Gid: nobodyID}}
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err != nil && !errors.As(err, &exit):
		ts.Fatalf("nobody harmony: %v", err)
	case neg && err == nil:
		ts.Fatalf("unexpected nobody harmony success")
	case !neg && err != nil:
		ts.Fatalf("nobody harmony: %v", err)
	}
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
