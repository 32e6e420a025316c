package preflight

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/NationTech/harmony-agent/bootstrap"
)

// checkInit: systemd or OpenRC keep k3s running and start it at boot; without either, harmony
// runs k3s itself, until the machine stops.
func checkInit(_ context.Context, m *machine) Finding {
	container := m.exists("/.dockerenv") || m.exists("/run/.containerenv")
	switch {
	case m.systemd():
		return ok("systemd runs k3s as the service k3s")
	case m.exists("/sbin/openrc-run"):
		return ok("OpenRC runs k3s as the service k3s")
	case m.wsl():
		if rel := m.read("/proc/sys/kernel/osrelease"); strings.Contains(rel, "Microsoft") && !strings.Contains(rel, "WSL2") {
			return warn("WSL 1", "k3s needs a Linux kernel, which WSL 1 does not have: WSL 2 has one (run the fix in PowerShell on Windows)",
				"wsl.exe --set-version "+distro(m)+" 2")
		}
		return warn("WSL 2 without systemd: harmony runs k3s itself, and it does not start with the distribution",
			"after WSL restarts, the cluster is down until 'harmony runtime start'; with systemd, k3s is a service that starts by itself",
			`printf '[boot]\nsystemd=true\n' | sudo tee -a /etc/wsl.conf && wsl.exe --shutdown`)
	case container:
		return warn("no init system, in a container: harmony runs k3s itself",
			"k3s in a container needs it privileged (docker run --privileged), and stops with it; 'harmony runtime start' starts it again",
			"harmony runtime start")
	}
	return warn("no systemd or OpenRC: harmony runs k3s itself",
		"k3s does not start when the machine does: after a reboot the cluster is down until 'harmony runtime start'",
		"harmony runtime start")
}

func distro(m *machine) string {
	if d := m.host.Getenv("WSL_DISTRO_NAME"); d != "" {
		return d
	}
	return "<distribution>"
}

// checkNMCloudSetup: NetworkManager's nm-cloud-setup (RHEL-family cloud images) rewrites the
// routing of the machine's interfaces, which breaks k3s's pod network; k3s's service refuses to
// start while it is enabled (the unit's guard, as upstream's).
func checkNMCloudSetup(_ context.Context, m *machine) Finding {
	if !m.systemd() {
		return skipped("no systemd: nm-cloud-setup runs under systemd only")
	}
	var enabled []string
	for _, dir := range []string{"/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"} {
		entries, _ := os.ReadDir(m.at(dir))
		for _, e := range entries {
			if !strings.HasSuffix(e.Name(), ".wants") || !e.IsDir() {
				continue
			}
			for _, unit := range []string{"nm-cloud-setup.service", "nm-cloud-setup.timer"} {
				if m.exists(dir+"/"+e.Name()+"/"+unit) || isLink(m.at(dir+"/"+e.Name()+"/"+unit)) {
					enabled = append(enabled, unit)
				}
			}
		}
	}
	if len(enabled) == 0 {
		if m.program("/usr/lib/systemd/system/nm-cloud-setup.service", "/lib/systemd/system/nm-cloud-setup.service") != "" {
			return ok("nm-cloud-setup is installed, not enabled")
		}
		return ok("no nm-cloud-setup")
	}
	return fail("nm-cloud-setup is enabled",
		"it rewrites the routing of this machine's interfaces, which breaks k3s's pod network: k3s's service does not start while it is enabled",
		"sudo systemctl disable nm-cloud-setup.service nm-cloud-setup.timer && sudo reboot")
}

func isLink(p string) bool {
	st, err := os.Lstat(p)
	return err == nil && st.Mode()&os.ModeSymlink != 0
}

// checkFirewall: firewalld and ufw filter what the pod network sends to this machine (the API
// server, DNS), unless told to trust it.
func checkFirewall(_ context.Context, m *machine) Finding {
	var seen []string
	var fixes []string
	if len(m.running("firewalld")) > 0 {
		seen = append(seen, "firewalld is running")
		fixes = append(fixes, "sudo firewall-cmd --permanent --zone=trusted --add-source="+podCIDR+
			" && sudo firewall-cmd --permanent --zone=trusted --add-source="+serviceCIDR+" && sudo firewall-cmd --reload")
	}
	if conf := m.read("/etc/ufw/ufw.conf"); strings.Contains(conf, "\nENABLED=yes") || strings.HasPrefix(conf, "ENABLED=yes") {
		seen = append(seen, "ufw is enabled")
		fixes = append(fixes, "sudo ufw allow from "+podCIDR+" to any && sudo ufw allow from "+serviceCIDR+" to any")
	}
	if len(seen) == 0 {
		return ok("no firewalld or ufw")
	}
	return warn(strings.Join(seen, "; "),
		"it drops what pods send to this machine (the API server, DNS) unless it trusts k3s's pod ("+podCIDR+") and service ("+serviceCIDR+") networks",
		strings.Join(fixes, " && "))
}

