package bootstrap_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/NationTech/harmony-agent/bootstrap"
	"github.com/NationTech/harmony-agent/installer"
)

// switchRecorder is a Switcher that records what the engine asks of it; versions named in
// broken never become healthy.
type switchRecorder struct {
	calls   []string
	active  string
	broken  map[string]bool
	healthy bool
	wants   []bootstrap.Health
}

func (r *switchRecorder) Stop(context.Context) error {
	r.calls = append(r.calls, "stop")
	return nil
}

func (r *switchRecorder) Activate(_ context.Context, v string) error {
	r.calls = append(r.calls, "activate "+v)
	r.active = v
	return nil
}

func (r *switchRecorder) Start(context.Context) error {
	r.calls = append(r.calls, "start "+r.active)
	return nil
}

func (r *switchRecorder) Baseline(context.Context) bootstrap.Health {
	return recorderBaseline
}

func (r *switchRecorder) WaitHealthy(_ context.Context, _ time.Duration, want bootstrap.Health) error {
	r.wants = append(r.wants, want)
	r.calls = append(r.calls, "wait "+r.active)
	if r.broken[r.active] {
		return errors.New(r.active + " never became ready")
	}
	return nil
}

func (r *switchRecorder) Healthy(context.Context, bootstrap.Health) bool { return r.healthy }

func (r *switchRecorder) Finish(_ context.Context, j bootstrap.Journal) error {
	r.calls = append(r.calls, "finish "+j.From+" "+j.To)
	return nil
}

// recorderBaseline is what the recorder reports healthy before a switch: the API and coredns,
// no Ready node (so what the new version must show and what the way back must restore differ).
var recorderBaseline = bootstrap.Health{API: true, Components: []string{"coredns"}}

func newSwitch(t *testing.T, r *switchRecorder) *bootstrap.Switch {
	dir := t.TempDir()
	return &bootstrap.Switch{Runtime: "k3s", JournalPath: filepath.Join(dir, "journal.json"), LockPath: filepath.Join(dir, "lock"),
		Switcher: r, Out: io.Discard, Timeout: time.Second}
}

func writeTestJournal(t *testing.T, path string, phase bootstrap.Phase) {
	b, _ := json.Marshal(bootstrap.Journal{Runtime: "k3s", Op: "upgrade", From: "old", To: "new", Phase: phase, PID: 1})
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestSwitch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name    string
		broken  []string
		want    []string
		wantErr error
		journal bootstrap.Phase // left behind, "" for none
	}{
		{"success", nil, []string{"stop", "activate new", "start new", "wait new", "finish old new"}, nil, ""},
		{"new version never healthy", []string{"new"},
			[]string{"stop", "activate new", "start new", "wait new", "stop", "activate old", "start old", "wait old"}, bootstrap.ErrSwitchFailed, ""},
		{"the way back fails too", []string{"new", "old"},
			[]string{"stop", "activate new", "start new", "wait new", "stop", "activate old", "start old", "wait old"}, bootstrap.ErrRollbackFailed, bootstrap.PhaseRollingBack},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := &switchRecorder{active: "old", broken: map[string]bool{}}
			for _, b := range tt.broken {
				r.broken[b] = true
			}
			s := newSwitch(t, r)
			res, err := s.Run(ctx, "upgrade", "old", "new")
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			if strings.Join(r.calls, ", ") != strings.Join(tt.want, ", ") {
				t.Fatalf("calls: %s\nwant:  %s", strings.Join(r.calls, ", "), strings.Join(tt.want, ", "))
			}
			if res.RolledBack != (tt.wantErr != nil) {
				t.Fatalf("RolledBack %v", res.RolledBack)
			}
			// The new version is judged by the API, a Ready node and what was available before;
			// the way back, by what was healthy before, no more.
			forward := bootstrap.Health{API: true, Node: true, Components: []string{"coredns"}}
			for i, w := range r.wants {
				want := forward
				if i > 0 {
					want = recorderBaseline
				}
				if w.String() != want.String() {
					t.Errorf("health wait %d required %s, want %s", i, w, want)
				}
			}
			j, _ := s.Pending()
			switch {
			case tt.journal == "" && j != nil:
				t.Fatalf("journal left: %+v", j)
			case tt.journal != "" && (j == nil || j.Phase != tt.journal):
				t.Fatalf("journal %+v, want phase %s", j, tt.journal)
			case j != nil && (j.Before == nil || j.Before.String() != recorderBaseline.String()):
				t.Fatalf("journal records %v as healthy before the switch, want %s", j.Before, recorderBaseline)
			}
		})
	}
}

