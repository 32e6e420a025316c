package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/NationTech/harmony-agent/internal/colour"
)

// What k3s serves to the network. k3s publishes the cluster's apps on every interface (NodePorts,
// LoadBalancer Services through ServiceLB, Traefik's 80 and 443), and its API server (6443) and
// kubelet (10250) too: a laptop on a shared network would publish every launched app. k3s has no
// switch to bind them to loopback, and binding each one does not hold: pods reach the API server
// through the node's address (a Service endpoint may not be a loopback address), Traefik's
// hostIP is also the address it listens on inside its pod, and NodePorts on 127.0.0.1 need
// route_localnet, which lets the local network reach them.
//
// So harmony filters instead of binding. A root-owned script, run before k3s starts (the systemd
// unit's ExecStartPre, OpenRC's start_pre, harmony's own supervision) and after bootstrap starts
// it, puts two chains in the mangle table, which the kernel passes before the filter table k3s,
// kube-proxy, flannel and the network policy controller write to, so no rule of theirs can accept
// a packet first:
//
//   - FORWARD: a new connection forwarded into the pod network (out of cni0) that did not come
//     from it (cni0, flannel) is dropped. Everything a NodePort, a LoadBalancer Service, a
//     hostPort or Traefik publishes reaches a pod this way, so from the network none answers,
//     while this machine reaches them all: its own connections go through OUTPUT, never FORWARD.
//   - INPUT: a new connection to the API server or the kubelet from anywhere but this machine and
//     the pod network is dropped.
//
// `harmony bootstrap --expose` takes the chains out and removes the script (k3s's defaults);
// `--expose=false` writes it back and runs it. Neither restarts k3s.

// firewallName is the script's file name in k3s's configuration folder.
const firewallName = "harmony-local-only.sh"

// FirewallScript is the script that keeps the cluster's apps on this machine; it is there only
// while they are (no --expose).
func (p Paths) FirewallScript() string { return p.at(sysConfigDir + "/" + firewallName) }

// FirewallStatus is the file the script leaves when its rules are in (gone at a reboot, until
// k3s's service runs it again).
func (p Paths) FirewallStatus() string { return p.at("/run/harmony/k3s-local-only") }

// ExposedMarker records that --expose opened the cluster, so a k3s installed before harmony kept
// it on this machine is told apart (and told).
func (p Paths) ExposedMarker() string { return p.at(sysConfigDir + "/harmony-exposed") }

