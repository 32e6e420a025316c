package bootstrap

import (
	"os"
	"path/filepath"

	"github.com/NationTech/harmony-agent/installer"
)

// RootEnv names the variable that prefixes every system path (like DESTDIR), so packaging and
// tests can run the whole flow without touching the real system.
const RootEnv = installer.RootEnv

// Paths are the system locations of the k3s runtime. Each field is the real path under Root;
// the System* methods give the path as the running system sees it (for unit files).
type Paths struct {
	Root string
}

// SystemPaths returns the paths under HARMONY_ROOT (or /).
func SystemPaths() Paths {
	root := os.Getenv(RootEnv)
	if root == "" {
		root = "/"
	}
	return Paths{Root: root}
}

// Prefixed reports whether HARMONY_ROOT moves the system paths.
func (p Paths) Prefixed() bool { return filepath.Clean(p.Root) != "/" }

func (p Paths) at(path string) string { return filepath.Join(p.Root, path) }

// The layout. Upstream k3s paths stay where every k3s doc expects them.
const (
	sysVersionsDir = "/var/lib/harmony/k3s"
	sysBinDir      = "/usr/local/bin"
	sysConfigDir   = "/etc/rancher/k3s"
	sysDataDir     = "/var/lib/rancher/k3s"
	sysSystemdDir  = "/etc/systemd/system"
	sysOpenRCDir   = "/etc/init.d"
	sysLog         = "/var/log/k3s.log"
	sysPidFile     = "/var/lib/harmony/k3s/k3s.pid"
	sysAgentDir    = "/var/lib/harmony/agent"
	sysHarmonyConf = "/etc/harmony/config.yaml"
	sysCronD       = "/etc/cron.d"
	sysPeriodic    = "/etc/periodic/daily"
)

func (p Paths) VersionsDir() string         { return p.at(sysVersionsDir) }
func (p Paths) VersionDir(v string) string  { return filepath.Join(p.VersionsDir(), v) }
func (p Paths) CurrentLink() string         { return filepath.Join(p.VersionsDir(), "current") }
func (p Paths) Binary() string              { return p.at(sysBinDir + "/k3s") }
func (p Paths) BinDir() string              { return p.at(sysBinDir) }
func (p Paths) ConfigDir() string           { return p.at(sysConfigDir) }
func (p Paths) ConfigFile() string          { return p.at(sysConfigDir + "/config.yaml") }
func (p Paths) KubeconfigFile() string      { return p.at(sysConfigDir + "/k3s.yaml") }
func (p Paths) DataDir() string             { return p.at(sysDataDir) }
func (p Paths) AirgapDir() string           { return p.at(sysDataDir + "/agent/images") }
func (p Paths) SystemdUnit() string         { return p.at(sysSystemdDir + "/k3s.service") }
func (p Paths) SystemdEnv() string          { return p.at(sysSystemdDir + "/k3s.service.env") }
func (p Paths) OpenRCScript() string        { return p.at(sysOpenRCDir + "/k3s") }
func (p Paths) OpenRCEnv() string           { return p.at(sysConfigDir + "/k3s.env") }
func (p Paths) Log() string                 { return p.at(sysLog) }
func (p Paths) PidFile() string             { return p.at(sysPidFile) }
func (p Paths) Marker() string              { return filepath.Join(p.VersionsDir(), "installed-by-harmony") }
func (p Paths) UpstreamUninstaller() string { return p.at(sysBinDir + "/k3s-uninstall.sh") }
func (p Paths) ToolLink(tool string) string { return p.at(sysBinDir + "/" + tool) }
func (p Paths) SystemdRunDir() string       { return p.at("/run/systemd/system") }
func (p Paths) OpenRCRun() string           { return p.at("/sbin/openrc-run") }

// The upgrade journal, its lock and the version the last switch left (kept for rollback) live
// beside the versioned layout.
func (p Paths) Journal() string      { return filepath.Join(p.VersionsDir(), "upgrade-journal.json") }
func (p Paths) SwitchLock() string   { return filepath.Join(p.VersionsDir(), "upgrade.lock") }
func (p Paths) PreviousLink() string { return filepath.Join(p.VersionsDir(), "previous") }

// The agent's system files: its log, harmony's system config, and its schedule.
func (p Paths) AgentDir() string            { return p.at(sysAgentDir) }
func (p Paths) SystemConfig() string        { return p.at(sysHarmonyConf) }
func (p Paths) AgentSystemdService() string { return p.at(sysSystemdDir + "/harmony-agent.service") }
func (p Paths) AgentSystemdTimer() string   { return p.at(sysSystemdDir + "/harmony-agent.timer") }
func (p Paths) CronDir() string             { return p.at(sysCronD) }
func (p Paths) AgentCron() string           { return p.at(sysCronD + "/harmony-agent") }
func (p Paths) PeriodicDir() string         { return p.at(sysPeriodic) }
func (p Paths) AgentPeriodic() string       { return p.at(sysPeriodic + "/harmony-agent") }
