package preflight

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/NationTech/harmony-agent/bootstrap"
	"github.com/NationTech/harmony-agent/internal/hint"
)

// engineKind names the engine: Docker Desktop, colima, OrbStack, Rancher Desktop, Podman, or
// Docker Engine.
func engineKind(e *Engine) string {
	name, system := strings.ToLower(e.Name), strings.ToLower(e.OperatingSystem)
	switch {
	case e.Podman:
		return "Podman"
	case system == "docker desktop" || name == "docker-desktop":
		return "Docker Desktop"
	case strings.Contains(name, "colima") || e.Context == "colima" || strings.Contains(e.Endpoint, "/.colima/"):
		return "colima"
	case strings.Contains(name, "orbstack") || strings.Contains(system, "orbstack"):
		return "OrbStack"
	case strings.Contains(name, "rancher-desktop") || e.Context == "rancher-desktop":
		return "Rancher Desktop"
	}
	return "Docker Engine"
}

// checkDocker: k3d runs k3s in a privileged container of a Docker engine, with Docker's networks
// and volumes.
func checkDocker(_ context.Context, m *machine) Finding {
	e, err := m.engine()
	if err != nil {
		f := fail(err.Error(), "k3d runs k3s in a container of the Docker engine", strings.Join(hint.Of(err), "; "))
		if errors.Is(err, bootstrap.ErrDockerPodman) {
			f.Seen, f.Why = "the Docker API is Podman's: "+err.Error(), "k3d needs Docker's privileged containers, networks and volumes, which Podman's docker-compatible API does not give as k3d needs them"
		}
		return f
	}
	kind := engineKind(e)
	seen := fmt.Sprintf("%s %s at %s", kind, e.Version, e.Endpoint)
	if e.Context != "" && e.Context != "default" {
		seen += " (docker context " + e.Context + ")"
	}
	switch {
	case kind == "Podman":
		fix := "install and start Docker Desktop, then: docker context use default"
		if m.opts.GOOS == "linux" {
			fix = "unset DOCKER_HOST && harmony bootstrap --runtime k3s"
		}
		return fail(seen, "k3d needs Docker's privileged containers, networks and volumes, which Podman's docker-compatible API does not give as k3d needs them", fix)
	case e.Rootless:
		return warn(seen+", rootless",
			"k3s in a rootless engine's container needs cgroup v2 with the cpu, cpuset, io, memory and pids controllers delegated to your user",
			`sudo mkdir -p /etc/systemd/system/user@.service.d && printf '[Service]\nDelegate=cpu cpuset io memory pids\n' | sudo tee /etc/systemd/system/user@.service.d/delegate.conf && sudo systemctl daemon-reload`)
	case e.CgroupVersion == "1":
		return warn(seen+", on cgroup v1",
			"the kubelet of Kubernetes 1.35 and later refuses cgroup v1 unless told: harmony starts the k3s node with "+
				bootstrap.CgroupV1KubeletArg+", which works until Kubernetes drops cgroup v1; move the engine's host to cgroup v2 while you can",
			m.engineCgroupFix(kind))
	}
	return ok("%s", seen)
}

// engineCgroupFix moves the engine's host to cgroup v2.
func (m *machine) engineCgroupFix(kind string) string {
	if kind == "Docker Engine" && m.opts.GOOS == "linux" {
		return m.kernelArgs(bootstrap.CgroupV2Fix)
	}
	return "upgrade " + kind + ": its current releases run on cgroup v2"
}

// checkDockerResources: k3s in the node needs about 2 GiB of the engine's memory to run the
// cluster's own pods, more for what is launched.
func checkDockerResources(_ context.Context, m *machine) Finding {
	e, err := m.engine()
	if err != nil {
		return skipped("no Docker engine to ask (the docker check says why)")
	}
	const gib = 1 << 30
	seen := fmt.Sprintf("%s memory, %d CPUs", bytesString(uint64(max(e.MemTotal, 0))), e.NCPU)
	kind := engineKind(e)
	var fix string
	switch kind {
	case "Docker Desktop":
		fix = "in Docker Desktop: Settings → Resources → Memory 4 GB or more and 2 CPUs or more, then Apply & restart"
	case "colima":
		fix = "colima stop && colima start --memory 4 --cpu 2"
	case "Rancher Desktop":
		fix = "in Rancher Desktop: Preferences → Virtual Machine → Memory 4 GB or more, 2 CPUs or more"
	case "Podman":
		fix = "podman machine stop && podman machine set --memory 4096 --cpus 2 && podman machine start"
	default:
		fix = "run harmony on a machine with more memory, or stop what uses it"
	}
	switch {
	case e.MemTotal > 0 && e.MemTotal < 2*gib:
		return fail(seen, "k3s and the cluster's own pods need about 2 GiB: with less, the node does not become ready or its pods are killed", fix)
	case (e.MemTotal > 0 && e.MemTotal < 4*gib) || (e.NCPU > 0 && e.NCPU < 2):
		return warn(seen, "k3s and the cluster's own pods take about 2 GiB and a CPU: little remains for what you launch", fix)
	}
	return ok("%s", seen)
}
