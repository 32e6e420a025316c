//go:build linux

package bootstrap_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"k8s.io/client-go/tools/clientcmd"
)

// Ctrl-C while bootstrap waits for the API server: harmony says "interrupted" and which steps it
// undid, exits 130, and leaves nothing half-done: no k3s running, no binary, no service, the
// user's kubeconfig as it was (issue 18 item 9).
func TestBootstrapInterruptedUndoesItsSteps(t *testing.T) {
	t.Parallel()
	m := newMachine(t, "HARMONY_TEST_STANDIN_MODE=never-ready")
	before, err := os.ReadFile(m.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(harmonyBin, "bootstrap", "--timeout", "10m")
	cmd.Env = m.env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Wait until the stand-in k3s runs: harmony is then in its "API ready" step.
	for deadline := time.Now().Add(2 * time.Minute); !alive(m.pid()); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			t.Fatalf("k3s never started\n%s", stderr.String())
		}
	}
	pid := m.pid()
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("exit %v, want 130\n%s", err, stderr.String())
	}
	for _, want := range []string{
		"API ready    interrupted (",
		"harmony: error: interrupted during API ready: undone: start, agent, service, network, install\n",
	} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr.String())
		}
	}
	if strings.Contains(stderr.String(), "context canceled") {
		t.Errorf("stderr speaks of a cancelled context:\n%s", stderr.String())
	}
	if alive(pid) {
		t.Error("the k3s process was left running")
	}
	for _, p := range []string{"/var/lib/harmony/k3s/" + k3sTag + "/k3s", "/usr/local/bin/k3s", "/var/lib/harmony/k3s/current", "/etc/rancher/k3s/harmony-local-only.sh"} {
		if _, err := os.Lstat(m.path(p)); !os.IsNotExist(err) {
			t.Errorf("%s is left after the interrupted bootstrap (%v)", p, err)
		}
	}
	if st := m.status(); st.Installed || st.Running {
		t.Errorf("status after the interrupted bootstrap: %+v", st)
	}
	after, err := os.ReadFile(m.kubeconfig)
	if err != nil || !bytes.Equal(before, after) {
		t.Errorf("the kubeconfig changed (%v)", err)
	}
	if _, err := clientcmd.LoadFromFile(m.kubeconfig); err != nil {
		t.Error(err)
	}
}
