//go:build linux

package bootstrap_test

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/NationTech/harmony-agent/bootstrap"
	"github.com/NationTech/harmony-agent/internal/releasetest"
)

const (
	patchTag = "v1.36.5+k3s1" // a newer patch of the pinned line, served as a stand-in
	minorTag = "v1.37.0+k3s1" // the next minor, served as a stand-in
)

// publish serves a signed runtime manifest with the given serial pinning the installed default
// (the plain stand-in) and each of tags (stand-ins made distinct per version).
func (m *machine) publish(serial int, tags ...string) {
	m.publishExpiring(serial, time.Time{}, tags...)
}

// publishExpiring is publish with the manifest's signed expiry (zero: the embedded one's).
func (m *machine) publishExpiring(serial int, expires time.Time, tags ...string) {
	m.t.Helper()
	bins := map[string][]byte{k3sTag: standin}
	for _, tag := range tags {
		bins[tag] = releasetest.StandinVersion(standin, tag)
	}
	if _, err := m.srv.K3sReleasesExpiring("v0.0.0-test", testKey.Sign, serial, expires, bins); err != nil {
		m.t.Fatal(err)
	}
}

func (m *machine) current() string {
	target, _ := os.Readlink(m.path("/var/lib/harmony/k3s/current"))
	return target
}

// healthyAt fails the test unless k3s runs version and its API and node are healthy.
func (m *machine) healthyAt(version string) {
	m.t.Helper()
	st := m.status()
	if st.Version != version || m.current() != version || !st.Running || !st.APIHealthy || !st.NodeReady || !alive(m.pid()) {
		m.t.Fatalf("want k3s %s running and healthy, got current %q, status %+v", version, m.current(), st)
	}
	// The process that runs is that version's stand-in (it logs its version when it starts).
	log, _ := os.ReadFile(m.path("/var/log/k3s.log"))
	starts := strings.Split(string(log), "--- started by harmony")
	if last := starts[len(starts)-1]; !strings.Contains(last, "version "+version+" ") {
		m.t.Fatalf("the last k3s start was not %s:\n%s", version, last)
	}
}

// waitWroteKubeconfig waits (up to two minutes) until the k3s harmony started last has written
// its kubeconfig, as k3s does once it is up (the stand-in logs it).
func (m *machine) waitWroteKubeconfig() {
	m.t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		log, _ := os.ReadFile(m.path("/var/log/k3s.log"))
		starts := strings.Split(string(log), "--- started by harmony")
		last := starts[len(starts)-1]
		if len(starts) > 1 && strings.Contains(last, "Wrote kubeconfig") {
			return
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("the k3s started last has not written its kubeconfig after two minutes:\n%s", last)
		}
	}
}

