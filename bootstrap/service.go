package bootstrap

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Runner runs a system command (systemctl, rc-service, journalctl). Tests record it.
type Runner interface {
	Run(ctx context.Context, name string, args ...string) ([]byte, error)
}

// ExecRunner runs commands for real.
type ExecRunner struct{}

// Run runs name with args and returns its combined output.
func (ExecRunner) Run(ctx context.Context, name string, args ...string) ([]byte, error) {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return out, nil
}

// Supervisor keeps the k3s server running: systemd, OpenRC, or harmony itself where there is no
// init system (containers, WSL without systemd).
type Supervisor interface {
	Name() string
	// Install writes the service definition.
	Install(ctx context.Context) error
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	// Running returns whether k3s runs, and its pid when known.
	Running(ctx context.Context) (bool, int)
	// Remove deletes the service definition.
	Remove(ctx context.Context) error
	// LogTail returns the last n lines of the k3s log.
	LogTail(ctx context.Context, n int) string
}

// refreshUnit brings a service definition harmony wrote up to date before k3s starts again: one
// written by an older harmony lacks what this machine needs now (the cgroup v1 flag, the
// nm-cloud-setup guard). harmony owns the unit; k3s's own settings live in
// /etc/rancher/k3s/config.yaml. A missing unit is left to Install.
func refreshUnit(path, want string, mode os.FileMode) (bool, error) {
	have, err := os.ReadFile(path)
	if err != nil || string(have) == want {
		return false, nil
	}
	if err := writeFile(path, want, mode); err != nil {
		return false, fmt.Errorf("update %s: %w", path, err)
	}
	return true, nil
}

// DetectSupervisor picks systemd when it runs as init, else OpenRC when present, else harmony's
// own supervision.
func DetectSupervisor(p Paths, r Runner) Supervisor {
	if isDir(p.SystemdRunDir()) {
		return &systemd{paths: p, runner: r}
	}
	if fileExists(p.OpenRCRun()) {
		return &openrc{paths: p, runner: r}
	}
	return &noInit{paths: p}
}

// SystemdUnit renders the k3s unit as the upstream installer writes it (with its guard against
// NetworkManager's nm-cloud-setup, which breaks k3s's pod network: k3s does not start while it is
// enabled), plus the script that keeps the cluster's apps on this machine (firewall.go), run
// before k3s starts when it is there. args are added to "k3s server" as upstream adds them.
func SystemdUnit(args ...string) string {
	return `[Unit]
Description=Lightweight Kubernetes
Documentation=https://k3s.io
Wants=network-online.target
After=network-online.target

[Install]
WantedBy=multi-user.target

[Service]
Type=notify
EnvironmentFile=-/etc/default/%N
EnvironmentFile=-/etc/sysconfig/%N
EnvironmentFile=-/etc/systemd/system/k3s.service.env
KillMode=process
Delegate=yes
User=root
# Having non-zero Limit*s causes performance problems due to accounting overhead
# in the kernel. We recommend using cgroups to do container-local accounting.
LimitNOFILE=1048576
LimitNPROC=infinity
LimitCORE=infinity
TasksMax=infinity
TimeoutStartSec=0
Restart=always
RestartSec=5s
ExecStartPre=/bin/sh -xc '! /usr/bin/systemctl is-enabled --quiet nm-cloud-setup.service 2>/dev/null'
ExecStartPre=-/sbin/modprobe br_netfilter
ExecStartPre=-/sbin/modprobe overlay
ExecStartPre=-/bin/sh /etc/rancher/k3s/harmony-local-only.sh
ExecStart=/usr/local/bin/k3s \
    server \
` + unitArgs(args) + `
`
}

// unitArgs renders args as upstream's installer does in ExecStart: one quoted argument a line.
func unitArgs(args []string) string {
	var b strings.Builder
	for _, a := range args {
		b.WriteString("\t" + shellQuote(a) + " \\\n")
	}
	return b.String()
}

// shellQuote quotes s for sh and systemd alike.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// OpenRCScript renders the k3s OpenRC service as the upstream installer writes it, plus the
// script that keeps the cluster's apps on this machine (firewall.go). args are added to
// "k3s server".
func OpenRCScript(args ...string) string {
	quoted := make([]string, 0, len(args)+1)
	quoted = append(quoted, "server")
	for _, a := range args {
		quoted = append(quoted, shellQuote(a))
	}
	return `#!/sbin/openrc-run

depend() {
    after network-online
    want cgroups
}

start_pre() {
    rm -f /tmp/k3s.*
    if [ -f /etc/rancher/k3s/harmony-local-only.sh ]; then /bin/sh /etc/rancher/k3s/harmony-local-only.sh || true; fi
}

supervisor=supervise-daemon
name=k3s
command="/usr/local/bin/k3s"
command_args="` + strings.Join(quoted, " ") + `  >>/var/log/k3s.log 2>&1"

output_log=/var/log/k3s.log
error_log=/var/log/k3s.log

pidfile="/var/run/k3s.pid"
respawn_delay=5
respawn_max=0

set -o allexport
if [ -f /etc/environment ]; then . /etc/environment; fi
if [ -f /etc/rancher/k3s/k3s.env ]; then . /etc/rancher/k3s/k3s.env; fi
set +o allexport
`
}

