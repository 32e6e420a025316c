package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"github.com/NationTech/harmony-agent/installer"
	"github.com/NationTech/harmony-agent/internal/hint"
)

// AgentCommand is what a schedule runs.
const AgentCommand = "agent --once"

// agentEnvFile holds the environment the scheduled agent needs (HARMONY_MIRROR).
const agentEnvFile = "/etc/harmony/agent.env"

// AgentSystemdService renders the oneshot unit the timer starts; harmony is the binary's path.
// TimeoutStartSec bounds a run even if something inside harmony fails to: a oneshot unit has
// no start timeout by default, and a run that never ends would keep every later one from
// starting. Two hours hold the slowest download harmony accepts (the pinned size at 64 KiB/s,
// plus 5 minutes) and an upgrade's health waits and way back; systemd's SIGTERM is then an
// interruption harmony undoes like Ctrl-C.
func AgentSystemdService(harmony string) string {
	return `[Unit]
Description=harmony agent: keep the local Kubernetes runtime patched
Wants=network-online.target
After=network-online.target k3s.service

[Service]
Type=oneshot
EnvironmentFile=-` + agentEnvFile + `
ExecStart=` + harmony + ` ` + AgentCommand + `
Nice=10
TimeoutStartSec=2h
`
}

// AgentSystemdTimer renders the agent's timer: daily with jitter, or inside the maintenance
// window ("HH:MM-HH:MM") when one is set. Persistent catches up on a run missed while off.
func AgentSystemdTimer(window string) string {
	when, delay := "daily", "4h"
	if start, end, err := ParseWindow(window); err == nil {
		span := (end - start + 24*60) % (24 * 60)
		when = fmt.Sprintf("*-*-* %02d:%02d:00", start/60, start%60)
		delay = fmt.Sprintf("%dmin", max(1, span-5)) // leave a few minutes for the upgrade itself
	}
	return `[Unit]
Description=Run the harmony agent daily

[Timer]
OnCalendar=` + when + `
RandomizedDelaySec=` + delay + `
Persistent=true

[Install]
WantedBy=timers.target
`
}

// AgentCron renders the /etc/cron.d entry (minute and hour are the jitter chosen at install).
func AgentCron(harmony string, minute, hour int) string {
	return fmt.Sprintf(`# harmony agent: keep the local Kubernetes runtime patched (written by harmony bootstrap)
SHELL=/bin/sh
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
%d %d * * * root set -a; [ -f %s ] && . %s; set +a; exec %s %s >/dev/null 2>&1
`, minute, hour, agentEnvFile, agentEnvFile, harmony, AgentCommand)
}

// AgentPeriodic renders the /etc/periodic/daily script (Alpine and other OpenRC systems run
// that folder once a day); it sleeps a random part of an hour first, as jitter.
func AgentPeriodic(harmony string) string {
	return `#!/bin/sh
# harmony agent: keep the local Kubernetes runtime patched (written by harmony bootstrap)
set -eu
main() {
	sleep "$(($(od -An -N2 -tu2 /dev/urandom | tr -d ' ') % 3600))"
	set -a
	# shellcheck source=/dev/null
	if [ -f ` + agentEnvFile + ` ]; then . ` + agentEnvFile + `; fi
	set +a
	exec ` + harmony + ` ` + AgentCommand + `
}
main "$@"
`
}

// AgentPaths returns where the k3s agent keeps its log and reads its settings (system paths:
// the agent runs as root).
func (k *K3s) AgentPaths() AgentPaths {
	return AgentPaths{Dir: k.Paths.AgentDir(), Config: k.Paths.SystemConfig()}
}

// AgentHost is a runtime whose agent harmony schedules (k3s: a system timer run as root).
type AgentHost interface {
	AgentPaths() AgentPaths
	AgentSchedule() string
	InstallAgent(ctx context.Context) (string, error)
	RemoveAgent(ctx context.Context) error
	RescheduleAgent(ctx context.Context) error
}

// AgentSchedule says how the agent is scheduled on this machine, "" when it is not.
func (k *K3s) AgentSchedule() string {
	switch {
	case fileExists(k.Paths.AgentSystemdTimer()):
		return "systemd timer harmony-agent.timer"
	case fileExists(k.Paths.AgentPeriodic()):
		return "daily (" + k.Paths.AgentPeriodic() + ")"
	case fileExists(k.Paths.AgentCron()):
		return "cron (" + k.Paths.AgentCron() + ")"
	}
	return ""
}

// checkAgentPath refuses a binary path the schedules could not run as written: the systemd
// unit, the cron line and the periodic script name it bare, and a space, quote or shell
// character there would split it or run something else as root.
func checkAgentPath(p string) error {
	for _, r := range p {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._+-@", r)
		if !ok {
			return hint.With(fmt.Errorf("the harmony binary's path %q holds %q: %w", p, r, ErrAgentPathUnsafe),
				"install harmony where its path holds only letters, digits and / . _ + - @ (e.g. /usr/local/bin/harmony), then enable the agent again")
		}
	}
	return nil
}

