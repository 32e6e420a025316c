package manifests

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/NationTech/harmony-agent/installer"
	"github.com/NationTech/harmony-agent/internal/hint"
	"github.com/NationTech/harmony-agent/internal/state"
)

// ErrRollback refuses a manifest whose serial is lower than one already seen: a replayed old
// manifest must not roll users back to older (possibly vulnerable) runtimes.
var ErrRollback = errors.New("manifest serial is older than one already seen")

// Remote names of the signed manifest published with every harmony release.
const (
	RemoteName      = "runtimes.yaml"
	RemoteSignature = "runtimes.yaml.minisig"
	maxManifestSize = 1 << 20
)

// Trust accepts signed manifests for one user.
type Trust struct {
	// Home is HARMONY_HOME, where the highest serial and the accepted manifest are kept.
	Home string
	// Verifier holds the keys fixed into the binary at build time.
	Verifier *installer.Verifier
}

// Accept verifies a manifest and its minisign signature, checks that its serial is not lower
// than the highest seen (the embedded manifest's serial counts as seen), then records it as the
// newest accepted manifest. A refused manifest changes nothing.
func (t Trust) Accept(ctx context.Context, data, sig []byte) (*Manifest, error) {
	if _, err := t.Verifier.Verify(RemoteName, data, sig); err != nil {
		return nil, hint.With(err, "the runtime manifest was not signed by a key this harmony trusts: either the mirror serves altered files or you need a newer harmony; the pinned runtimes built into harmony stay in use")
	}
	m, err := Parse(data)
	if err != nil {
		return nil, err
	}
	builtin, err := Load()
	if err != nil {
		return nil, err
	}
	err = state.Update(ctx, t.Home, func(s *state.State) error {
		highest := max(s.HighestManifestSerial, builtin.Serial)
		if m.Serial < highest {
			return fmt.Errorf("runtime manifest serial %d < %d: %w", m.Serial, highest, ErrRollback)
		}
		if err := installer.WriteFileAtomic(filepath.Join(t.Home, RemoteName), bytes.NewReader(data), 0o644); err != nil {
			return err
		}
		if err := installer.WriteFileAtomic(filepath.Join(t.Home, RemoteSignature), bytes.NewReader(sig), 0o644); err != nil {
			return err
		}
		s.HighestManifestSerial = m.Serial
		return nil
	})
	if errors.Is(err, ErrRollback) {
		return nil, hint.With(err, "someone served an old runtime manifest (a replay); harmony keeps the newer one it has")
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}

// Fetch downloads the latest release's signed manifest from mirror and accepts it.
func (t Trust) Fetch(ctx context.Context, f *installer.Fetcher, mirror string) (*Manifest, error) {
	data, err := f.Get(ctx, installer.ReleaseURL(mirror, installer.ReleaseRepo, "latest", RemoteName), maxManifestSize)
	if err != nil {
		return nil, fmt.Errorf("fetch runtime manifest: %w", err)
	}
	sig, err := f.Get(ctx, installer.ReleaseURL(mirror, installer.ReleaseRepo, "latest", RemoteSignature), 4096)
	if err != nil {
		return nil, fmt.Errorf("fetch runtime manifest signature: %w", err)
	}
	return t.Accept(ctx, data, sig)
}

// Current returns the newest manifest this user trusts: the last accepted remote one when it
// still verifies and is not older than the embedded one, else the embedded one.
func (t Trust) Current() (*Manifest, error) {
	builtin, err := Load()
	if err != nil {
		return nil, err
	}
	data, err1 := os.ReadFile(filepath.Join(t.Home, RemoteName))
	sig, err2 := os.ReadFile(filepath.Join(t.Home, RemoteSignature))
	if err1 != nil || err2 != nil || t.Verifier == nil {
		return builtin, nil
	}
	if _, err := t.Verifier.Verify(RemoteName, data, sig); err != nil {
		return builtin, nil
	}
	m, err := Parse(data)
	if err != nil || m.Serial < builtin.Serial {
		return builtin, nil
	}
	return m, nil
}
