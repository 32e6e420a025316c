//go:build linux

package bootstrap_test

import (
	"os"
	"strings"
	"testing"
)

// A laptop on a shared network must not publish every launched app: a new k3s answers this
// machine only (the script its service runs before k3s starts, which the kernel test in
// firewall_linux_test.go runs against real packets), --expose opens it up at once without a
// restart, and --expose=false closes it again. Under HARMONY_ROOT harmony runs the script in a
// network namespace of its own, so the test machine's firewall is never touched.
func TestBootstrapKeepsTheClusterOnThisMachine(t *testing.T) {
	t.Parallel()
	m := newMachine(t)
	script := m.path("/etc/rancher/k3s/harmony-local-only.sh")
	local := func(when string) {
		t.Helper()
		st, err := os.Stat(script)
		if err != nil {
			t.Fatalf("%s: no script: %v", when, err)
		}
		if st.Mode().Perm() != 0o700 {
			t.Fatalf("%s: the script's mode is %v (root's alone: the service runs it as root)", when, st.Mode())
		}
		b, _ := os.ReadFile(script)
		for _, want := range []string{"-o cni0 -m conntrack --ctdir ORIGINAL -j DROP", "--dports 6443,10250"} {
			if !strings.Contains(string(b), want) {
				t.Fatalf("%s: the script lacks %q", when, want)
			}
		}
		if st := m.status(); st.Network != "localhost" {
			t.Fatalf("%s: status says the cluster answers on %q", when, st.Network)
		}
	}

	r := m.mustHarmony("bootstrap")
	local("after a first bootstrap")
	// Any warning but the host check's about a fullish disk (this machine's, not the script's).
	for _, line := range strings.Split(r.stdout+r.stderr, "\n") {
		if strings.Contains(line, "warning") && !strings.HasPrefix(line, "warning: disk:") {
			t.Fatalf("the script failed under harmony:\n%s", r.stderr)
		}
	}
	if out := m.mustHarmony("runtime", "status").stdout; !strings.Contains(out, "answers this machine only") {
		t.Fatalf("runtime status does not say where the cluster answers:\n%s", out)
	}

	pid := m.pid()
	r = m.mustHarmony("bootstrap", "--expose")
	if !strings.Contains(r.stdout+r.stderr, "answers on every network interface from now on") || m.pid() != pid {
		t.Fatalf("--expose restarted k3s (pid %d → %d) or said nothing:\n%s%s", pid, m.pid(), r.stdout, r.stderr)
	}
	if _, err := os.Stat(script); !os.IsNotExist(err) {
		t.Fatalf("--expose left the script: %v", err)
	}
	if st := m.status(); st.Network != "every-interface" {
		t.Fatalf("after --expose, status says %q", st.Network)
	}
	if r := m.mustHarmony("bootstrap", "--expose"); !strings.Contains(r.stdout+r.stderr, "already answers on every network interface") {
		t.Fatalf("a second --expose:\n%s%s", r.stdout, r.stderr)
	}
	// A plain bootstrap keeps what the runtime has; a restart does not close it either.
	m.mustHarmony("bootstrap")
	m.mustHarmony("runtime", "restart")
	if m.status().Network != "every-interface" {
		t.Fatal("a plain bootstrap or a restart changed the exposure")
	}

	pid = m.pid()
	r = m.mustHarmony("bootstrap", "--expose=false")
	if !strings.Contains(r.stdout+r.stderr, "answers this machine only from now on") || m.pid() != pid {
		t.Fatalf("--expose=false:\n%s%s", r.stdout, r.stderr)
	}
	local("after --expose=false")

	// Rules that did not go in (a reboot, before k3s's service ran the script; iptables
	// missing) are said, by status and by a plain bootstrap.
	if err := os.Remove(m.path("/run/harmony/k3s-local-only")); err != nil {
		t.Fatal(err)
	}
	if st := m.status(); st.Network != "localhost-not-in-force" {
		t.Fatalf("without the rules, status says %q", st.Network)
	}
	if r := m.mustHarmony("bootstrap"); !strings.Contains(r.stdout+r.stderr, "the rules that keep the cluster on this machine are not in force") {
		t.Fatalf("a plain bootstrap did not say the rules are not in:\n%s%s", r.stdout, r.stderr)
	}
	m.mustHarmony("runtime", "restart") // the service runs the script before k3s starts
	local("after a restart")

	// A k3s installed before harmony kept it on this machine (no script, never --expose) is
	// told, and --expose=false closes it.
	for _, p := range []string{script, m.path("/run/harmony/k3s-local-only")} {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	}
	if st := m.status(); st.Network != "every-interface-old" {
		t.Fatalf("an old install: status says %q", st.Network)
	}
	if r := m.mustHarmony("bootstrap"); !strings.Contains(r.stdout+r.stderr, "k3s was installed before harmony kept it on this machine") {
		t.Fatalf("a plain bootstrap of an old install said nothing:\n%s%s", r.stdout, r.stderr)
	}
	m.mustHarmony("bootstrap", "--expose=false")
	local("an old install after --expose=false")

	// k3d publishes on localhost only: --expose is refused before anything is done, saying why;
	// --expose=false asks for what it does.
	if r := m.harmony("bootstrap", "--runtime", "k3d", "--expose"); r.code == 0 || !strings.Contains(r.stderr, "k3d serves this machine only") {
		t.Fatalf("k3d --expose: exit %d\n%s", r.code, r.stderr)
	}
}