// k3s's default pod and service networks.
const (
	podCIDR     = "10.42.0.0/16"
	serviceCIDR = "10.43.0.0/16"
)

// checkOtherKubernetes: another Kubernetes on the machine fights k3s for its ports, its iptables
// rules and its folders; a k3s harmony did not install is never replaced.
func checkOtherKubernetes(ctx context.Context, m *machine) Finding {
	if m.opts.Runtime == "k3d" {
		// k3d's node is a container: only another cluster in the same engine is its neighbour
		// (what holds its ports, the ports check names).
		if e, err := m.engine(); err == nil && len(e.KindClusters) > 0 {
			return warn("kind cluster "+list(e.KindClusters)+" in Docker",
				"it shares the engine's memory and CPUs with harmony's node; if it is in the way, remove it", "kind delete cluster --name "+e.KindClusters[0])
		}
		return ok("no kind cluster in Docker")
	}
	var fails, warns, fixes []string
	if inst, err := (&bootstrap.K3s{Paths: m.paths}).Detect(ctx); err == nil && inst.Foreign != "" {
		fails = append(fails, inst.Foreign)
		fix := "harmony launch --kubeconfig /etc/rancher/k3s/k3s.yaml"
		if m.exists("/usr/local/bin/k3s-uninstall.sh") {
			fix = "sudo /usr/local/bin/k3s-uninstall.sh"
		}
		fixes = append(fixes, fix)
	}
	others := []struct {
		name   string
		paths  []string
		procs  []string
		remove string
	}{
		{"rke2", []string{"/usr/local/bin/rke2", "/usr/bin/rke2", "/opt/rke2/bin/rke2", "/var/lib/rancher/rke2"}, []string{"rke2"}, "sudo /usr/local/bin/rke2-uninstall.sh"},
		{"MicroK8s", []string{"/snap/microk8s", "/var/snap/microk8s"}, []string{"kubelite"}, "sudo snap remove microk8s"},
		{"a kubeadm cluster", []string{"/etc/kubernetes/kubelet.conf", "/etc/kubernetes/admin.conf"}, nil, "sudo kubeadm reset"},
	}
	for _, o := range others {
		where := m.program(o.paths...)
		var pids []int
		for _, p := range o.procs {
			pids = append(pids, m.running(p)...)
		}
		switch {
		case len(pids) > 0:
			warns = append(warns, fmt.Sprintf("%s runs (pid %d)", o.name, pids[0]))
		case where != "":
			warns = append(warns, fmt.Sprintf("%s is installed (%s)", o.name, where))
		default:
			continue
		}
		fixes = append(fixes, o.remove)
	}
	// Kubernetes programs running outside those: a kubelet or API server of someone else's.
	for _, comm := range []string{"kubelet", "kube-apiserver", "k3s-server", "k3s-agent"} {
		if strings.HasPrefix(comm, "k3s") && m.installed() {
			continue // harmony's own
		}
		if pids := m.running(comm); len(pids) > 0 {
			warns = append(warns, fmt.Sprintf("%s runs (pid %d)", comm, pids[0]))
		}
	}
	seen := strings.Join(append(fails, warns...), "; ")
	why := "two Kubernetes on one machine fight over ports (6443, 10250, 80, 443), iptables rules and the container network; the ports check names what is taken"
	switch {
	case len(fails) > 0:
		return fail(seen, "harmony never replaces a k3s it did not install: remove it for harmony to manage k3s, "+
			"or use it as it is (harmony launch --kubeconfig /etc/rancher/k3s/k3s.yaml)", strings.Join(fixes, " && "))
	case len(warns) > 0:
		if len(fixes) > 0 {
			why += "; if it is in the way, remove it"
		}
		return warn(seen, why, strings.Join(fixes, " && "))
	}
	return ok("none found (another k3s, rke2, MicroK8s, kubeadm, a kubelet or API server running)")
}

// ports are the ports the runtime listens on.
func (m *machine) ports() []Port {
	if m.opts.Ports != nil {
		return m.opts.Ports
	}
	if m.opts.Runtime == "k3d" {
		return []Port{{Number: 80, What: "the cluster's HTTP", Needed: true}, {Number: 443, What: "the cluster's HTTPS", Needed: true}}
	}
	return []Port{
		{Number: 6443, What: "the API server", Needed: true},
		{Number: 10250, What: "the kubelet", Needed: true},
		{Number: 80, What: "Traefik's HTTP"},
		{Number: 443, What: "Traefik's HTTPS"},
	}
}