// firewallScript is the script: "on" (the default) puts harmony's chains in, "off" takes them
// out. Running it again replaces the chains, never adds a second jump.
const firewallScript = `#!/bin/sh
# Written by harmony: the apps this k3s cluster runs (NodePorts, LoadBalancer Services, Traefik's
# 80 and 443, hostPorts) and its API server and kubelet answer this machine (and its containers)
# only, not the network. Run by k3s's service before k3s starts, and by "harmony bootstrap".
# "harmony bootstrap --expose" takes the rules out and removes this file; "--expose=false" puts
# them back. Usage: harmony-local-only.sh [on|off] [status-file]
set -u
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/var/lib/rancher/k3s/data/current/bin/aux:/var/lib/rancher/k3s/data/current/bin
export PATH
mode=${1:-on}
status=${2:-/run/harmony/k3s-local-only}
case $mode in on|off) ;; *) echo "usage: $0 [on|off] [status-file]" >&2; exit 2 ;; esac
rm -f "$status"
fwd=HARMONY-LOCAL-FORWARD
in=HARMONY-LOCAL-INPUT
# Where this machine's own traffic comes from: itself, its pods, its containers.
local_ifs="lo cni0 docker0 br-+ podman+ cni-podman+"
rc=0
ipv6=false
[ -s /proc/net/if_inet6 ] && ipv6=true
for ipt in iptables ip6tables; do
	# ip6tables matters as much as iptables where this machine has IPv6: the API server
	# listens on every address of both.
	must=true
	[ "$ipt" = ip6tables ] && ! $ipv6 && must=false
	if ! command -v "$ipt" >/dev/null 2>&1; then
		if $must && [ "$mode" = on ]; then
			echo "harmony: no $ipt on this machine" >&2
			rc=1
		fi
		continue
	fi
	if ! "$ipt" -w 5 -t mangle -S >/dev/null 2>&1; then
		if $must && [ "$mode" = on ]; then
			echo "harmony: $ipt cannot read the mangle table" >&2
			rc=1
		fi
		continue
	fi
	# The new rules go in (under new names) before the old come out: there is no moment
	# without them. A run that was stopped half-way leaves nothing behind the next one keeps.
	while "$ipt" -w 5 -t mangle -D FORWARD -j "$fwd-N" 2>/dev/null; do :; done
	while "$ipt" -w 5 -t mangle -D INPUT -j "$in-N" 2>/dev/null; do :; done
	for c in "$fwd-N" "$in-N"; do
		"$ipt" -w 5 -t mangle -F "$c" 2>/dev/null && "$ipt" -w 5 -t mangle -X "$c"
	done
	ok=true
	if [ "$mode" = on ]; then
		"$ipt" -w 5 -t mangle -N "$fwd-N" && "$ipt" -w 5 -t mangle -N "$in-N" || ok=false
		for i in $local_ifs; do
			$ok || break
			"$ipt" -w 5 -t mangle -A "$fwd-N" -i "$i" -j RETURN &&
			"$ipt" -w 5 -t mangle -A "$in-N" -i "$i" -j RETURN || ok=false
		done
		# Every packet of a connection the network opened (not only its first: one opened
		# before these rules is cut too), and anything conntrack cannot place, into the pod
		# network; to the API server and the kubelet; to any Service endpoint on this
		# machine's own network (a hostNetwork pod behind a NodePort); and any VXLAN (one
		# node: none comes from another).
		$ok &&
		"$ipt" -w 5 -t mangle -A "$fwd-N" -o cni0 -m conntrack --ctdir ORIGINAL -j DROP &&
		"$ipt" -w 5 -t mangle -A "$fwd-N" -o cni0 -m conntrack --ctstate INVALID,UNTRACKED -j DROP &&
		"$ipt" -w 5 -t mangle -A "$in-N" -p tcp -m multiport --dports 6443,10250 -m conntrack --ctdir ORIGINAL -j DROP &&
		"$ipt" -w 5 -t mangle -A "$in-N" -m conntrack --ctstate DNAT --ctdir ORIGINAL -j DROP &&
		"$ipt" -w 5 -t mangle -A "$in-N" -p udp --dport 8472 -j DROP &&
		"$ipt" -w 5 -t mangle -I FORWARD 1 -j "$fwd-N" &&
		"$ipt" -w 5 -t mangle -I INPUT 1 -j "$in-N" || ok=false
	fi
	if $ok; then
		while "$ipt" -w 5 -t mangle -D FORWARD -j "$fwd" 2>/dev/null; do :; done
		while "$ipt" -w 5 -t mangle -D INPUT -j "$in" 2>/dev/null; do :; done
		for c in "$fwd" "$in"; do
			"$ipt" -w 5 -t mangle -F "$c" 2>/dev/null && "$ipt" -w 5 -t mangle -X "$c"
		done
		if [ "$mode" = on ]; then
			"$ipt" -w 5 -t mangle -E "$fwd-N" "$fwd" && "$ipt" -w 5 -t mangle -E "$in-N" "$in" || ok=false
		fi
	fi
	if ! $ok; then
		echo "harmony: $ipt could not put its rules in" >&2
		$must && rc=1
	fi
done
if [ "$mode" = on ] && [ $rc = 0 ]; then
	mkdir -p "$(dirname "$status")" && : > "$status"
fi
exit $rc
`

// LocalOnly reports whether the cluster's apps answer this machine only (the script is there).
func (k *K3s) LocalOnly() bool { return fileExists(k.Paths.FirewallScript()) }

// Network says where the cluster answers: "localhost"; "localhost-not-in-force" (the script is
// there but its rules are not in); "every-interface" (--expose); "every-interface-old" (a k3s
// installed before harmony kept it on this machine).
func (k *K3s) Network() string {
	switch {
	case k.LocalOnly() && fileExists(k.Paths.FirewallStatus()):
		return "localhost"
	case k.LocalOnly():
		return "localhost-not-in-force"
	case fileExists(k.Paths.ExposedMarker()):
		return "every-interface"
	}
	return "every-interface-old"
}

// writeFirewall writes the script, owned by root and writable by root only, as the service runs it.
func (k *K3s) writeFirewall() error {
	if err := os.MkdirAll(k.Paths.ConfigDir(), 0o755); err != nil {
		return err
	}
	return writeFile(k.Paths.FirewallScript(), firewallScript, 0o700)
}

// runFirewall runs the script with mode "on" or "off" (the text in memory, so "off" works with
// the file gone). Under HARMONY_ROOT (packaging, tests) it runs in a network namespace of its
// own, so the machine's firewall is never touched.
func (k *K3s) runFirewall(ctx context.Context, mode string) (string, error) {
	return k.Paths.runFirewall(ctx, mode)
}

