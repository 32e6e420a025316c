package bootstrap

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/NationTech/harmony-agent/installer"
	"github.com/NationTech/harmony-agent/internal/hint"
)

// A switch moves a runtime from one installed version to another (an upgrade or a rollback):
// stop → point the runtime at the new version → start → wait until healthy. It is written to a
// journal before it starts and at every phase, so a process killed at any point leaves a record
// that harmony runtime rollback (or upgrade, start, restart, the agent) finishes or reverts
// (Recover). Any failure reverts at once: the
// previous version is pointed at again, started and waited for. Runtimes take part through
// Switcher; the journal, the lock, the automatic rollback and the recovery are shared.

// Phase is how far a switch got.
type Phase string

// The phases of a switch, in order.
const (
	// PhaseBegun: nothing has changed yet.
	PhaseBegun Phase = "begun"
	// PhaseStopped: the previous version is stopped (or being stopped).
	PhaseStopped Phase = "stopped"
	// PhaseSwitched: the runtime points at the new version, which is not started yet.
	PhaseSwitched Phase = "switched"
	// PhaseStarted: the new version was started; its health is not known yet.
	PhaseStarted Phase = "started"
	// PhaseHealthy: the new version passed the health check; only bookkeeping is left.
	PhaseHealthy Phase = "healthy"
	// PhaseRollingBack: the new version failed; the previous one is being restored.
	PhaseRollingBack Phase = "rolling-back"
)

// PauseEnv is a test-only hook: when it names a phase, a switch stops right after writing that
// phase to its journal, prints "paused at PHASE" on its output and waits to be killed, so tests
// can kill a real harmony process mid-switch.
const PauseEnv = "HARMONY_TEST_PAUSE_AT"

// Journal is the record of a switch in progress.
type Journal struct {
	Runtime string    `json:"runtime"`
	Op      string    `json:"op"`
	From    string    `json:"from"`
	To      string    `json:"to"`
	Phase   Phase     `json:"phase"`
	Started time.Time `json:"started"`
	Updated time.Time `json:"updated"`
	PID     int       `json:"pid"`
	// Before is what of the runtime was healthy before the switch: the new version must show
	// the API, a Ready node and these components (Health.Want); the way back, only these.
	Before *Health `json:"before,omitempty"`
}

// forward is what the new version must show to be kept, its node reporting since since.
func (j *Journal) forward(since time.Time) Health {
	h := Health{API: true, Node: true}
	if j.Before != nil { // else a journal written before harmony recorded it
		h = j.Before.Want()
	}
	h.Since = since
	return h
}

// back is what the way back must restore: no more than there was before the switch, its node
// (when it had one) reporting since since.
func (j *Journal) back(since time.Time) Health {
	h := Health{API: true, Node: true}
	if j.Before != nil {
		h = *j.Before
	}
	h.Since = since
	return h
}

// ReadJournal returns the unfinished switch recorded at path, or nil when there is none.
func ReadJournal(path string) (*Journal, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the upgrade journal: %w", err)
	}
	var j Journal
	if err := json.Unmarshal(b, &j); err != nil || j.From == "" || j.To == "" {
		return nil, fmt.Errorf("upgrade journal %q is unreadable (%v): %w", path, err, ErrBadJournal)
	}
	return &j, nil
}

func writeJournal(path string, j *Journal) error {
	j.Updated = time.Now().UTC()
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return err
	}
	return installer.WriteFileAtomic(path, bytes.NewReader(append(b, '\n')), 0o600)
}

// Switcher is what a runtime provides to be switched between versions.
type Switcher interface {
	// Stop stops the running version (no error when it is not running).
	Stop(ctx context.Context) error
	// Activate makes version the one the runtime starts; it is installed already.
	Activate(ctx context.Context, version string) error
	// Start starts the active version.
	Start(ctx context.Context) error
	// Baseline checks once, quickly, what of the running version is healthy (before a switch).
	Baseline(ctx context.Context) Health
	// WaitHealthy waits until the runtime shows what want requires (CheckHealth) or timeout
	// passes.
	WaitHealthy(ctx context.Context, timeout time.Duration, want Health) error
	// Healthy checks once, quickly, whether the runtime shows what want requires now.
	Healthy(ctx context.Context, want Health) bool
	// Finish is called after a successful switch (prune old versions, remember the previous).
	Finish(ctx context.Context, j Journal) error
}

var (
	// ErrSwitchFailed means the new version failed (to stop the old, start, or pass the health check) and the previous one runs again.
	ErrSwitchFailed = errors.New("the switch failed and was rolled back")
	// ErrRollbackFailed means the new version failed and so did the way back.
	ErrRollbackFailed = errors.New("the new version failed and the rollback failed too")
	// ErrSwitchInProgress means another harmony process is switching the runtime right now.
	ErrSwitchInProgress = errors.New("another harmony process is upgrading the runtime")
	// ErrBadJournal means the journal cannot be read.
	ErrBadJournal = errors.New("corrupt upgrade journal")
)