func TestSwitchPrepareFailureSwitchesNothing(t *testing.T) {
	t.Parallel()
	r := &switchRecorder{active: "old"}
	s := newSwitch(t, r)
	undone := false
	_, err := s.Run(context.Background(), "upgrade", "old", "new",
		bootstrap.Step{Name: "install", Run: func(context.Context) error { return nil }, Undo: func(context.Context) error { undone = true; return nil }},
		bootstrap.Step{Name: "download", Run: func(context.Context) error { return fmt.Errorf("checksum mismatch") }})
	if err == nil || errors.Is(err, bootstrap.ErrSwitchFailed) || !undone || len(r.calls) != 0 {
		t.Fatalf("err %v, undone %v, calls %v", err, undone, r.calls)
	}
	if j, _ := s.Pending(); j != nil {
		t.Fatal("journal written for a switch that never started")
	}
}

func TestSwitchRecover(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		phase     bootstrap.Phase
		healthy   bool
		want      []string
		completed bool
	}{
		{bootstrap.PhaseBegun, false, []string{"stop", "activate old", "start old", "wait old"}, false},
		{bootstrap.PhaseStopped, false, []string{"stop", "activate old", "start old", "wait old"}, false},
		{bootstrap.PhaseSwitched, true, []string{"stop", "activate old", "start old", "wait old"}, false},
		{bootstrap.PhaseStarted, false, []string{"stop", "activate old", "start old", "wait old"}, false},
		{bootstrap.PhaseStarted, true, []string{"wait new", "finish old new"}, true},
		{bootstrap.PhaseHealthy, true, []string{"wait new", "finish old new"}, true},
		{bootstrap.PhaseRollingBack, true, []string{"stop", "activate old", "start old", "wait old"}, false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s healthy=%v", tt.phase, tt.healthy), func(t *testing.T) {
			t.Parallel()
			r := &switchRecorder{active: "new", healthy: tt.healthy}
			s := newSwitch(t, r)
			writeTestJournal(t, s.JournalPath, tt.phase)
			rec, err := s.Recover(ctx)
			if err != nil || rec == nil || rec.Completed != tt.completed {
				t.Fatalf("rec %+v, err %v", rec, err)
			}
			if strings.Join(r.calls, ", ") != strings.Join(tt.want, ", ") {
				t.Fatalf("calls: %s\nwant:  %s", strings.Join(r.calls, ", "), strings.Join(tt.want, ", "))
			}
			if j, _ := s.Pending(); j != nil {
				t.Fatalf("journal left: %+v", j)
			}
			if rec, err := s.Recover(ctx); rec != nil || err != nil {
				t.Fatalf("second recover: %+v %v", rec, err)
			}
		})
	}
}

func TestSwitchLockedByALiveProcess(t *testing.T) {
	t.Parallel()
	r := &switchRecorder{active: "old"}
	s := newSwitch(t, r)
	unlock, ok, err := installer.TryLockFile(s.LockPath)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	defer unlock()
	if _, err := s.Run(context.Background(), "upgrade", "old", "new"); !errors.Is(err, bootstrap.ErrSwitchInProgress) {
		t.Fatalf("Run while locked: %v", err)
	}
	writeTestJournal(t, s.JournalPath, bootstrap.PhaseStopped)
	if _, err := s.Recover(context.Background()); !errors.Is(err, bootstrap.ErrSwitchInProgress) || len(r.calls) != 0 {
		t.Fatalf("Recover while a live switch holds the lock: %v, calls %v", err, r.calls)
	}
}