// runFirewall returns what the script said (its warnings) and, when it failed, why.
func (p Paths) runFirewall(ctx context.Context, mode string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	args := []string{"-c", firewallScript, firewallName, mode, p.FirewallStatus()}
	name := "/bin/sh"
	if p.Prefixed() {
		name, args = "unshare", append([]string{"--net", "/bin/sh"}, args...)
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	out, err := cmd.CombinedOutput()
	msg := strings.TrimSpace(string(out))
	if len(msg) > 400 {
		msg = msg[:400] + "…"
	}
	if err != nil {
		if msg == "" {
			msg = err.Error()
		}
		return "", errors.New(msg)
	}
	return msg, nil
}

// keepLocal writes and runs the script, and reports whether its rules are in: a host where they
// cannot be is told why, not refused.
func (k *K3s) keepLocal(ctx context.Context) (bool, error) {
	if err := k.writeFirewall(); err != nil {
		return false, err
	}
	if err := removeIfExists(k.Paths.ExposedMarker()); err != nil {
		return false, err
	}
	said, err := k.runFirewall(ctx, "on")
	for _, line := range strings.Split(said, "\n") {
		if line != "" {
			fmt.Fprintf(k.Out, "%s %s\n", colour.For(k.Out).Warn("warning:"), line)
		}
	}
	if err != nil {
		fmt.Fprintf(k.Out, "%s %v: the cluster answers on every network interface until this is fixed and harmony bootstrap --expose=false runs again\n", colour.For(k.Out).Warn("warning:"), err)
		return false, nil
	}
	return true, nil
}

// openUp takes harmony's chains out and removes the script: k3s's defaults. asked records that
// the user asked (--expose).
func (k *K3s) openUp(ctx context.Context, asked bool) error {
	if _, err := k.runFirewall(ctx, "off"); err != nil {
		return fmt.Errorf("take out harmony's firewall rules: %w", err)
	}
	if asked {
		if err := writeFile(k.Paths.ExposedMarker(), "the cluster answers on every network interface: harmony bootstrap --expose\n", 0o644); err != nil {
			return err
		}
	}
	return errors.Join(removeIfExists(k.Paths.FirewallScript()), removeIfExists(k.Paths.FirewallStatus()))
}

// setExposure serves an installed k3s's apps on every interface or on this machine only. The
// rules change at once: k3s keeps running. The service definition is written again, so one
// from before harmony kept k3s on this machine runs the script at its next start too.
func (k *K3s) setExposure(ctx context.Context, version string, expose bool, opts InstallOptions) (Result, error) {
	before := k.Network()
	if expose {
		if err := k.openUp(ctx, true); err != nil {
			return Result{}, err
		}
		if before == "every-interface" {
			fmt.Fprintln(k.Out, "the cluster already answers on every network interface")
		} else {
			fmt.Fprintln(k.Out, "the cluster answers on every network interface from now on (harmony bootstrap --expose=false puts it back on this machine only)")
		}
	} else {
		if err := k.supervisor().Install(ctx); err != nil {
			return Result{}, err
		}
		in, err := k.keepLocal(ctx)
		switch {
		case err != nil:
			return Result{}, err
		case in && before == "localhost":
			fmt.Fprintln(k.Out, "the cluster already answers this machine only")
		case in:
			fmt.Fprintln(k.Out, "the cluster answers this machine only from now on")
		}
	}
	if k.healthy(ctx) {
		target, err := k.mergeKubeconfig(opts.SwitchContext)
		return Result{Version: version, AlreadyHealthy: true, Kubeconfig: target}, err
	}
	fmt.Fprintf(k.Out, "k3s %s is installed but not serving: starting it\n", version)
	return k.run(ctx, version, k.startSteps(opts), opts)
}

// tellNetwork says so when the cluster answers the network without the user having asked (a
// k3s installed before harmony kept it on this machine), or should not but does.
func (k *K3s) tellNetwork() {
	switch k.Network() {
	case "every-interface-old":
		fmt.Fprintf(k.Out, "%s the cluster answers on every network interface (k3s was installed before harmony kept it on this machine): to keep it here, harmony bootstrap --expose=false\n", colour.For(k.Out).Warn("note:"))
	case "localhost-not-in-force":
		fmt.Fprintf(k.Out, "%s the rules that keep the cluster on this machine are not in force: harmony bootstrap --expose=false says why\n", colour.For(k.Out).Warn("warning:"))
	}
}