// ErrAgentPathUnsafe means the schedule cannot name the harmony binary's path safely.
var ErrAgentPathUnsafe = errors.New("a schedule cannot run a path with spaces or shell characters")

// ErrAgentBinaryUnsafe means root would run a harmony binary another user can replace.
var ErrAgentBinaryUnsafe = errors.New("root must not run a harmony binary another user can write")

// agentBinary returns the harmony binary the schedule runs, refusing one that root should not
// run unattended (writable by another user, through the file or any directory above it).
func (k *K3s) agentBinary() (string, error) {
	if k.HarmonyBinary != "" {
		return k.HarmonyBinary, checkAgentPath(k.HarmonyBinary)
	}
	self, err := os.Executable()
	if err != nil {
		return "", err
	}
	if self, err = filepath.EvalSymlinks(self); err != nil {
		return "", err
	}
	if isRoot() {
		for p := self; ; p = filepath.Dir(p) {
			if writableByOthers(p) {
				return "", fmt.Errorf("%s: %w", p, ErrAgentBinaryUnsafe)
			}
			if p == filepath.Dir(p) {
				break
			}
		}
	}
	return self, checkAgentPath(self)
}

// InstallAgent schedules `harmony agent --once`: a systemd timer where systemd runs, the daily
// periodic folder or cron elsewhere. With no scheduler it returns ErrNoScheduler, whose hint is
// the command to schedule by hand. It returns a description of the schedule.
func (k *K3s) InstallAgent(ctx context.Context) (string, error) {
	harmony, err := k.agentBinary()
	if err != nil {
		return "", err
	}
	settings, err := LoadAgentSettings(k.Paths.SystemConfig())
	if err != nil {
		return "", err
	}
	if mirror := os.Getenv(installer.MirrorEnv); mirror != "" {
		// cron and periodic scripts source this file as shell, as root: the value is checked
		// (no shell syntax can pass CheckMirror) and single-quoted (systemd reads the same).
		// Only root reads it: a mirror URL may carry a password.
		if err := installer.CheckMirror(mirror); err != nil {
			return "", err
		}
		if err := writeFile(k.Paths.at(agentEnvFile), installer.MirrorEnv+"='"+strings.TrimSpace(mirror)+"'\n", 0o600); err != nil {
			return "", err
		}
	}
	switch k.supervisor().(type) {
	case *systemd:
		if err := writeFile(k.Paths.AgentSystemdService(), AgentSystemdService(harmony), 0o644); err != nil {
			return "", err
		}
		if err := writeFile(k.Paths.AgentSystemdTimer(), AgentSystemdTimer(settings.Window), 0o644); err != nil {
			return "", err
		}
		if _, err := k.Runner.Run(ctx, "systemctl", "daemon-reload"); err != nil {
			return "", err
		}
		if _, err := k.Runner.Run(ctx, "systemctl", "enable", "--now", "harmony-agent.timer"); err != nil {
			return "", err
		}
		return "systemd timer harmony-agent.timer", nil
	case *openrc:
		if isDir(k.Paths.PeriodicDir()) {
			if err := writeFile(k.Paths.AgentPeriodic(), AgentPeriodic(harmony), 0o755); err != nil {
				return "", err
			}
			return "daily (" + k.Paths.AgentPeriodic() + ")", nil
		}
	}
	if isDir(k.Paths.CronDir()) && !k.noInit() {
		if err := writeFile(k.Paths.AgentCron(), AgentCron(harmony, rand.IntN(60), rand.IntN(24)), 0o644); err != nil {
			return "", err
		}
		return "cron (" + k.Paths.AgentCron() + ")", nil
	}
	return "", &NoSchedulerError{Command: harmony + " " + AgentCommand}
}

func (k *K3s) noInit() bool { _, ok := k.supervisor().(*noInit); return ok }

// NoSchedulerError means nothing on this machine runs programs on a schedule.
type NoSchedulerError struct{ Command string }

func (e *NoSchedulerError) Error() string {
	return "no scheduler to run the harmony agent (no systemd, no cron): schedule '" + e.Command + "' daily yourself, e.g. from the host's crontab"
}

// RemoveAgent removes the agent's schedule (its log and settings stay).
func (k *K3s) RemoveAgent(ctx context.Context) error {
	var errs []error
	if fileExists(k.Paths.AgentSystemdTimer()) {
		_, _ = k.Runner.Run(ctx, "systemctl", "disable", "--now", "harmony-agent.timer")
	}
	for _, p := range []string{k.Paths.AgentSystemdTimer(), k.Paths.AgentSystemdService(), k.Paths.AgentCron(), k.Paths.AgentPeriodic(), k.Paths.at(agentEnvFile)} {
		errs = append(errs, removeIfExists(p))
	}
	if _, ok := k.supervisor().(*systemd); ok {
		_, _ = k.Runner.Run(ctx, "systemctl", "daemon-reload")
	}
	return errors.Join(errs...)
}

// RescheduleAgent rewrites the systemd timer after the maintenance window changed.
func (k *K3s) RescheduleAgent(ctx context.Context) error {
	if !fileExists(k.Paths.AgentSystemdTimer()) {
		return nil
	}
	_, err := k.InstallAgent(ctx)
	return err
}
