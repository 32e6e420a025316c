package preflight

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"github.com/NationTech/harmony-agent/bootstrap"
	"github.com/NationTech/harmony-agent/internal/hint"
)

// Host is the machine the checks look at: every check reads it through this and nothing else.
type Host interface {
	// Root is the folder the machine's files are under: "/", or HARMONY_ROOT.
	Root() string
	// Getenv reads the environment harmony runs in.
	Getenv(key string) string
	// PortInUse reports whether a program listens on the local TCP port; an error says why it
	// cannot tell.
	PortInUse(port int) (bool, error)
	// Dial opens a network connection (the mirror, for its clock).
	Dial(ctx context.Context, network, address string) (net.Conn, error)
	// DiskSpace reads the free space of the file system holding the folder path (a path under
	// Root, as Root joined it).
	DiskSpace(path string) (Space, error)
	// Engine describes the Docker engine harmony would use, or says why it cannot be used.
	Engine(ctx context.Context) (*Engine, error)
}

// Space is a file system's size and what is free in it, in bytes and inodes.
type Space struct {
	Total, Free        uint64
	Inodes, FreeInodes uint64
}

// Engine is what the Docker engine says about itself (docker info), for k3d.
type Engine struct {
	// Endpoint is where it answers; Context is the active Docker context.
	Endpoint, Context string
	// Name is the engine's host name (docker-desktop, colima, orbstack, …).
	Name string
	// OperatingSystem is the engine host's system ("Docker Desktop", "Ubuntu 24.04", …).
	OperatingSystem string
	Version         string
	// Podman is true for Podman's docker-compatible API.
	Podman bool
	// Rootless is true for a Docker engine running without root.
	Rootless bool
	// CgroupVersion is "1" or "2".
	CgroupVersion string
	MemTotal      int64
	NCPU          int
	// DockerRootDir is where the engine keeps images and volumes (on the engine's host).
	DockerRootDir string
	// KindClusters names the kind clusters whose nodes the engine runs.
	KindClusters []string
	// HarmonyNode is true when harmony's k3d node exists.
	HarmonyNode bool
}

// System is the machine harmony runs on, its files under Dir.
type System struct {
	Dir string
	// Ports is true when the ports are probed: this machine's network is the system's (not when
	// HARMONY_ROOT moves the system into a folder, where it is simulated).
	Ports bool
}

// NewSystem returns this machine, its files under HARMONY_ROOT (or /), as bootstrap sees them.
func NewSystem() System {
	p := bootstrap.SystemPaths()
	return System{Dir: p.Root, Ports: !p.Prefixed()}
}

func (s System) Root() string             { return s.Dir }
func (s System) Getenv(key string) string { return os.Getenv(key) }

// PortInUse tries to listen on the port; where this user may not (a port below 1024), it tries
// to connect to it on this machine instead.
func (s System) PortInUse(port int) (bool, error) {
	if !s.Ports {
		return false, fmt.Errorf("%s moves the system to %s: this machine's ports are not its", bootstrap.RootEnv, s.Dir)
	}
	ln, err := net.Listen("tcp", ":"+strconv.Itoa(port))
	if err == nil {
		ln.Close()
		return false, nil
	}
	if errors.Is(err, syscall.EADDRINUSE) {
		return true, nil
	}
	for _, addr := range []string{"127.0.0.1", "::1"} {
		if c, err := net.DialTimeout("tcp", net.JoinHostPort(addr, strconv.Itoa(port)), 200*time.Millisecond); err == nil {
			c.Close()
			return true, nil
		}
	}
	return false, nil
}

func (s System) Dial(ctx context.Context, network, address string) (net.Conn, error) {
	var d net.Dialer
	return d.DialContext(ctx, network, address)
}

func (s System) DiskSpace(path string) (Space, error) { return diskSpace(path) }

// Engine asks the Docker engine (DOCKER_HOST, the active Docker context, or the default socket)
// about itself; the error says why it cannot be used, with the fix (bootstrap.DiagnoseDocker).
func (s System) Engine(ctx context.Context) (*Engine, error) {
	e, err := bootstrap.DiagnoseDocker(ctx)
	if err != nil && ctx.Err() != nil {
		// Not "not running": it is there, and slow (a VM starting, an engine under load).
		return nil, hint.With(errors.New("the Docker engine did not answer in time"),
			"wait until it answers (docker info), or restart it (Docker Desktop, or: sudo systemctl restart docker), then run harmony again")
	}
	if err != nil {
		return nil, err
	}
	defer e.Client.Close()
	info, err := e.Client.Info(ctx)
	if err != nil {
		return nil, err
	}
	out := &Engine{Endpoint: e.Endpoint, Context: e.Context, Name: info.Name, OperatingSystem: info.OperatingSystem,
		Version: info.ServerVersion, CgroupVersion: info.CgroupVersion, MemTotal: info.MemTotal, NCPU: info.NCPU,
		DockerRootDir: info.DockerRootDir}
	for _, opt := range info.SecurityOptions {
		out.Rootless = out.Rootless || strings.Contains(opt, "name=rootless")
	}
	out.Podman = strings.Contains(strings.ToLower(info.OperatingSystem+" "+info.Name), "podman")
	kind, err := e.Client.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", kindLabel))})
	if err == nil {
		for _, c := range kind {
			if name := c.Labels[kindLabel]; name != "" && !slices.Contains(out.KindClusters, name) {
				out.KindClusters = append(out.KindClusters, name)
			}
		}
	}
	if _, err := e.Client.ContainerInspect(ctx, bootstrap.K3dNode); err == nil {
		out.HarmonyNode = true
	}
	return out, nil
}

// kindLabel marks kind's node containers with their cluster's name.
const kindLabel = "io.x-k8s.kind.cluster"

// at returns where the host's path p is.
func (m *machine) at(p string) string { return filepath.Join(m.host.Root(), p) }

// read returns the host file p ("" when it cannot be read).
func (m *machine) read(p string) string {
	b, err := os.ReadFile(m.at(p))
	if err != nil {
		return ""
	}
	return string(b)
}

// exists reports whether the host path p exists.
func (m *machine) exists(p string) bool {
	_, err := os.Stat(m.at(p))
	return err == nil
}

// isDir reports whether the host path p is a folder.
func (m *machine) isDir(p string) bool {
	st, err := os.Stat(m.at(p))
	return err == nil && st.IsDir()
}

// program returns the first of the host paths that exists ("" when none does).
func (m *machine) program(paths ...string) string {
	for _, p := range paths {
		if m.exists(p) {
			return p
		}
	}
	return ""
}

// process is a running program, as /proc shows it.
type process struct {
	PID  int
	Comm string
}

// processes lists the programs running on the host under root (its /proc).
func processes(root string) []process {
	entries, err := os.ReadDir(filepath.Join(root, "proc"))
	if err != nil {
		return nil
	}
	var out []process
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(filepath.Join(root, "proc", e.Name(), "comm"))
		if err != nil {
			continue
		}
		out = append(out, process{PID: pid, Comm: strings.TrimSpace(string(comm))})
	}
	return out
}

// running returns the pids of the host's processes named comm.
func (m *machine) running(comm string) []int {
	var pids []int
	for _, p := range m.procs() {
		if p.Comm == comm {
			pids = append(pids, p.PID)
		}
	}
	return pids
}
