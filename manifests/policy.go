package manifests

import (
	"errors"
	"fmt"
	"sort"
)

var (
	// ErrDowngrade refuses a move to an older version unless asked for.
	ErrDowngrade = errors.New("downgrade refused")
	// ErrMinorUpgrade refuses a minor upgrade the user did not ask for.
	ErrMinorUpgrade = errors.New("minor upgrade not requested")
	// ErrMinorSkip refuses skipping a minor (Kubernetes supports one minor at a time).
	ErrMinorSkip = errors.New("upgrade skips a minor version")
	// ErrNotPinned means the version is not in the manifest.
	ErrNotPinned = errors.New("version not pinned in the runtime manifest")
)

// Policy says which moves between versions are allowed. The zero value is the default:
// patch upgrades within the minor only.
type Policy struct {
	// AllowMinor permits an upgrade to the next minor (never two at once).
	AllowMinor bool
	// AllowDowngrade permits moving to an older version.
	AllowDowngrade bool
}

// Check tells whether moving from one version to another is allowed.
func (p Policy) Check(from, to Version) error {
	switch c := to.Compare(from); {
	case c == 0:
		return nil
	case c < 0:
		if p.AllowDowngrade {
			return nil
		}
		return fmt.Errorf("%s → %s: %w (ask for it explicitly with --allow-downgrade)", from, to, ErrDowngrade)
	}
	if to.Major() != from.Major() {
		return fmt.Errorf("%s → %s: %w: a major change", from, to, ErrMinorSkip)
	}
	switch d := to.Minor() - from.Minor(); {
	case d == 0:
		return nil
	case d == 1 && p.AllowMinor:
		return nil
	case d == 1:
		return fmt.Errorf("%s → %s: %w (ask for it with --allow-minor)", from, to, ErrMinorUpgrade)
	default:
		return fmt.Errorf("%s → %s: %w: upgrade one minor at a time", from, to, ErrMinorSkip)
	}
}

// Upgrades returns the pinned k3s releases newer than from that the policy allows, newest first.
func (m *Manifest) Upgrades(from Version, p Policy) []Release {
	var out []Release
	for _, r := range m.K3s.Releases {
		if r.Version.Compare(from) > 0 && p.Check(from, r.Version) == nil {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version.Compare(out[j].Version) > 0 })
	return out
}

// CheckMove tells whether moving from one version to a pinned one is allowed.
func (m *Manifest) CheckMove(from Version, to string, p Policy) (Release, error) {
	r, err := m.Release(to)
	if err != nil {
		return Release{}, err
	}
	return r, p.Check(from, r.Version)
}
