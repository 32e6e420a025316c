package bootstrap

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/NationTech/harmony-agent/installer"
)

// The agent is harmony's unattended part: `harmony agent --once`, run daily by a systemd timer
// (or cron), does one cycle: finish any interrupted switch, refresh the signed runtime manifest,
// apply an allowed patch when auto-patching is on and the maintenance window is open, and log
// what it checked, decided and did. It works with any runtime that can be upgraded.

// Upgrader is what the agent needs of a runtime.
type Upgrader interface {
	Name() string
	Detect(ctx context.Context) (Installation, error)
	Upgrade(ctx context.Context, opts UpgradeOptions) (UpgradeResult, error)
	Recover(ctx context.Context) (*Recovery, error)
}

// AgentPaths are where the agent keeps its log and reads its settings.
type AgentPaths struct {
	// Dir holds agent.log (one JSON object a line).
	Dir string
	// Config is harmony's config.yaml; its "agent" section holds the settings.
	Config string
}

// Log is the agent's log file.
func (p AgentPaths) Log() string { return filepath.Join(p.Dir, "agent.log") }

// AgentSettings are the "agent" section of config.yaml.
type AgentSettings struct {
	// AutoPatch applies allowed patches unattended; on unless set to false.
	AutoPatch *bool `json:"autoPatch,omitempty"`
	// Window, when set, is the local time span the agent may switch versions in, "HH:MM-HH:MM"
	// (it may wrap past midnight).
	Window string `json:"window,omitempty"`
}

// AutoPatching reports whether auto-patching is on (the default).
func (s AgentSettings) AutoPatching() bool { return s.AutoPatch == nil || *s.AutoPatch }

// ErrBadWindow marks a maintenance window that is not "HH:MM-HH:MM".
var ErrBadWindow = errors.New("maintenance window must be HH:MM-HH:MM")

// ParseWindow parses "HH:MM-HH:MM" into minutes after midnight.
func ParseWindow(w string) (start, end int, err error) {
	a, b, ok := strings.Cut(w, "-")
	if !ok {
		return 0, 0, fmt.Errorf("%q: %w", w, ErrBadWindow)
	}
	if start, err = parseClock(a); err == nil {
		end, err = parseClock(b)
	}
	if err != nil || start == end {
		return 0, 0, fmt.Errorf("%q: %w", w, ErrBadWindow)
	}
	return start, end, nil
}

