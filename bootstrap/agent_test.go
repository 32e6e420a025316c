package bootstrap_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/NationTech/harmony-agent/bootstrap"
	"github.com/NationTech/harmony-agent/installer"
	"github.com/NationTech/harmony-agent/manifests"
)

func TestAgentScheduleOnSystemd(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "run/systemd/system"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := &recorder{}
	k := &bootstrap.K3s{Paths: bootstrap.Paths{Root: root}, Runner: r, HarmonyBinary: "/usr/local/bin/harmony"}
	ctx := context.Background()
	how, err := k.InstallAgent(ctx)
	if err != nil || how != "systemd timer harmony-agent.timer" || k.AgentSchedule() != how {
		t.Fatalf("InstallAgent: %q, %v", how, err)
	}
	unit, _ := os.ReadFile(filepath.Join(root, "etc/systemd/system/harmony-agent.service"))
	timer, _ := os.ReadFile(filepath.Join(root, "etc/systemd/system/harmony-agent.timer"))
	if string(unit) != bootstrap.AgentSystemdService("/usr/local/bin/harmony") || string(timer) != bootstrap.AgentSystemdTimer("") {
		t.Fatalf("unit files differ from the rendered ones:\n%s\n%s", unit, timer)
	}
	if want := "systemctl daemon-reload\nsystemctl enable --now harmony-agent.timer"; strings.Join(r.calls, "\n") != want {
		t.Fatalf("calls:\n%s", strings.Join(r.calls, "\n"))
	}

	// A maintenance window moves the timer into it.
	if err := bootstrap.SaveAgentSettings(k.AgentPaths().Config, bootstrap.AgentSettings{Window: "02:00-05:00"}); err != nil {
		t.Fatal(err)
	}
	if err := k.RescheduleAgent(ctx); err != nil {
		t.Fatal(err)
	}
	timer, _ = os.ReadFile(filepath.Join(root, "etc/systemd/system/harmony-agent.timer"))
	if !strings.Contains(string(timer), "OnCalendar=*-*-* 02:00:00\nRandomizedDelaySec=175min") {
		t.Fatalf("timer after a window was set:\n%s", timer)
	}

	r.calls = nil
	if err := k.RemoveAgent(ctx); err != nil {
		t.Fatal(err)
	}
	if k.AgentSchedule() != "" || !strings.Contains(strings.Join(r.calls, "\n"), "systemctl disable --now harmony-agent.timer") {
		t.Fatalf("after RemoveAgent: schedule %q, calls %v", k.AgentSchedule(), r.calls)
	}
}

func TestAgentScheduleWithoutAScheduler(t *testing.T) {
	t.Parallel()
	k := &bootstrap.K3s{Paths: bootstrap.Paths{Root: t.TempDir()}, Runner: &recorder{}, HarmonyBinary: "/opt/harmony"}
	_, err := k.InstallAgent(context.Background())
	var none *bootstrap.NoSchedulerError
	if !errors.As(err, &none) || !strings.Contains(err.Error(), "schedule '/opt/harmony agent --once' daily yourself") {
		t.Fatalf("err %v", err)
	}
}

