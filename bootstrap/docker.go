package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/docker/cli/cli/command"
	"github.com/docker/cli/cli/flags"
	"github.com/docker/docker/api/types/versions"
	"github.com/docker/docker/client"

	"github.com/NationTech/harmony-agent/internal/hint"
)

// MinDockerAPI is the oldest Docker Engine API the k3d runtime accepts: Docker 20.10, the oldest
// engine k3d v5 supports.
const MinDockerAPI = "1.41"

// The ways Docker can be unusable, each reported with the fix for the user's platform.
var (
	ErrDockerNotInstalled = errors.New("docker is not installed")
	ErrDockerNotRunning   = errors.New("the docker daemon is not running")
	ErrDockerPermission   = errors.New("no permission to use the docker socket")
	ErrDockerTooOld       = errors.New("the docker engine is too old")
	ErrDockerPodman       = errors.New("the docker API is podman's docker-compatible socket, which harmony's k3d runtime does not support")
)

// Engine is the Docker engine harmony talks to.
type Engine struct {
	// Endpoint is where it answers: DOCKER_HOST, the active Docker context's, or the default.
	Endpoint string
	// Context is the active Docker context's name.
	Context    string
	Version    string
	APIVersion string
	OS         string
	Client     client.APIClient
}

// DockerCLI returns Docker's own client configuration: DOCKER_HOST, DOCKER_CONTEXT and the
// active context of ~/.docker (the k3d library reads the same).
func DockerCLI() (*command.DockerCli, error) {
	cli, err := command.NewDockerCli()
	if err != nil {
		return nil, fmt.Errorf("read the docker configuration: %w", err)
	}
	opts := flags.NewClientOptions()
	if err := cli.Initialize(opts); err != nil {
		return nil, hint.With(fmt.Errorf("read the docker configuration: %w", err),
			"check DOCKER_HOST, DOCKER_CONTEXT and 'docker context ls'")
	}
	return cli, nil
}

// DiagnoseDocker connects to the Docker engine and tells apart every reason it cannot be used
// (not installed, not running, no permission, too old, Podman), with the fix for this platform.
func DiagnoseDocker(ctx context.Context) (*Engine, error) {
	cli, err := DockerCLI()
	if err != nil {
		return nil, err
	}
	p := dockerProbe{goos: runtime.GOOS, installed: dockerInstalled, dockerHost: os.Getenv("DOCKER_HOST")}
	return p.diagnose(ctx, cli.DockerEndpoint().Host, cli.CurrentContext(), cli.Client())
}

// dockerProbe holds what a diagnosis depends on besides the engine: the platform (for the
// fixes it names) and whether Docker's programs are on this machine.
type dockerProbe struct {
	goos      string
	installed func(goos string) bool
	// dockerHost is DOCKER_HOST's value ("" when unset).
	dockerHost string
}

func (p dockerProbe) diagnose(ctx context.Context, endpoint, dockerContext string, c client.APIClient) (*Engine, error) {
	goos := p.goos
	e := &Engine{Endpoint: endpoint, Context: dockerContext, Client: c}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := c.Ping(pctx); err != nil {
		return nil, e.unreachable(err, p)
	}
	v, err := c.ServerVersion(pctx)
	if err != nil {
		return nil, fmt.Errorf("ask the docker engine at %s its version: %w", endpoint, err)
	}
	e.Version, e.APIVersion, e.OS = v.Version, v.APIVersion, v.Os
	isPodman := strings.Contains(strings.ToLower(v.Platform.Name), "podman")
	for _, comp := range v.Components {
		isPodman = isPodman || strings.Contains(strings.ToLower(comp.Name), "podman")
	}
	if isPodman {
		hints := []string{"k3d runs k3s in privileged Docker containers with Docker's networks and volumes, which Podman's compatibility socket does not provide as k3d needs"}
		switch goos {
		case "linux":
			hints = append(hints, "install Docker Engine (your distribution's docker.io or docker-ce package) and unset DOCKER_HOST", "or run k3s directly: harmony bootstrap --runtime k3s")
		default:
			hints = append(hints, "install and start Docker Desktop, then unset DOCKER_HOST (or switch back with: docker context use default)")
		}
		return nil, hint.With(fmt.Errorf("%w (podman %s at %s)", ErrDockerPodman, v.Version, endpoint), hints...)
	}
	if versions.LessThan(v.APIVersion, MinDockerAPI) {
		fix := "upgrade Docker Desktop"
		if goos == "linux" {
			fix = "upgrade Docker Engine (your distribution's docker.io or docker-ce package)"
		}
		return nil, hint.With(fmt.Errorf("%w: docker %s speaks API %s, harmony's k3d runtime needs %s (Docker 20.10) or newer", ErrDockerTooOld, v.Version, v.APIVersion, MinDockerAPI),
			fix+", then run harmony again")
	}
	return e, nil
}

