//go:build !windows

package cli_test

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// asNobody is the test program "as-nobody PROGRAM ARGS…": it runs PROGRAM (a program of this
// test binary, e.g. harmony) as the unprivileged user nobody (uid 65534), so a script run as
// root can show what a user sees in a folder root owns. It needs root.
func asNobody() int {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: as-nobody PROGRAM [ARG…]")
		return 2
	}
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "as-nobody: needs root")
		return 2
	}
	// A copy of this binary that nobody may run, named as the program.
	self, err := os.Executable()
	if err != nil {
		return fail(err)
	}
	dir, err := os.MkdirTemp("", "harmony-as-nobody-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, os.Args[1])
	if err := copyExecutable(self, bin); err != nil {
		return fail(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return fail(err)
	}
	// nobody must reach the program and the working directory: open the folders of this test
	// script (up to its go-test-script* root) for traversal.
	wd, err := os.Getwd()
	if err != nil {
		return fail(err)
	}
	for _, p := range []string{dir, wd} {
		var open []string
		for d := p; d != filepath.Dir(d); d = filepath.Dir(d) {
			open = append(open, d)
			if strings.HasPrefix(filepath.Base(d), "go-test-script") {
				for _, d := range open {
					if st, err := os.Stat(d); err == nil {
						_ = os.Chmod(d, st.Mode().Perm()|0o011)
					}
				}
				break
			}
		}
	}
	cmd := exec.Command(bin, os.Args[2:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	if err := cmd.Run(); err != nil {
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		return fail(err)
	}
	return 0
}

func copyExecutable(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func fail(err error) int {
	fmt.Fprintln(os.Stderr, "as-nobody:", err)
	return 1
}