// treeDigest hashes every path, mode and file content under dir.
func treeDigest(t *testing.T, dir string) string {
	t.Helper()
	h := sha256.New()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		h.Write([]byte(rel + "\x00" + info.Mode().String() + "\x00"))
		if info.Mode().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			h.Write(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func TestRuntimeUpgradeAndRollback(t *testing.T) {
	t.Parallel()
	m := newMachine(t)
	m.mustHarmony("bootstrap")
	if st := m.status(); st.NewerPatch != "" {
		t.Fatalf("newer patch before any was published: %q", st.NewerPatch)
	}
	r := m.mustHarmony("runtime", "upgrade")
	if !strings.Contains(r.stdout, k3sTag+" is the newest version the policy allows") {
		t.Fatalf("upgrade with nothing newer:\n%s%s", r.stdout, r.stderr)
	}

	m.publish(3, patchTag, minorTag)
	data := treeDigest(t, m.path("/var/lib/rancher/k3s"))
	pid := m.pid()

	// --dry-run refreshes the manifest, says what it would do, and changes nothing.
	r = m.mustHarmony("runtime", "upgrade", "--dry-run")
	for _, want := range []string{"would upgrade k3s " + k3sTag + " → " + patchTag, "dry run: nothing changed", "newer, held back by the policy: " + minorTag} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("dry run lacks %q:\n%s", want, r.stdout)
		}
	}
	if m.current() != k3sTag || m.pid() != pid {
		t.Fatal("--dry-run changed the runtime")
	}
	if _, err := os.Stat(m.path("/var/lib/harmony/k3s/" + patchTag)); !os.IsNotExist(err) {
		t.Fatal("--dry-run installed the new version")
	}

	// The newer patch is shown by status and offered by bootstrap, which no longer refuses it.
	if st := m.status(); st.NewerPatch != patchTag {
		t.Fatalf("status newerPatch %q, want %s", st.NewerPatch, patchTag)
	}
	r = m.mustHarmony("runtime", "status")
	if !strings.Contains(r.stdout, patchTag+" available: harmony runtime upgrade") {
		t.Fatalf("status does not offer the patch:\n%s", r.stdout)
	}
	r = m.mustHarmony("bootstrap", "--version", patchTag)
	if !strings.Contains(r.stderr, "upgrade with: harmony runtime upgrade --to "+patchTag) || !strings.Contains(r.stdout, patchTag+" is available: harmony runtime upgrade") || m.current() != k3sTag {
		t.Fatalf("bootstrap --version newer:\n%s%s", r.stdout, r.stderr)
	}

	// A minor upgrade is refused without --allow-minor, and changes nothing.
	r = m.harmony("runtime", "upgrade", "--to", minorTag)
	if r.code != 1 || !strings.Contains(r.stderr, "minor upgrade not requested") || !strings.Contains(r.stderr, "--allow-minor") {
		t.Fatalf("minor without --allow-minor: exit %d\n%s", r.code, r.stderr)
	}
	if m.current() != k3sTag || m.pid() != pid {
		t.Fatal("a refused minor upgrade changed the runtime")
	}

	// The upgrade moves to the newer patch, healthy, keeping the previous version's files.
	r = m.mustHarmony("runtime", "upgrade")
	if !strings.Contains(r.stdout, "k3s upgraded "+k3sTag+" → "+patchTag+" and healthy") {
		t.Fatalf("upgrade output:\n%s%s", r.stdout, r.stderr)
	}
	for _, step := range []string{"download", "verify", "install", "stop " + k3sTag, "switch to " + patchTag, "start " + patchTag, "health"} {
		if !strings.Contains(r.stderr, "] "+step) {
			t.Errorf("upgrade progress lacks %q:\n%s", step, r.stderr)
		}
	}
	m.healthyAt(patchTag)
	if _, err := os.Stat(m.path("/var/lib/harmony/k3s/" + k3sTag + "/k3s")); err != nil {
		t.Fatalf("the previous version's files are gone: %v", err)
	}
	if _, err := os.Stat(m.path("/var/lib/harmony/k3s/upgrade-journal.json")); !os.IsNotExist(err) {
		t.Fatal("the journal was left after a successful upgrade")
	}
	if got := treeDigest(t, m.path("/var/lib/rancher/k3s")); got != data {
		t.Fatal("the upgrade changed the k3s data directory")
	}
	if r := m.mustHarmony("runtime", "upgrade"); !strings.Contains(r.stdout, patchTag+" is the newest version the policy allows") {
		t.Fatalf("second upgrade:\n%s", r.stdout)
	}

	// Rollback goes back to the previous version, healthy.
	r = m.mustHarmony("runtime", "rollback", "-o", "json")
	var res bootstrap.UpgradeResult
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || !res.Changed || res.From != patchTag || res.To != k3sTag {
		t.Fatalf("rollback -o json: %v\n%s", err, r.stdout)
	}
	m.healthyAt(k3sTag)
	if got := treeDigest(t, m.path("/var/lib/rancher/k3s")); got != data {
		t.Fatal("the rollback changed the k3s data directory")
	}
}

func TestUpgradeThatNeverBecomesReadyIsRolledBack(t *testing.T) {
	t.Parallel()
	m := newMachine(t, "HARMONY_TEST_STANDIN_MODE=never-ready@"+patchTag)
	m.mustHarmony("bootstrap")
	m.publish(3, patchTag)
	data := treeDigest(t, m.path("/var/lib/rancher/k3s"))

	// --timeout bounds each version's wait: the new one's, which never ends well, and the
	// previous one's on the way back, which must end well. Under load here the upgrade took up
	// to 1.7 s beyond its first wait, the way back included: 3 s was too close; 15 s is not.
	r := m.harmony("runtime", "upgrade", "--timeout", "15s")
	if r.code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		"k3s " + k3sTag + " → " + patchTag + ": the switch failed and was rolled back",
		"k3s " + k3sTag + " runs and is healthy again",
		"address already in use", "likely cause: a port k3s needs",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	m.healthyAt(k3sTag)
	if got := treeDigest(t, m.path("/var/lib/rancher/k3s")); got != data {
		t.Fatal("the failed upgrade changed the k3s data directory")
	}
	if _, err := os.Stat(m.path("/var/lib/harmony/k3s/" + patchTag)); !os.IsNotExist(err) {
		t.Error("the failed version's files were kept")
	}
	if _, err := os.Stat(m.path("/var/lib/harmony/k3s/upgrade-journal.json")); !os.IsNotExist(err) {
		t.Error("the journal was left after a completed rollback")
	}
}