type systemd struct {
	paths  Paths
	runner Runner
}

func (s *systemd) Name() string { return "systemd" }

func (s *systemd) unit() string { return SystemdUnit(s.paths.serverArgs()...) }

func (s *systemd) Install(ctx context.Context) error {
	if err := writeFile(s.paths.SystemdUnit(), s.unit(), 0o644); err != nil {
		return err
	}
	if !fileExists(s.paths.SystemdEnv()) {
		if err := writeFile(s.paths.SystemdEnv(), "", 0o600); err != nil {
			return err
		}
	}
	if _, err := s.runner.Run(ctx, "systemctl", "daemon-reload"); err != nil {
		return err
	}
	_, err := s.runner.Run(ctx, "systemctl", "enable", "k3s")
	return err
}

func (s *systemd) Start(ctx context.Context) error {
	if changed, err := refreshUnit(s.paths.SystemdUnit(), s.unit(), 0o644); err != nil {
		return err
	} else if changed {
		if _, err := s.runner.Run(ctx, "systemctl", "daemon-reload"); err != nil {
			return err
		}
	}
	_, err := s.runner.Run(ctx, "systemctl", "restart", "k3s")
	return err
}

func (s *systemd) Stop(ctx context.Context) error {
	_, err := s.runner.Run(ctx, "systemctl", "stop", "k3s")
	return err
}

func (s *systemd) Running(ctx context.Context) (bool, int) {
	_, err := s.runner.Run(ctx, "systemctl", "is-active", "--quiet", "k3s")
	return err == nil, 0
}

func (s *systemd) Remove(ctx context.Context) error {
	_, _ = s.runner.Run(ctx, "systemctl", "disable", "k3s")
	err := errors.Join(removeIfExists(s.paths.SystemdUnit()), removeIfExists(s.paths.SystemdEnv()))
	_, _ = s.runner.Run(ctx, "systemctl", "daemon-reload")
	return err
}

func (s *systemd) LogTail(ctx context.Context, n int) string {
	out, _ := s.runner.Run(ctx, "journalctl", "-u", "k3s", "-n", fmt.Sprint(n), "--no-pager")
	return string(out)
}

type openrc struct {
	paths  Paths
	runner Runner
}

func (o *openrc) Name() string { return "openrc" }

func (o *openrc) script() string { return OpenRCScript(o.paths.serverArgs()...) }

func (o *openrc) Install(ctx context.Context) error {
	if err := writeFile(o.paths.OpenRCScript(), o.script(), 0o755); err != nil {
		return err
	}
	if !fileExists(o.paths.OpenRCEnv()) {
		if err := writeFile(o.paths.OpenRCEnv(), "", 0o600); err != nil {
			return err
		}
	}
	_, err := o.runner.Run(ctx, "rc-update", "add", "k3s", "default")
	return err
}

func (o *openrc) Start(ctx context.Context) error {
	if _, err := refreshUnit(o.paths.OpenRCScript(), o.script(), 0o755); err != nil {
		return err
	}
	_, err := o.runner.Run(ctx, "rc-service", "k3s", "restart")
	return err
}

func (o *openrc) Stop(ctx context.Context) error {
	_, err := o.runner.Run(ctx, "rc-service", "k3s", "stop")
	return err
}

func (o *openrc) Running(ctx context.Context) (bool, int) {
	_, err := o.runner.Run(ctx, "rc-service", "k3s", "status")
	return err == nil, 0
}

func (o *openrc) Remove(ctx context.Context) error {
	_, _ = o.runner.Run(ctx, "rc-update", "delete", "k3s", "default")
	return removeIfExists(o.paths.OpenRCScript())
}

func (o *openrc) LogTail(_ context.Context, n int) string { return tailFile(o.paths.Log(), n) }

// noInit is harmony's own supervision: k3s server runs detached in its own session, with a pid
// file and a log file; harmony runtime start/stop manage it.
type noInit struct {
	paths Paths
}