func TestAgentSettings(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(path, []byte("launch:\n  timeout: 5m\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := bootstrap.LoadAgentSettings(path)
	if err != nil || !s.AutoPatching() || s.Window != "" {
		t.Fatalf("defaults: %+v %v", s, err)
	}
	off := false
	if err := bootstrap.SaveAgentSettings(path, bootstrap.AgentSettings{AutoPatch: &off, Window: "23:00-02:00"}); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if !strings.Contains(string(b), "timeout: 5m") {
		t.Fatalf("other settings lost:\n%s", b)
	}
	if s, err = bootstrap.LoadAgentSettings(path); err != nil || s.AutoPatching() || s.Window != "23:00-02:00" {
		t.Fatalf("reloaded: %+v %v", s, err)
	}
	at := func(hhmm string) time.Time {
		t0, _ := time.ParseInLocation("15:04", hhmm, time.Local)
		return t0
	}
	for clock, want := range map[string]bool{"22:59": false, "23:00": true, "01:30": true, "02:00": false, "12:00": false} {
		if got := s.InWindow(at(clock)); got != want {
			t.Errorf("InWindow(%s) = %v, want %v", clock, got, want)
		}
	}
	for _, bad := range []string{"2-5", "02:00", "25:00-01:00", "02:00-02:00", "02:0-03:00"} {
		if _, _, err := bootstrap.ParseWindow(bad); !errors.Is(err, bootstrap.ErrBadWindow) {
			t.Errorf("ParseWindow(%q): %v", bad, err)
		}
	}
	if err := os.WriteFile(path, []byte("agent: {window: nonsense}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := bootstrap.LoadAgentSettings(path); !errors.Is(err, bootstrap.ErrBadWindow) {
		t.Fatalf("bad window in config.yaml: %v", err)
	}
}

func TestPlanUpgrade(t *testing.T) {
	t.Parallel()
	m, err := manifests.Load()
	if err != nil {
		t.Fatal(err)
	}
	const platform = "linux/amd64"
	tests := []struct {
		name, installed string
		opts            bootstrap.UpgradeOptions
		want            string
		wantErr         error
	}{
		{"newest patch", "v1.36.2+k3s1", bootstrap.UpgradeOptions{}, "v1.36.4+k3s1", nil},
		{"already newest", "v1.36.4+k3s1", bootstrap.UpgradeOptions{}, "", nil},
		{"explicit patch", "v1.36.2+k3s1", bootstrap.UpgradeOptions{To: "v1.36.3+k3s1"}, "v1.36.3+k3s1", nil},
		{"explicit same", "v1.36.4+k3s1", bootstrap.UpgradeOptions{To: "v1.36.4+k3s1"}, "", nil},
		{"downgrade is a rollback", "v1.36.4+k3s1", bootstrap.UpgradeOptions{To: "v1.36.2+k3s1"}, "", manifests.ErrDowngrade},
		{"minor without the flag", "v1.35.9+k3s1", bootstrap.UpgradeOptions{To: "v1.36.4+k3s1"}, "", manifests.ErrMinorUpgrade},
		{"minor with the flag", "v1.35.9+k3s1", bootstrap.UpgradeOptions{To: "v1.36.4+k3s1", AllowMinor: true}, "v1.36.4+k3s1", nil},
		{"newest minor with the flag", "v1.35.9+k3s1", bootstrap.UpgradeOptions{AllowMinor: true}, "v1.36.4+k3s1", nil},
		{"no minor without the flag", "v1.35.9+k3s1", bootstrap.UpgradeOptions{}, "", nil},
		{"two minors at once", "v1.34.1+k3s1", bootstrap.UpgradeOptions{To: "v1.36.4+k3s1", AllowMinor: true}, "", manifests.ErrMinorSkip},
		{"not pinned", "v1.36.2+k3s1", bootstrap.UpgradeOptions{To: "v1.36.9+k3s1"}, "", manifests.ErrNotPinned},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rel, held, err := bootstrap.PlanUpgrade(m, tt.installed, tt.opts, platform)
			if !errors.Is(err, tt.wantErr) || rel.Version.String() != tt.want {
				t.Fatalf("got %q, %v; want %q, %v", rel.Version.String(), err, tt.want, tt.wantErr)
			}
			if tt.name == "no minor without the flag" && !strings.Contains(held, "v1.36.4+k3s1 (a new minor: --allow-minor)") {
				t.Fatalf("held %q", held)
			}
		})
	}
}

// TestAgentEnvironmentFileRunsNoMirrorShell: HARMONY_MIRROR is written into the root agent's
// environment file, which cron and periodic scripts source as shell: a mirror value holding
// shell syntax once made root run it. It is refused, and a valid value is written quoted and
// reads back exactly.
func TestAgentEnvironmentFileRunsNoMirrorShell(t *testing.T) {
	root := t.TempDir()
	pwned := filepath.Join(t.TempDir(), "pwned")
	if err := os.MkdirAll(filepath.Join(root, "run/systemd/system"), 0o755); err != nil {
		t.Fatal(err)
	}
	k := &bootstrap.K3s{Paths: bootstrap.Paths{Root: root}, Runner: &recorder{}, HarmonyBinary: "/usr/local/bin/harmony"}
	envFile := filepath.Join(root, "etc/harmony/agent.env")
	t.Setenv("HARMONY_MIRROR", "https://m.example/$(touch "+pwned+")")
	if _, err := k.InstallAgent(context.Background()); !errors.Is(err, installer.ErrBadMirror) {
		t.Fatalf("InstallAgent with shell syntax in HARMONY_MIRROR: %v, want ErrBadMirror", err)
	}
	if b, err := os.ReadFile(envFile); err == nil {
		t.Fatalf("the environment file was written: %s", b)
	}

	const mirror = "https://user@m.example:8443/gh%20mirror/"
	t.Setenv("HARMONY_MIRROR", mirror)
	if _, err := k.InstallAgent(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Sourced the way the cron line and the periodic script source it.
	out, err := exec.Command("sh", "-c", `set -a; . "$1"; set +a; printf %s "$HARMONY_MIRROR"`, "sh", envFile).Output()
	if err != nil || string(out) != mirror {
		t.Fatalf("sourced environment file gives %q (%v), want %q", out, err, mirror)
	}
	if _, err := os.Stat(pwned); !os.IsNotExist(err) {
		t.Fatal("sourcing the environment file ran a command")
	}
}

// The schedules name the harmony binary bare (unit, cron line, periodic script): a path with a
// space or shell characters is refused, never written where root would run it split or as shell.
func TestAgentRefusesABinaryPathItCannotNameSafely(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "run/systemd/system"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, bin := range []string{"/opt/my tools/harmony", "/opt/x;touch /tmp/pwned/harmony", "/opt/$(id)/harmony", "/opt/a'b/harmony"} {
		k := &bootstrap.K3s{Paths: bootstrap.Paths{Root: root}, Runner: &recorder{}, HarmonyBinary: bin}
		if _, err := k.InstallAgent(context.Background()); !errors.Is(err, bootstrap.ErrAgentPathUnsafe) {
			t.Errorf("InstallAgent with the binary %q: %v, want ErrAgentPathUnsafe", bin, err)
		}
	}
	if _, err := os.Stat(filepath.Join(root, "etc/systemd/system/harmony-agent.service")); !os.IsNotExist(err) {
		t.Fatalf("a unit was written (%v)", err)
	}
}