func TestUpgradeRefusesAReplayedManifest(t *testing.T) {
	t.Parallel()
	m := newMachine(t)
	m.mustHarmony("bootstrap")
	m.publish(5) // seen: serial 5, nothing newer
	m.mustHarmony("runtime", "upgrade", "--dry-run")
	m.publish(3, patchTag) // an older signed manifest naming a version, replayed as the latest
	r := m.harmony("runtime", "upgrade")
	if r.code != 1 || !strings.Contains(r.stderr, "runtime manifest serial 3 is older than serial 5") || !strings.Contains(r.stderr, "replay") {
		t.Fatalf("replayed manifest: exit %d\n%s", r.code, r.stderr)
	}
	// The agent refuses it the same way, and logs it.
	r = m.harmony("agent", "--once")
	if r.code != 1 || !strings.Contains(r.stdout, "decided: nothing: the runtime manifest was refused") || !strings.Contains(r.stderr, "serial 3 is older than serial 5") {
		t.Fatalf("agent with a replayed manifest: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	m.healthyAt(k3sTag)
	if _, err := os.Stat(m.path("/var/lib/harmony/k3s/" + patchTag)); !os.IsNotExist(err) {
		t.Error("a version named only by the replayed manifest was installed")
	}
}

func TestUpgradeFlagsAnExpiredManifest(t *testing.T) {
	t.Parallel()
	m := newMachine(t)
	m.mustHarmony("bootstrap")
	m.publishExpiring(7, time.Now().Add(-48*time.Hour), patchTag) // signed, newer serial, but frozen in the past
	r := m.mustHarmony("runtime", "upgrade")
	if !strings.Contains(r.stderr, "note: could not refresh the runtime manifest") || !strings.Contains(r.stderr, "expired") ||
		!strings.Contains(r.stdout, k3sTag+" is the newest version the policy allows") {
		t.Fatalf("expired manifest:\n%s%s", r.stdout, r.stderr)
	}
	r = m.mustHarmony("agent", "--once")
	if !strings.Contains(r.stdout, "checked: could not refresh the runtime manifest") || !strings.Contains(r.stdout, "expired") {
		t.Fatalf("the agent does not flag the expired manifest:\n%s", r.stdout)
	}
	m.healthyAt(k3sTag)
	if _, err := os.Stat(m.path("/var/lib/harmony/k3s/" + patchTag)); !os.IsNotExist(err) {
		t.Error("a version named only by the expired manifest was installed")
	}
}

func TestAgentOnceAppliesAPatchAndLogsIt(t *testing.T) {
	t.Parallel()
	m := newMachine(t)
	r := m.mustHarmony("bootstrap")
	if !strings.Contains(r.stderr, "no scheduler to run the harmony agent") || !strings.Contains(r.stderr, "agent --once' daily yourself") {
		t.Errorf("bootstrap without a scheduler does not say how to schedule the agent:\n%s", r.stderr)
	}
	r = m.mustHarmony("agent", "--once")
	if !strings.Contains(r.stdout, "decided: nothing: "+k3sTag+" is the newest allowed version") {
		t.Fatalf("agent with nothing to do:\n%s%s", r.stdout, r.stderr)
	}

	m.publish(3, patchTag)
	m.mustHarmony("agent", "disable")
	r = m.mustHarmony("agent", "--once")
	if !strings.Contains(r.stdout, patchTag+" is available but auto-patching is off") || m.current() != k3sTag {
		t.Fatalf("agent with auto-patching off:\n%s", r.stdout)
	}

	m.mustHarmony("agent", "enable")
	r = m.mustHarmony("agent", "--once")
	for _, want := range []string{"checked: runtime manifest (serial 3)", "decided: upgrade " + k3sTag + " → " + patchTag, "did: upgraded", "result: upgraded"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("agent --once lacks %q:\n%s%s", want, r.stdout, r.stderr)
		}
	}
	m.healthyAt(patchTag)

	r = m.mustHarmony("agent", "log")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 3 || !strings.Contains(lines[2], "upgraded") || !strings.Contains(lines[1], "auto-patching is off") {
		t.Fatalf("agent log:\n%s", r.stdout)
	}
	var entries []bootstrap.AgentEntry
	if err := json.Unmarshal([]byte(m.mustHarmony("agent", "log", "-o", "json").stdout), &entries); err != nil || len(entries) != 3 || entries[2].Result != "upgraded" {
		t.Fatalf("agent log -o json: %v %+v", err, entries)
	}
	st := m.status()
	if st.Agent == nil || st.Agent.Result != "upgraded" || st.Agent.LastRun.IsZero() || !st.Agent.AutoPatch {
		t.Fatalf("status does not show the agent's last run: %+v", st.Agent)
	}
}

func TestKilledSwitchIsRecoveredByRuntimeRollback(t *testing.T) {
	t.Parallel()
	tests := []struct {
		pause bootstrap.Phase
		want  string // the version running afterwards
		did   string
	}{
		{bootstrap.PhaseStopped, k3sTag, "was reverted"},
		{bootstrap.PhaseSwitched, k3sTag, "was reverted"},
		{bootstrap.PhaseStarted, patchTag, "was completed"},
	}
	for _, tt := range tests {
		t.Run(string(tt.pause), func(t *testing.T) {
			t.Parallel()
			m := newMachine(t)
			m.mustHarmony("bootstrap")
			m.publish(3, patchTag)
			data := treeDigest(t, m.path("/var/lib/rancher/k3s"))

			// A real harmony process, paused by the test hook mid-switch, killed with SIGKILL.
			cmd := exec.Command(harmonyBin, "runtime", "upgrade")
			cmd.Env = append(append([]string(nil), m.env...), bootstrap.PauseEnv+"="+string(tt.pause))
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			paused := make(chan bool, 1)
			go func() {
				sc := bufio.NewScanner(stderr)
				for sc.Scan() {
					if strings.Contains(sc.Text(), "paused at "+string(tt.pause)) {
						paused <- true
						return
					}
				}
				paused <- false
			}()
			select {
			case ok := <-paused:
				if !ok {
					_ = cmd.Wait()
					t.Fatal("harmony ended without pausing")
				}
			case <-time.After(2 * time.Minute):
				_ = cmd.Process.Kill()
				t.Fatal("harmony never reached the pause")
			}
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			_ = cmd.Wait()
			var j bootstrap.Journal
			b, err := os.ReadFile(m.path("/var/lib/harmony/k3s/upgrade-journal.json"))
			if err != nil || json.Unmarshal(b, &j) != nil || j.Phase != tt.pause {
				t.Fatalf("journal after the kill: %v %s", err, b)
			}
			if tt.pause == bootstrap.PhaseStarted {
				// The next command completes the switch only when the new version is healthy: a
				// version still starting is rightly reverted. Wait until the started k3s is up (it
				// wrote its kubeconfig), which on a loaded machine can come after the next command.
				m.waitWroteKubeconfig()
			}

			// Other commands say what is unfinished and go on; runtime rollback finishes or
			// reverts the switch and says so.
			r := m.mustHarmony("runtime", "status")
			if !strings.Contains(r.stderr, "interrupted upgrade of k3s ("+k3sTag+" → "+patchTag) || !strings.Contains(r.stderr, "harmony runtime rollback finishes it") {
				t.Fatalf("status after the kill:\n%s", r.stderr)
			}
			if _, err := os.Stat(m.path("/var/lib/harmony/k3s/upgrade-journal.json")); err != nil {
				t.Fatalf("runtime status acted on the journal: %v", err)
			}
			r = m.mustHarmony("runtime", "rollback")
			if !strings.Contains(r.stdout, "interrupted upgrade of k3s ("+k3sTag+" → "+patchTag) || !strings.Contains(r.stdout, tt.did+": k3s "+tt.want+" runs and is healthy") {
				t.Fatalf("rollback after the kill:\n%s%s", r.stdout, r.stderr)
			}
			m.healthyAt(tt.want)
			if _, err := os.Stat(m.path("/var/lib/harmony/k3s/upgrade-journal.json")); !os.IsNotExist(err) {
				t.Fatal("the journal was left after recovery")
			}
			if got := treeDigest(t, m.path("/var/lib/rancher/k3s")); got != data {
				t.Fatal("the recovery changed the k3s data directory")
			}
		})
	}
}
