//go:build linux

package realnode_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/NationTech/harmony-agent/bootstrap"
	"github.com/NationTech/harmony-agent/internal/testcluster"
	"github.com/NationTech/harmony-agent/launch"
)

// startBuildkitdWith runs the buildkitd scripts/testenv builds with harmony's configuration
// (bootstrap.BuildKitdConfig: its folders prepared as harmony prepares them), stopped at the
// test's end, and returns its address.
func startBuildkitdWith(t *testing.T, cfg bootstrap.BuildKitdConfig) string {
	t.Helper()
	bin := filepath.Join(testcluster.AssetsDir(), "buildkitd")
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("buildkitd is not in %s: run %s (it builds it once)", testcluster.AssetsDir(), testcluster.BuildCommand)
	}
	if err := cfg.Prepare(); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(cfg.SocketDir)
	configPath := filepath.Join(dir, "buildkitd.toml")
	if err := os.WriteFile(configPath, cfg.TOML(), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "buildkitd.log")
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	cmd := exec.Command(bin, "--config", configPath)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("buildkitd's log:\n%s", lastBytes(b, 4000))
		}
	})
	deadline := time.Now().Add(time.Minute)
	for {
		if _, err := os.Stat(cfg.Socket()); err == nil {
			return "unix://" + cfg.Socket()
		}
		select {
		case err := <-exited:
			b, _ := os.ReadFile(logPath)
			t.Fatalf("buildkitd exited: %v\n%s", err, lastBytes(b, 4000))
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("buildkitd never listened")
		}
	}
}

// dialAs builds a program that connects to a unix socket, and runs it as uid 65534 (nobody)
// with the groups given: it reports whether the connection was accepted.
func dialAs(t *testing.T, dir, sock string, groups ...uint32) (bool, string) {
	t.Helper()
	prog := filepath.Join(dir, "dial")
	if _, err := os.Stat(prog); err != nil {
		src := filepath.Join(dir, "dial.go")
		writeFiles(t, dir, map[string]string{"dial.go": `package main

import (
	"fmt"
	"net"
	"os"
)

func main() {
	c, err := net.Dial("unix", os.Args[1])
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	c.Close()
	fmt.Println("connected")
}
`})
		build := exec.Command("go", "build", "-o", prog, src)
		build.Dir, build.Env = dir, append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=", "GO111MODULE=off")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("build the dial program: %v\n%s", err, out)
		}
		if err := os.Chmod(prog, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(prog, sock)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: groups}}
	out, err := cmd.CombinedOutput()
	return err == nil, strings.TrimSpace(string(out))
}

// TestBuildKitSocketPermissions runs buildkitd as harmony runs it on k3s (BuildKitdConfig) and
// checks who may drive it: its socket is owned by root and the launching users' group, mode
// 0660, in a folder of mode 0750, and never on TCP; another local user (nobody) cannot connect,
// the same user in the group can, and so can root.
func TestBuildKitSocketPermissions(t *testing.T) {
	c := testcluster.Need(t, cluster)
	base, err := os.MkdirTemp("", "harmony-buildkit-perm-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil { // others may walk to the socket's folder
		t.Fatal(err)
	}
	const group = 4242 // the launching users' group
	cfg := bootstrap.BuildKitdConfig{Root: filepath.Join(base, "state"), SocketDir: filepath.Join(base, "run"), Containerd: c.Node.Containerd, GID: group}
	if strings.Contains(string(cfg.TOML()), "tcp://") {
		t.Fatalf("the config listens on TCP:\n%s", cfg.TOML())
	}
	addr := startBuildkitdWith(t, cfg)

	for _, p := range []struct {
		path string
		mode os.FileMode
	}{{cfg.Socket(), 0o660}, {cfg.SocketDir, 0o750}, {cfg.Root, 0o700}} {
		st, err := os.Stat(p.path)
		if err != nil {
			t.Fatal(err)
		}
		sys := st.Sys().(*syscall.Stat_t)
		want := 0
		if p.path != cfg.Root {
			want = group
		}
		if st.Mode().Perm() != p.mode || sys.Uid != 0 || int(sys.Gid) != want {
			t.Errorf("%s: mode %v, owner %d:%d; want %v, 0:%d", p.path, st.Mode().Perm(), sys.Uid, sys.Gid, p.mode, want)
		}
	}
	if ok, out := dialAs(t, base, cfg.Socket()); ok {
		t.Errorf("another local user (nobody) connected to buildkitd's socket: %s", out)
	} else if !strings.Contains(out, "permission denied") {
		t.Errorf("nobody's connection failed, but not for want of permission: %s", out)
	}
	if ok, out := dialAs(t, base, cfg.Socket(), group); !ok {
		t.Errorf("a member of the socket's group could not connect: %s", out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	root := t.TempDir()
	writeFiles(t, root, map[string]string{"app/Dockerfile": "FROM scratch\nCOPY Dockerfile /Dockerfile\n"})
	plan, err := launch.PlanBuildKit(ctx, root, []launch.ImageArtifact{{Image: "bk-perm", Context: "app"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := launch.BuildImages(ctx, root, plan, launch.BuildOptions{BuildKit: &launch.BuildKitd{Address: addr}}); err != nil {
		t.Errorf("root could not build with harmony's buildkitd: %v", err)
	}
}