// Switch runs switches and recoveries for one runtime.
type Switch struct {
	Runtime     string
	JournalPath string
	LockPath    string
	Switcher    Switcher
	Progress    Progress
	Out         io.Writer
	// Timeout bounds each wait for health.
	Timeout time.Duration
	// PauseAt, when set, is the test-only pause (PauseEnv).
	PauseAt Phase
}

// SwitchResult says what a switch did.
type SwitchResult struct {
	From       string `json:"from"`
	To         string `json:"to"`
	RolledBack bool   `json:"rolledBack,omitempty"`
	Failure    string `json:"failure,omitempty"`
}

// lock takes the switch lock without waiting: a held lock means a switch is in progress in
// another process (a killed process releases it).
func (s *Switch) lock() (func(), error) {
	unlock, ok, err := installer.TryLockFile(s.LockPath)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, hint.With(ErrSwitchInProgress, "wait for it to finish (harmony runtime status shows the result)")
	}
	return unlock, nil
}

func (s *Switch) phase(j *Journal, p Phase) error {
	j.Phase = p
	if err := writeJournal(s.JournalPath, j); err != nil {
		return fmt.Errorf("write the upgrade journal: %w", err)
	}
	if s.PauseAt == p {
		fmt.Fprintf(s.Out, "paused at %s (%s)\n", p, PauseEnv)
		select {} // until killed: the test hook's whole point
	}
	return nil
}

// Run switches from one installed version to another, op naming it ("upgrade", "rollback"),
// after the prepare steps (download, install the new version's files…), under the switch lock.
// When the new version fails, the previous one is restored and the error wraps ErrSwitchFailed
// (restored and healthy) or ErrRollbackFailed (the machine needs a hand; the error says how).
func (s *Switch) Run(ctx context.Context, op, from, to string, prepare ...Step) (SwitchResult, error) {
	unlock, err := s.lock()
	if err != nil {
		return SwitchResult{}, err
	}
	defer unlock()
	res := SwitchResult{From: from, To: to}
	j := &Journal{Runtime: s.Runtime, Op: op, From: from, To: to, Started: time.Now().UTC(), PID: os.Getpid()}
	sw := s.Switcher
	var started time.Time // when the new version was started
	rollingBack := func() error { return s.phase(j, PhaseRollingBack) }
	steps := append(prepare, []Step{
		{Name: "stop " + from, Run: func(ctx context.Context) error {
			// What is healthy now is what the switch is judged against: a component that was not
			// available before (or a launched repo's deployment, which never counts) cannot fail it.
			before := sw.Baseline(ctx)
			j.Before = &before
			if err := s.phase(j, PhaseBegun); err != nil {
				return err
			}
			if err := s.phase(j, PhaseStopped); err != nil {
				return err
			}
			if err := sw.Stop(ctx); err != nil {
				// Nothing else changed: make sure the previous version serves, as before.
				return errors.Join(err, sw.Start(ctx))
			}
			return nil
		}, Undo: func(ctx context.Context) error {
			// The way back ends here: the previous version is active again; start it and wait.
			if err := rollingBack(); err != nil {
				return err
			}
			since := time.Now()
			if err := sw.Start(ctx); err != nil {
				return err
			}
			return sw.WaitHealthy(ctx, s.Timeout, j.back(since))
		}},
		{Name: "switch to " + to, Run: func(ctx context.Context) error {
			if err := sw.Activate(ctx, to); err != nil {
				return err
			}
			return s.phase(j, PhaseSwitched)
		}, Undo: func(ctx context.Context) error {
			if err := rollingBack(); err != nil {
				return err
			}
			return sw.Activate(ctx, from)
		}},
		{Name: "start " + to, Run: func(ctx context.Context) error {
			started = time.Now()
			if err := sw.Start(ctx); err != nil {
				return errors.Join(err, sw.Stop(ctx))
			}
			return s.phase(j, PhaseStarted)
		}, Undo: func(ctx context.Context) error {
			if err := rollingBack(); err != nil {
				return err
			}
			return sw.Stop(ctx)
		}},
		{Name: "health", Run: func(ctx context.Context) error {
			// A node's status from before the restart is stale: its kubelet must report since.
			if err := sw.WaitHealthy(ctx, s.Timeout, j.forward(started)); err != nil {
				return err
			}
			return s.phase(j, PhaseHealthy)
		}},
	}...)
	failed, undoErr := runStepsUndo(ctx, steps, s.Progress)
	if failed == nil {
		if err := sw.Finish(ctx, *j); err != nil {
			fmt.Fprintf(s.Out, "note: %s %s → %s succeeded, but cleaning up failed: %v\n", s.Runtime, from, to, err)
		}
		return res, removeIfExists(s.JournalPath)
	}
	if _, err := os.Stat(s.JournalPath); os.IsNotExist(err) {
		return res, failed // a prepare step failed: nothing was switched
	}
	res.RolledBack, res.Failure = true, failed.Error()
	if undoErr != nil {
		// The journal stays: runtime rollback tries the way back again (or --abandon ends it).
		return res, hint.With(fmt.Errorf("%s %s → %s: %w\n  what failed: %v\n  the rollback: %v", s.Runtime, from, to, ErrRollbackFailed, failed, undoErr),
			fmt.Sprintf("the machine is set to %s %s, which is not healthy; the data directory was not touched", s.Runtime, from),
			"try again: harmony runtime rollback (it finishes the interrupted rollback), then harmony runtime status",
			"or leave the machine as it is and end the recovery: harmony runtime rollback --abandon")
	}
	if err := removeIfExists(s.JournalPath); err != nil {
		return res, err
	}
	return res, hint.With(fmt.Errorf("%s %s → %s: %w: %s %s runs and is healthy again\n  what failed: %w", s.Runtime, from, to, ErrSwitchFailed, s.Runtime, from, failed),
		hint.Of(failed)...)
}

