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
		for _, want := range []string{"-t mangle -A \"$fwd\" -o cni0 -m conntrack --ctstate NEW -j DROP", "--dports 6443,10250"} {
			if !strings.Contains(string(b), want) {
				t.Fatalf("%s: the script lacks %q", when, want)
			}
		}
		if st := m.status(); st.Apps != "localhost" {
			t.Fatalf("%s: status says the cluster answers on %q", when, st.Apps)
		}
	}

	r := m.mustHarmony("bootstrap")
	local("after a first bootstrap")
	if strings.Contains(r.stdout+r.stderr, "warning") {
		t.Fatalf("the script failed under harmony:\n%s", r.stderr)
	}
	if out := m.mustHarmony("runtime", "status").stdout; !strings.Contains(out, "answers this machine only") {
		t.Fatalf("runtime status does not say where the cluster answers:\n%s", out)
	}

	pid := m.pid()
	r = m.mustHarmony("bootstrap", "--expose")
	if !strings.Contains(r.stdout+r.stderr, "answer on every network interface from now on") || m.pid() != pid {
		t.Fatalf("--expose restarted k3s (pid %d → %d) or said nothing:\n%s%s", pid, m.pid(), r.stdout, r.stderr)
	}
	if _, err := os.Stat(script); !os.IsNotExist(err) {
		t.Fatalf("--expose left the script: %v", err)
	}
	if st := m.status(); st.Apps != "network" {
		t.Fatalf("after --expose, status says %q", st.Apps)
	}
	if r := m.mustHarmony("bootstrap", "--expose"); !strings.Contains(r.stdout+r.stderr, "already answer on every network interface") {
		t.Fatalf("a second --expose:\n%s%s", r.stdout, r.stderr)
	}
	// A plain bootstrap keeps what the runtime has; a restart does not close it either.
	m.mustHarmony("bootstrap")
	m.mustHarmony("runtime", "restart")
	if m.status().Apps != "network" {
		t.Fatal("a plain bootstrap or a restart changed the exposure")
	}

	pid = m.pid()
	r = m.mustHarmony("bootstrap", "--expose=false")
	if !strings.Contains(r.stdout+r.stderr, "answer on this machine only from now on") || m.pid() != pid {
		t.Fatalf("--expose=false:\n%s%s", r.stdout, r.stderr)
	}
	local("after --expose=false")

	// k3d publishes on localhost only: --expose is refused before anything is done, saying why.
	if r := m.harmony("bootstrap", "--runtime", "k3d", "--expose"); r.code == 0 || !strings.Contains(r.stderr, "k3d serves this machine only") {
		t.Fatalf("k3d --expose: exit %d\n%s", r.code, r.stderr)
	}
}