func (n *noInit) Name() string                  { return "harmony (no init system)" }
func (n *noInit) Install(context.Context) error { return nil }
func (n *noInit) Remove(context.Context) error  { return removeIfExists(n.paths.PidFile()) }
func (n *noInit) LogTail(_ context.Context, lines int) string {
	return tailFile(n.paths.Log(), lines)
}

// serverArgs are the k3s server flags: upstream's defaults, spelled out so HARMONY_ROOT moves them,
// and what this machine needs (Paths.serverArgs), as the service units have them.
func (n *noInit) serverArgs() []string {
	return append([]string{"server",
		"--config", n.paths.ConfigFile(),
		"--data-dir", n.paths.DataDir(),
		"--write-kubeconfig", n.paths.KubeconfigFile(),
		"--write-kubeconfig-mode", "0600",
	}, n.paths.serverArgs()...)
}

func (n *noInit) Start(ctx context.Context) error {
	if ok, _ := n.Running(ctx); ok {
		return nil
	}
	if err := os.MkdirAll(dirOf(n.paths.Log()), 0o755); err != nil {
		return err
	}
	if fileExists(n.paths.FirewallScript()) {
		_, _ = n.paths.runFirewall(ctx, "on") // as systemd's ExecStartPre=-: bootstrap reports a failure
	}
	log, err := os.OpenFile(n.paths.Log(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open k3s log: %w", err)
	}
	defer log.Close()
	fmt.Fprintf(log, "--- started by harmony at %s ---\n", time.Now().UTC().Format(time.RFC3339))
	pid, err := startDetached(n.paths.Binary(), n.serverArgs(), log)
	if err != nil {
		return fmt.Errorf("start k3s server: %w", err)
	}
	exe, _ := filepath.EvalSymlinks(n.paths.Binary())
	proc, err := identify(pid, exe)
	if err != nil {
		// It exited at once: no pid file, and the readiness wait reports it with its log.
		return removeIfExists(n.paths.PidFile())
	}
	return writeFile(n.paths.PidFile(), proc.encode(), 0o644)
}

// process returns the k3s harmony started, when its pid file names a process that is still it.
func (n *noInit) process() (k3sProcess, bool) {
	p, err := readPidFile(n.paths.PidFile())
	return p, err == nil && p.alive()
}

func (n *noInit) Running(context.Context) (bool, int) {
	p, ok := n.process()
	if !ok {
		return false, 0
	}
	return true, p.PID
}

func (n *noInit) Stop(context.Context) error {
	p, ok := n.process()
	if !ok {
		// Not running, or the pid now names another process, which is left alone.
		return removeIfExists(n.paths.PidFile())
	}
	if err := p.signal(syscall.SIGTERM); err != nil && !errors.Is(err, errNotOurs) {
		return fmt.Errorf("stop k3s (pid %d): %w", p.PID, err)
	}
	if !p.waitExit(20 * time.Second) {
		_ = p.signal(syscall.SIGKILL)
		if !p.waitExit(10 * time.Second) {
			return fmt.Errorf("stop k3s (pid %d): it still runs 10 s after SIGKILL", p.PID)
		}
	}
	return removeIfExists(n.paths.PidFile())
}

// k3sProcess is the k3s server harmony started, as its pid file records it. A pid alone can name
// any process after a reboot (privilege confusion: harmony, as root, would report or kill it),
// so the file also keeps the process's start time and executable, and harmony reports or
// signals the pid only while both still match.
type k3sProcess struct {
	PID int
	// Start is the start time in clock ticks after boot (field 22 of /proc/<pid>/stat).
	Start uint64
	// Exe is the executable, as /proc/<pid>/exe names it.
	Exe string
}

// errNotOurs means the pid no longer names the k3s harmony started.
var errNotOurs = errors.New("the process is not the k3s harmony started")

// encode returns the pid file: pid, start time and executable, one a line.
func (p k3sProcess) encode() string { return fmt.Sprintf("%d\n%d\n%s\n", p.PID, p.Start, p.Exe) }

// readPidFile reads a pid file written by encode. A file without the start time and executable
// (as harmony wrote it before) cannot be checked and is treated as stale.
func readPidFile(path string) (k3sProcess, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return k3sProcess{}, err
	}
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 3 || lines[2] == "" {
		return k3sProcess{}, fmt.Errorf("pid file %q: want pid, start time and executable", path)
	}
	pid, err1 := strconv.Atoi(lines[0])
	start, err2 := strconv.ParseUint(lines[1], 10, 64)
	if err1 != nil || err2 != nil || pid <= 0 {
		return k3sProcess{}, fmt.Errorf("pid file %q: want pid, start time and executable", path)
	}
	return k3sProcess{PID: pid, Start: start, Exe: lines[2]}, nil
}