func parseClock(s string) (int, error) {
	h, m, ok := strings.Cut(strings.TrimSpace(s), ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || hh < 0 || hh > 23 || mm < 0 || mm > 59 || len(m) != 2 {
		return 0, ErrBadWindow
	}
	return hh*60 + mm, nil
}

// InWindow reports whether t (local time) is inside the window; no window is always open.
func (s AgentSettings) InWindow(t time.Time) bool {
	if s.Window == "" {
		return true
	}
	start, end, err := ParseWindow(s.Window)
	if err != nil {
		return false
	}
	now := t.Hour()*60 + t.Minute()
	if start < end {
		return now >= start && now < end
	}
	return now >= start || now < end // wraps past midnight
}

// LoadAgentSettings reads the agent section of config.yaml; a missing file is the defaults.
func LoadAgentSettings(path string) (AgentSettings, error) {
	var cfg struct {
		Agent AgentSettings `json:"agent"`
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return cfg.Agent, nil
	}
	if err != nil {
		return cfg.Agent, fmt.Errorf("read %q: %w", path, err)
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		return cfg.Agent, fmt.Errorf("parse %q: %w", path, err)
	}
	if cfg.Agent.Window != "" {
		if _, _, err := ParseWindow(cfg.Agent.Window); err != nil {
			return cfg.Agent, fmt.Errorf("%s: agent.window: %w", path, err)
		}
	}
	return cfg.Agent, nil
}

// SaveAgentSettings writes the agent section of config.yaml, keeping every other section.
func SaveAgentSettings(path string, s AgentSettings) error {
	all := map[string]any{}
	if b, err := os.ReadFile(path); err == nil {
		if err := yaml.Unmarshal(b, &all); err != nil {
			return fmt.Errorf("parse %q: %w", path, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	all["agent"] = s
	b, err := yaml.Marshal(all)
	if err != nil {
		return err
	}
	b = append([]byte("# harmony's settings (harmony agent enable/disable writes the agent section)\n"), b...)
	return installer.WriteFileAtomic(path, bytes.NewReader(b), 0o644)
}

// AgentEntry is one cycle of the agent, as logged.
type AgentEntry struct {
	Time    time.Time `json:"time"`
	Runtime string    `json:"runtime"`
	// Installed is the version found; Available the newest allowed one, when newer.
	Installed      string `json:"installed,omitempty"`
	Available      string `json:"available,omitempty"`
	ManifestSerial int64  `json:"manifestSerial,omitempty"`
	// Checked, Decision and Did say what the cycle looked at, chose and did.
	Checked  []string `json:"checked,omitempty"`
	Decision string   `json:"decision"`
	Did      string   `json:"did,omitempty"`
	// Result is "ok", "upgraded", "rolled back" or "error".
	Result string `json:"result"`
	Error  string `json:"error,omitempty"`
}

// Agent runs cycles for one runtime.
type Agent struct {
	Runtime Upgrader
	Paths   AgentPaths
	// Timeout bounds each health wait of an upgrade.
	Timeout time.Duration
	// Now is the clock (tests set it); nil means time.Now.
	Now func() time.Time
	// SelfUpdateNotice, when set, reports a newer harmony ("" when none) for the log.
	SelfUpdateNotice func(ctx context.Context) (string, error)
}

// Once runs one cycle and logs it. The returned entry is what was logged; the error is the
// cycle's failure, if any (it is in the entry too).
func (a *Agent) Once(ctx context.Context) (AgentEntry, error) {
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	e := AgentEntry{Time: now().UTC(), Runtime: a.Runtime.Name(), Result: "ok"}
	err := a.cycle(ctx, &e, now())
	if err != nil {
		e.Result, e.Error = "error", err.Error()
		if errors.Is(err, ErrSwitchFailed) {
			e.Result = "rolled back"
		}
	}
	if lerr := AppendAgentLog(a.Paths.Log(), e); lerr != nil {
		return e, errors.Join(err, lerr)
	}
	return e, err
}

func (a *Agent) cycle(ctx context.Context, e *AgentEntry, now time.Time) error {
	settings, err := LoadAgentSettings(a.Paths.Config)
	if err != nil {
		e.Decision = "nothing: the settings cannot be read"
		return err
	}
	if rec, err := a.Runtime.Recover(ctx); err != nil {
		e.Decision = "nothing: an interrupted upgrade could not be finished"
		return err
	} else if rec != nil {
		e.Checked = append(e.Checked, rec.Message())
	}
	inst, err := a.Runtime.Detect(ctx)
	if err != nil {
		return err
	}
	if !inst.Installed {
		e.Decision = "nothing: the runtime is not installed"
		return nil
	}
	e.Installed = inst.Version
	plan, err := a.Runtime.Upgrade(ctx, UpgradeOptions{DryRun: true})
	e.ManifestSerial = plan.ManifestSerial
	e.Checked = append(e.Checked, fmt.Sprintf("runtime manifest (serial %d)", plan.ManifestSerial))
	e.Checked = append(e.Checked, plan.Warnings...)
	if plan.Held != "" {
		e.Checked = append(e.Checked, "held back by the policy: "+plan.Held)
	}
	if a.SelfUpdateNotice != nil {
		if notice, err := a.SelfUpdateNotice(ctx); err != nil {
			e.Checked = append(e.Checked, "harmony update check failed: "+err.Error())
		} else if notice != "" {
			e.Checked = append(e.Checked, notice)
		}
	}
	if err != nil {
		e.Decision = "nothing: the runtime manifest was refused"
		return err
	}
	switch {
	case plan.To == "":
		e.Decision = fmt.Sprintf("nothing: %s is the newest allowed version", inst.Version)
		return nil
	case !settings.AutoPatching():
		e.Available = plan.To
		e.Decision = fmt.Sprintf("nothing: %s is available but auto-patching is off (harmony agent enable, or harmony runtime upgrade)", plan.To)
		return nil
	case !settings.InWindow(now.Local()):
		e.Available = plan.To
		e.Decision = fmt.Sprintf("wait: %s is available; outside the maintenance window %s", plan.To, settings.Window)
		return nil
	}
	e.Available = plan.To
	e.Decision = fmt.Sprintf("upgrade %s → %s", inst.Version, plan.To)
	res, err := a.Runtime.Upgrade(ctx, UpgradeOptions{To: plan.To, Timeout: a.Timeout})
	if err != nil {
		e.Did = "upgrade failed"
		return err
	}
	if res.Changed {
		e.Did = fmt.Sprintf("upgraded %s → %s; healthy", res.From, res.To)
		e.Result = "upgraded"
	}
	return nil
}

// maxAgentLog bounds the agent's log: past it, the oldest half is dropped.
const maxAgentLog = 1 << 20

// AppendAgentLog appends e to the agent log at path as one JSON line.
func AppendAgentLog(path string, e AgentEntry) error {
	line, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if st, err := os.Stat(path); err == nil && st.Size() > maxAgentLog {
		if old, err := ReadAgentLog(path); err == nil {
			var b bytes.Buffer
			for _, o := range old[len(old)/2:] {
				l, _ := json.Marshal(o)
				b.Write(append(l, '\n'))
			}
			if err := installer.WriteFileAtomic(path, &b, 0o644); err != nil {
				return err
			}
		}
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("agent log: %w", err)
	}
	if _, err := f.Write(append(line, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("agent log: %w", err)
	}
	return f.Close()
}

// ReadAgentLog returns every entry of the agent log, oldest first; a missing log is empty.
func ReadAgentLog(path string) ([]AgentEntry, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("agent log: %w", err)
	}
	defer f.Close()
	var out []AgentEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var e AgentEntry
		if json.Unmarshal(sc.Bytes(), &e) == nil {
			out = append(out, e)
		}
	}
	return out, sc.Err()
}

// AgentStatus is the agent's state as `harmony runtime status` shows it.
type AgentStatus struct {
	AutoPatch bool      `json:"autoPatch"`
	Window    string    `json:"window,omitempty"`
	Schedule  string    `json:"schedule"`
	LastRun   time.Time `json:"lastRun,omitzero"`
	Result    string    `json:"result,omitempty"`
	Decision  string    `json:"decision,omitempty"`
	Error     string    `json:"error,omitempty"`
}

// ReadAgentStatus reads the agent's settings and the last entry of its log.
func ReadAgentStatus(p AgentPaths, schedule string) AgentStatus {
	s, _ := LoadAgentSettings(p.Config)
	st := AgentStatus{AutoPatch: s.AutoPatching(), Window: s.Window, Schedule: schedule}
	if log, err := ReadAgentLog(p.Log()); err == nil && len(log) > 0 {
		last := log[len(log)-1]
		st.LastRun, st.Result, st.Decision, st.Error = last.Time, last.Result, last.Decision, last.Error
	}
	return st
}
