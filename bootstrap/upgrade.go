package bootstrap

import (
	"errors"
	"fmt"
	"time"

	"github.com/NationTech/harmony-agent/internal/hint"
	"github.com/NationTech/harmony-agent/manifests"
)

// UpgradeOptions tune `harmony runtime upgrade`.
type UpgradeOptions struct {
	// To is the version to move to; empty means the newest the policy allows.
	To string
	// AllowMinor permits the next minor (one at a time).
	AllowMinor bool
	// DryRun says what would happen and changes nothing.
	DryRun bool
	// Timeout bounds each wait for health.
	Timeout time.Duration
}

// RollbackOptions tune `harmony runtime rollback`.
type RollbackOptions struct {
	DryRun  bool
	Timeout time.Duration
}

// UpgradeResult says what an upgrade or rollback decided and did.
type UpgradeResult struct {
	Runtime string `json:"runtime"`
	Op      string `json:"op"`
	From    string `json:"from"`
	// To is the version chosen; empty when there is nothing to do.
	To string `json:"to,omitempty"`
	// Changed is true when the runtime now runs To.
	Changed bool `json:"changed"`
	DryRun  bool `json:"dryRun,omitempty"`
	// Steps is the plan, in order.
	Steps []string `json:"steps,omitempty"`
	// Held is a newer version the policy holds back, with what would allow it.
	Held string `json:"held,omitempty"`
	// ManifestSerial is the serial of the runtime manifest the decision came from.
	ManifestSerial int64 `json:"manifestSerial,omitempty"`
	// Warnings are what the user should know (an unchecked or expired manifest).
	Warnings []string `json:"warnings,omitempty"`
	// Recovered describes an interrupted switch finished or reverted first.
	Recovered string `json:"recovered,omitempty"`
	// Abandoned says which interrupted switch was ended without acting on it (rollback --abandon).
	Abandoned string `json:"abandoned,omitempty"`
}

// UpgradePolicy says, in words, what an upgrade may do.
const UpgradePolicy = "patch upgrades within the installed minor; the next minor only with --allow-minor; never a downgrade (that is 'harmony runtime rollback')"

// ErrNoPrevious means there is no earlier version to roll back to.
var ErrNoPrevious = errors.New("no previous version to roll back to")

// PlanUpgrade picks the release to upgrade to from the installed version: opts.To when the policy
// allows the move, else the newest allowed release that has an artifact for platform. It returns
// a zero Release when there is nothing to do, and in held a newer release the policy holds back.
func PlanUpgrade(m *manifests.Manifest, installed string, opts UpgradeOptions, platform string) (rel manifests.Release, held string, err error) {
	from, err := manifests.ParseVersion(installed)
	if err != nil {
		return rel, "", fmt.Errorf("installed version: %w", err)
	}
	policy := manifests.Policy{AllowMinor: opts.AllowMinor}
	if opts.To != "" {
		rel, err := m.CheckMove(from, opts.To, policy)
		none := manifests.Release{}
		switch {
		case errors.Is(err, manifests.ErrDowngrade):
			return none, "", hint.With(err, "a move to an older version is a rollback: harmony runtime rollback (to the version before the last upgrade)")
		case errors.Is(err, manifests.ErrMinorUpgrade):
			return none, "", hint.With(err, fmt.Sprintf("upgrading the minor version is a bigger step: read the Kubernetes release notes, then: harmony runtime upgrade --to %s --allow-minor", opts.To))
		case errors.Is(err, manifests.ErrNotPinned):
			return none, "", hint.With(err, "run 'harmony runtime versions' for the pinned versions")
		case err != nil:
			return none, "", err
		}
		if rel.Version.Compare(from) == 0 {
			return manifests.Release{}, "", nil
		}
		return rel, "", nil
	}
	for _, r := range m.Upgrades(from, policy) {
		if _, err := r.Binary("", platform); err == nil {
			rel = r
			break
		}
	}
	if !opts.AllowMinor {
		for _, r := range m.Upgrades(from, manifests.Policy{AllowMinor: true}) {
			if r.Version.Minor() != from.Minor() {
				held = r.Version.String() + " (a new minor: --allow-minor)"
				break
			}
		}
	}
	return rel, held, nil
}
