package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
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

// firewallScript is the script: "on" (the default) puts harmony's chains in, "off" takes them
// out. Running it again replaces the chains, never adds a second jump.
const firewallScript = `#!/bin/sh
# Written by harmony: the apps this k3s cluster runs (NodePorts, LoadBalancer Services, Traefik's
# 80 and 443, hostPorts) and its API server and kubelet answer this machine only, not the network.
# Run by k3s's service before k3s starts, and by "harmony bootstrap".
# "harmony bootstrap --expose" takes the rules out and removes this file; "--expose=false" puts
# them back. Usage: harmony-local-only.sh [on|off]
set -u
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/var/lib/rancher/k3s/data/current/bin/aux:/var/lib/rancher/k3s/data/current/bin
export PATH
mode=${1:-on}
case $mode in on|off) ;; *) echo "usage: $0 [on|off]" >&2; exit 2 ;; esac
fwd=HARMONY-LOCAL-FORWARD
in=HARMONY-LOCAL-INPUT
rc=0
for ipt in iptables ip6tables; do
	if ! command -v "$ipt" >/dev/null 2>&1; then
		if [ "$ipt" = iptables ] && [ "$mode" = on ]; then
			echo "harmony: no iptables on this machine: the cluster's apps answer on every network interface" >&2
			rc=1
		fi
		continue
	fi
	if ! "$ipt" -w 5 -t mangle -S >/dev/null 2>&1; then
		[ "$ipt" = iptables ] && { echo "harmony: $ipt cannot read the mangle table" >&2; rc=1; }
		continue
	fi
	while "$ipt" -w 5 -t mangle -D FORWARD -j "$fwd" 2>/dev/null; do :; done
	while "$ipt" -w 5 -t mangle -D INPUT -j "$in" 2>/dev/null; do :; done
	for c in "$fwd" "$in"; do
		"$ipt" -w 5 -t mangle -F "$c" 2>/dev/null && "$ipt" -w 5 -t mangle -X "$c"
	done
	[ "$mode" = off ] && continue
	flannel=flannel.1
	[ "$ipt" = ip6tables ] && flannel=flannel-v6.1
	if ! {
		"$ipt" -w 5 -t mangle -N "$fwd" &&
		"$ipt" -w 5 -t mangle -A "$fwd" -i lo -j RETURN &&
		"$ipt" -w 5 -t mangle -A "$fwd" -i cni0 -j RETURN &&
		"$ipt" -w 5 -t mangle -A "$fwd" -i "$flannel" -j RETURN &&
		"$ipt" -w 5 -t mangle -A "$fwd" -o cni0 -m conntrack --ctstate NEW -j DROP &&
		"$ipt" -w 5 -t mangle -N "$in" &&
		"$ipt" -w 5 -t mangle -A "$in" -i lo -j RETURN &&
		"$ipt" -w 5 -t mangle -A "$in" -i cni0 -j RETURN &&
		"$ipt" -w 5 -t mangle -A "$in" -i "$flannel" -j RETURN &&
		"$ipt" -w 5 -t mangle -A "$in" -p tcp -m multiport --dports 6443,10250 -m conntrack --ctstate NEW -j DROP &&
		"$ipt" -w 5 -t mangle -I FORWARD 1 -j "$fwd" &&
		"$ipt" -w 5 -t mangle -I INPUT 1 -j "$in"
	}; then
		echo "harmony: $ipt could not keep the cluster's apps on this machine" >&2
		[ "$ipt" = iptables ] && rc=1
	fi
done
exit $rc
`

// LocalOnly reports whether the cluster's apps answer this machine only (the script is there).
func (k *K3s) LocalOnly() bool { return fileExists(k.Paths.FirewallScript()) }

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
func (k *K3s) runFirewall(ctx context.Context, mode string) error {
	return k.Paths.runFirewall(ctx, mode)
}

func (p Paths) runFirewall(ctx context.Context, mode string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	args := []string{"-c", firewallScript, firewallName, mode}
	name := "/bin/sh"
	if p.Prefixed() {
		name, args = "unshare", append([]string{"--net", "/bin/sh"}, args...)
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	out, err := cmd.CombinedOutput()
	if err != nil {
		msg := strings.TrimSpace(string(out))
		if len(msg) > 400 {
			msg = msg[:400] + "…"
		}
		if msg == "" {
			msg = err.Error()
		}
		return errors.New(msg)
	}
	return nil
}

// keepLocal writes and runs the script; a host where it cannot work is told, not refused.
func (k *K3s) keepLocal(ctx context.Context) error {
	if err := k.writeFirewall(); err != nil {
		return err
	}
	if err := k.runFirewall(ctx, "on"); err != nil {
		fmt.Fprintf(k.Out, "warning: %v (the cluster's apps may answer on every network interface; see harmony runtime status)\n", err)
	}
	return nil
}

// openUp takes harmony's chains out and removes the script: k3s's defaults.
func (k *K3s) openUp(ctx context.Context) error {
	if err := k.runFirewall(ctx, "off"); err != nil {
		return fmt.Errorf("take out harmony's firewall rules: %w", err)
	}
	return removeIfExists(k.Paths.FirewallScript())
}

// setExposure serves an installed k3s's apps on every interface or on this machine only. The
// rules change at once: k3s keeps running.
func (k *K3s) setExposure(ctx context.Context, version string, expose bool, opts InstallOptions) (Result, error) {
	if expose {
		if !k.LocalOnly() {
			fmt.Fprintln(k.Out, "the cluster's apps already answer on every network interface")
		} else if err := k.openUp(ctx); err != nil {
			return Result{}, err
		} else {
			fmt.Fprintln(k.Out, "the cluster's apps answer on every network interface from now on (harmony bootstrap --expose=false keeps them on this machine)")
		}
	} else {
		was := k.LocalOnly()
		if err := k.keepLocal(ctx); err != nil {
			return Result{}, err
		}
		if was {
			fmt.Fprintln(k.Out, "the cluster's apps already answer on this machine only")
		} else {
			fmt.Fprintln(k.Out, "the cluster's apps answer on this machine only from now on")
		}
	}
	if k.healthy(ctx) {
		target, err := k.mergeKubeconfig(opts.SwitchContext)
		return Result{Version: version, AlreadyHealthy: true, Kubeconfig: target}, err
	}
	fmt.Fprintf(k.Out, "k3s %s is installed but not serving: starting it\n", version)
	return k.run(ctx, version, k.startSteps(opts), opts)
}