// checkPorts: k3s's API server and kubelet do not start on a taken port; Traefik's 80 and 443
// stay unpublished. k3d's node container is not created on a taken port.
func checkPorts(_ context.Context, m *machine) Finding {
	ports := m.ports()
	var numbers []string
	for _, p := range ports {
		numbers = append(numbers, fmt.Sprint(p.Number))
	}
	if m.installed() {
		return skipped("harmony's %s is installed: %s are its own", m.opts.Runtime, list(numbers))
	}
	var taken []Port
	for _, p := range ports {
		inUse, err := m.host.PortInUse(p.Number)
		if err != nil {
			return skipped("%v", err)
		}
		if inUse {
			taken = append(taken, p)
		}
	}
	if len(taken) == 0 {
		return ok("%s are free", list(numbers))
	}
	var seen []string
	needed := false
	for _, p := range taken {
		seen = append(seen, fmt.Sprintf("%d (%s)", p.Number, p.What))
		needed = needed || p.Needed
	}
	s := "taken: " + strings.Join(seen, ", ")
	first := taken[0].Number
	if m.opts.Runtime == "k3d" {
		return fail(s, "k3d publishes the cluster's HTTP and HTTPS on these ports of localhost: Docker cannot create the node while another program holds them",
			"harmony bootstrap --runtime k3d --http-port 8080 --https-port 8443")
	}
	show := fmt.Sprintf("sudo ss -ltnp 'sport = :%d'", first)
	if m.opts.GOOS != "linux" {
		show = fmt.Sprintf("sudo lsof -nP -iTCP:%d -sTCP:LISTEN", first)
	}
	if needed {
		return fail(s, "k3s's API server (6443) and kubelet (10250) do not start on a taken port: another Kubernetes or program holds it (the command shows which; stop it)", show)
	}
	return warn(s, "k3s runs, but Traefik cannot publish the cluster's HTTP and HTTPS on these ports: apps answer through port-forward only until they are free (the command shows which program holds them)", show)
}

// checkDisk: the kubelet stops scheduling pods and evicts them when the disk holding k3s's data
// and images runs short (k3s: under 5% free), and containerd cannot unpack images.
func checkDisk(_ context.Context, m *machine) Finding {
	dir := "/var/lib/rancher/k3s"
	if m.opts.Runtime == "k3d" {
		e, err := m.engine()
		if err != nil || m.opts.GOOS != "linux" || e.OperatingSystem == "Docker Desktop" || e.DockerRootDir == "" || !strings.HasPrefix(e.Endpoint, "unix://") {
			return skipped("Docker keeps the cluster's data on its own disk (in its VM on macOS and Windows): docker system df shows it")
		}
		dir = e.DockerRootDir
	}
	probe := dir
	for !m.exists(probe) && probe != "/" {
		probe = filepath.Dir(probe)
	}
	sp, err := m.host.DiskSpace(m.at(probe))
	if err != nil || sp.Total == 0 {
		return skipped("cannot read the free space at %s", m.at(probe))
	}
	pct := func(free, total uint64) float64 { return 100 * float64(free) / float64(total) }
	freePct := pct(sp.Free, sp.Total)
	seen := fmt.Sprintf("%s free (%.0f%%) under %s", bytesString(sp.Free), freePct, dir)
	inodePct := 100.0
	if sp.Inodes > 0 {
		inodePct = pct(sp.FreeInodes, sp.Inodes)
		seen += fmt.Sprintf(", %.0f%% of inodes", inodePct)
	}
	fix := "sudo du -xh -d 3 " + probe + " | sort -h | tail -20"
	if m.opts.Runtime == "k3d" {
		fix = "docker system prune"
	}
	const gib = 1 << 30
	switch {
	case sp.Free < 2*gib || freePct < 5 || inodePct < 5:
		return fail(seen, "k3s needs room for its images and data: under 5% free the kubelet evicts pods and schedules none, and images do not unpack (the command shows what takes the space)", fix)
	case sp.Free < 10*gib || freePct < 10 || inodePct < 10:
		return warn(seen, "images and volumes fill it as you launch: at 5% free the kubelet evicts pods (the command shows what takes the space)", fix)
	}
	return ok("%s", seen)
}

// bytesString prints a size in GiB or MiB.
func bytesString(n uint64) string {
	if n >= 1<<30 {
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	}
	return fmt.Sprintf("%d MiB", n>>20)
}