// Recovery says what Recover did about an unfinished switch.
type Recovery struct {
	Journal Journal `json:"journal"`
	// Completed is true when the new version was already healthy and the switch was finished.
	Completed bool `json:"completed"`
	// Version is the version that runs afterwards.
	Version string `json:"version"`
}

// Message tells the user what was found and done.
func (r Recovery) Message() string {
	j := r.Journal
	what := fmt.Sprintf("an interrupted %s of %s (%s → %s, stopped at %q, process %d)", j.Op, j.Runtime, j.From, j.To, j.Phase, j.PID)
	if r.Completed {
		return fmt.Sprintf("%s was completed: %s %s runs and is healthy", what, j.Runtime, r.Version)
	}
	return fmt.Sprintf("%s was reverted: %s %s runs and is healthy", what, j.Runtime, r.Version)
}

// Pending returns the unfinished switch, if any, without acting on it.
func (s *Switch) Pending() (*Journal, error) { return ReadJournal(s.JournalPath) }

// Running reports whether the process that wrote the journal still runs (a switch in progress,
// not an interrupted one). It never takes the lock: a look must not make a switch starting at
// that moment fail.
func (s *Switch) Running() bool {
	j, err := ReadJournal(s.JournalPath)
	return err == nil && j != nil && j.PID != os.Getpid() && pidAlive(j.PID)
}

// Recover finishes or reverts a switch a killed process left unfinished. It returns nil when
// there is none, and ErrSwitchInProgress when the switch is not abandoned but still running.
// A new version that is healthy right now is kept (the switch is completed); anything else goes
// back to the previous version, which is started and waited for.
func (s *Switch) Recover(ctx context.Context) (*Recovery, error) {
	j, err := ReadJournal(s.JournalPath)
	if err != nil || j == nil {
		return nil, err
	}
	unlock, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	if j, err = ReadJournal(s.JournalPath); err != nil || j == nil { // finished while we waited
		return nil, err
	}
	rec := &Recovery{Journal: *j}
	sw := s.Switcher
	// The new version is kept when it is healthy now, its node reporting since the switch began:
	// it gets up to 30 s (a kubelet renews its lease every 10 s), not the one look that would
	// revert a healthy version whose kubelet has not reported yet.
	if (j.Phase == PhaseStarted || j.Phase == PhaseHealthy) && sw.Healthy(ctx, Health{}) &&
		sw.WaitHealthy(ctx, min(s.Timeout, 30*time.Second), j.forward(j.Started)) == nil {
		if err := sw.Finish(ctx, *j); err != nil {
			return nil, err
		}
		rec.Completed, rec.Version = true, j.To
		return rec, removeIfExists(s.JournalPath)
	}
	fmt.Fprintf(s.Out, "found an interrupted %s of %s (%s → %s, stopped at %q): going back to %s\n", j.Op, j.Runtime, j.From, j.To, j.Phase, j.From)
	back := *j
	if err := s.phase(&back, PhaseRollingBack); err != nil {
		return nil, err
	}
	err = errors.Join(sw.Stop(ctx), sw.Activate(ctx, j.From))
	if err == nil {
		since := time.Now()
		if err = sw.Start(ctx); err == nil {
			err = sw.WaitHealthy(ctx, s.Timeout, j.back(since))
		}
	}
	if err != nil {
		return nil, hint.With(fmt.Errorf("finish the interrupted %s of %s (%s → %s): going back to %s failed: %w", j.Op, j.Runtime, j.From, j.To, j.From, err),
			fmt.Sprintf("the machine is set to %s %s; the data directory was not touched", j.Runtime, j.From),
			"try again: harmony runtime rollback",
			"or leave the machine as it is and end the recovery: harmony runtime rollback --abandon")
	}
	rec.Version = j.From
	return rec, removeIfExists(s.JournalPath)
}

// Abandon ends an unfinished switch without acting on it: the journal is removed and the
// runtime stays as it is (whichever version it is set to, running or not). For a recovery that
// cannot succeed; nil when there was none.
func (s *Switch) Abandon() (*Journal, error) {
	unlock, err := s.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	j, err := ReadJournal(s.JournalPath)
	if err != nil && !errors.Is(err, ErrBadJournal) {
		return nil, err
	}
	if j == nil && err == nil {
		return nil, nil
	}
	if j == nil {
		j = &Journal{Runtime: s.Runtime}
	}
	return j, removeIfExists(s.JournalPath)
}
