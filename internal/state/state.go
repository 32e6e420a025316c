// Package state keeps harmony's state file (state.json in harmony's data directory, see
// installer.Home): the highest runtime-manifest serial seen (so a replayed old manifest cannot
// roll users back), when a remote manifest was last seen and when updates were last checked.
// Every change happens under the data directory's lock and is written atomically.
package state

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/NationTech/harmony-agent/installer"
	"github.com/NationTech/harmony-agent/internal/hint"
)

// State is state.json.
type State struct {
	// HighestManifestSerial is the highest runtime-manifest serial accepted, whatever key
	// signed it (as older harmony versions kept it).
	HighestManifestSerial int64 `json:"highestManifestSerial"`
	// ManifestSerialFloors are the highest serials accepted per signing key (its id): only the
	// floors of keys this binary trusts count, so a manifest a stolen key signed cannot freeze
	// a machine once that key is rotated out.
	ManifestSerialFloors map[string]int64 `json:"manifestSerialFloors,omitempty"`
	// ManifestLastSeen is when a signed remote runtime manifest was last fetched and accepted.
	ManifestLastSeen time.Time `json:"manifestLastSeen,omitzero"`
	LastUpdateCheck  time.Time `json:"lastUpdateCheck,omitzero"`
	// LatestHarmony is the newest harmony release the last update check found (signed).
	LatestHarmony string `json:"latestHarmony,omitempty"`
	// LastUpdateNotice is when the "newer harmony" notice was last printed.
	LastUpdateNotice time.Time `json:"lastUpdateNotice,omitzero"`
	// AcceptedPrivileges are, per project (its inventory id), the privileges the user allowed
	// it (launch.Privilege.Key): a launch asks again only for what changed.
	AcceptedPrivileges map[string][]string `json:"acceptedPrivileges,omitempty"`
}

func path(home string) string { return filepath.Join(home, "state.json") }

// Load reads the state; a missing file is the zero State.
func Load(home string) (State, error) {
	var s State
	b, err := os.ReadFile(path(home))
	if errors.Is(err, os.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, fmt.Errorf("read state: %w", err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, hint.With(fmt.Errorf("read state %q: not valid JSON: %w", path(home), err),
			"harmony does not overwrite it: fix the JSON or restore it from a backup (it records the highest runtime manifest serial seen, harmony's guard against rollbacks)")
	}
	return s, nil
}

// Update applies fn to the state under the data directory's lock and saves the result atomically.
// When fn fails nothing is written.
func Update(ctx context.Context, home string, fn func(*State) error) error {
	unlock, err := installer.LockHome(ctx, home)
	if err != nil {
		return err
	}
	defer unlock()
	s, err := Load(home)
	if err != nil {
		return err
	}
	if err := fn(&s); err != nil {
		return err
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	return installer.WriteFileAtomic(path(home), bytes.NewReader(append(b, '\n')), 0o644)
}