// unreachable explains why the engine does not answer, by looking at the endpoint itself.
func (e *Engine) unreachable(pingErr error, p dockerProbe) error {
	goos := p.goos
	u, perr := url.Parse(e.Endpoint)
	where := e.Endpoint
	if e.Context != "" && e.Context != "default" {
		where += " (docker context " + e.Context + ")"
	}
	if perr == nil && u.Scheme == "unix" {
		_, statErr := os.Stat(u.Path)
		if host := p.dockerHost; host != "" && host == e.Endpoint && errors.Is(statErr, fs.ErrNotExist) {
			// Not "install Docker": the variable names a socket that is not there (an engine that
			// is not started, or a wrong DOCKER_HOST).
			start := "start the engine that listens there (Docker Desktop, or: sudo systemctl start docker)"
			if goos == "linux" {
				start = "start the engine that listens there (e.g. sudo systemctl start docker)"
			}
			return hint.With(fmt.Errorf("%w: DOCKER_HOST is %s, and there is no socket at %s", ErrDockerNotRunning, host, u.Path),
				start, "or fix DOCKER_HOST (the engine's socket, e.g. unix:///var/run/docker.sock), or unset it to use the local engine")
		}
		switch {
		case errors.Is(statErr, fs.ErrNotExist) && !p.installed(goos):
			return notInstalled(goos, where)
		case errors.Is(statErr, fs.ErrNotExist):
			return notRunning(goos, where)
		case errors.Is(statErr, fs.ErrPermission):
			return noPermission(goos, where)
		}
		conn, err := net.DialTimeout("unix", u.Path, 3*time.Second)
		if conn != nil {
			conn.Close()
		}
		switch {
		case errors.Is(err, syscall.EACCES) || errors.Is(err, fs.ErrPermission):
			return noPermission(goos, where)
		case errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT):
			return notRunning(goos, where)
		}
		return notRunning(goos, where)
	}
	if perr == nil && u.Scheme == "npipe" && !p.installed(goos) {
		return notInstalled(goos, where)
	}
	if perr == nil && (u.Scheme == "tcp" || u.Scheme == "ssh" || u.Scheme == "http" || u.Scheme == "https") {
		return hint.With(fmt.Errorf("%w: nothing answers at %s: %v", ErrDockerNotRunning, where, pingErr),
			"start the docker engine there, or unset DOCKER_HOST (docker context use default) to use the local one")
	}
	return notRunning(goos, where)
}

func notInstalled(goos, where string) error {
	var fix []string
	switch goos {
	case "linux":
		fix = []string{"install Docker Engine (your distribution's docker.io or docker-ce package), start it, then run harmony again",
			"or run k3s directly, without Docker: harmony bootstrap --runtime k3s"}
	case "darwin":
		fix = []string{"install Docker Desktop (or another Docker engine such as colima), start it, then run harmony again"}
	default:
		fix = []string{"install Docker Desktop, start it, then run harmony again"}
	}
	return hint.With(fmt.Errorf("%w (no docker engine at %s)", ErrDockerNotInstalled, where), fix...)
}

func notRunning(goos, where string) error {
	fix := "start Docker Desktop and wait until it says it is running, then run harmony again"
	if goos == "linux" {
		fix = "start it: sudo systemctl start docker (without systemd: sudo service docker start), then run harmony again"
	}
	return hint.With(fmt.Errorf("%w: nothing answers at %s", ErrDockerNotRunning, where), fix)
}

func noPermission(goos, where string) error {
	var fix []string
	switch goos {
	case "linux":
		fix = []string{"let your user use Docker: sudo usermod -aG docker $USER, then log out and in again (or run: newgrp docker)"}
	case "windows":
		fix = []string{"add your user to the docker-users group (Computer Management → Local Users and Groups), then sign out and in again"}
	default:
		fix = []string{"restart Docker Desktop, which resets its socket's permissions, or check the owner of the socket"}
	}
	return hint.With(fmt.Errorf("%w at %s", ErrDockerPermission, where), fix...)
}

// dockerInstalled looks for Docker's programs where each platform installs them.
func dockerInstalled(goos string) bool {
	for _, name := range []string{"dockerd", "docker"} {
		if _, err := exec.LookPath(name); err == nil {
			return true
		}
	}
	var places []string
	switch goos {
	case "darwin":
		places = []string{"/Applications/Docker.app"}
	case "windows":
		places = []string{filepath.Join(os.Getenv("ProgramFiles"), "Docker", "Docker", "Docker Desktop.exe")}
	default:
		places = []string{"/usr/bin/dockerd", "/usr/sbin/dockerd", "/usr/local/bin/dockerd"}
	}
	for _, p := range places {
		if _, err := os.Stat(p); err == nil {
			return true
		}
	}
	return false
}
