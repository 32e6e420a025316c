package manifests

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/NationTech/harmony-agent/installer"
	"github.com/NationTech/harmony-agent/internal/hint"
	"github.com/NationTech/harmony-agent/internal/state"
)

var (
	// ErrRollback refuses a manifest whose serial is lower than one already seen: a replayed old
	// manifest must not roll users back to older (possibly vulnerable) runtimes.
	ErrRollback = errors.New("manifest serial is older than one already seen")
	// ErrExpired refuses a remote manifest past its expiry: a mirror serving it cannot show
	// current runtime releases (a freeze).
	ErrExpired = errors.New("manifest expired")
	// ErrSerialJump means a manifest's serial is implausibly far above the highest seen.
	ErrSerialJump = errors.New("manifest serial jumps too far")
)

// Remote names of the signed manifest published with every harmony release.
const (
	RemoteName      = "runtimes.yaml"
	RemoteSignature = "runtimes.yaml.minisig"
	maxManifestSize = 1 << 20
)

// Trust accepts signed manifests for the user harmony runs as.
//
// The highest serial ever seen is the maximum of the state files, the stored (verified)
// manifests and the embedded one, so deleting state.json or putting an older signed
// runtimes.yaml back on disk does not lower it; a manifest below it is refused wherever it is
// read (Accept, Current).
type Trust struct {
	// Home is the data directory of the user harmony runs as (installer.Home): the accepted
	// manifest, its signature and the state are written there.
	Home string
	// System, for users other than root, is root's data directory (installer.SystemHome): read,
	// never written, so that what root accepted while installing k3s counts for the user too.
	System string
	// Verifier holds the keys fixed into the binary at build time.
	Verifier *installer.Verifier
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// NewTrust returns the trust of the user harmony runs as.
func NewTrust(v *installer.Verifier) (Trust, error) {
	home, err := installer.Home()
	if err != nil {
		return Trust{}, err
	}
	t := Trust{Home: home, Verifier: v}
	if sys := installer.SystemHome(); sys != home {
		t.System = sys
	}
	return t, nil
}

func (t Trust) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

func (t Trust) dirs() []string {
	if t.System == "" {
		return []string{t.Home}
	}
	return []string{t.Home, t.System}
}

// stored returns the manifest accepted in dir when its signature still verifies, else nil.
func (t Trust) stored(dir string) *Manifest {
	if t.Verifier == nil {
		return nil
	}
	data, err1 := readSmall(filepath.Join(dir, RemoteName))
	sig, err2 := readSmall(filepath.Join(dir, RemoteSignature))
	if err1 != nil || err2 != nil {
		return nil
	}
	if _, err := t.Verifier.Verify(RemoteName, data, sig); err != nil {
		return nil
	}
	m, err := Parse(data)
	if err != nil {
		return nil
	}
	return m
}

// readSmall reads a file of at most maxManifestSize bytes.
func readSmall(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, maxManifestSize))
}

// seen gathers what the data directories record: the highest serial of their state files and
// stored manifests, when a remote manifest was last seen, and the newest stored manifest.
type seen struct {
	highest  int64
	lastSeen time.Time
	newest   *Manifest
}

// MaxSerialJump is how far a manifest's serial may go above the highest seen (or the built-in
// one's): a release raises it by one per change of the pins. A serial far above would stand
// as a floor that no genuine manifest reaches (a stolen key's way to freeze every machine).
const MaxSerialJump = 10000

func (t Trust) seen(home state.State) seen {
	var s seen
	trusted := map[string]bool{}
	if t.Verifier != nil {
		for _, id := range t.Verifier.KeyIDs() {
			trusted[id] = true
		}
	}
	ceiling := int64(MaxSerialJump)
	if b, err := Load(); err == nil {
		ceiling += b.Serial
	}
	add := func(st state.State) {
		// A floor counts only under a key this binary trusts; the floor older versions kept
		// (any key; a state they alone wrote has no floors per key) only when it is plausible.
		for id, f := range st.ManifestSerialFloors {
			if trusted[id] {
				s.highest = max(s.highest, f)
			}
		}
		if len(st.ManifestSerialFloors) == 0 && st.HighestManifestSerial <= ceiling {
			s.highest = max(s.highest, st.HighestManifestSerial)
		}
		if st.ManifestLastSeen.After(s.lastSeen) {
			s.lastSeen = st.ManifestLastSeen
		}
	}
	add(home)
	if t.System != "" {
		// Root's directory is read as far as this user may; root's own commands check it fully.
		if st, err := state.Load(t.System); err == nil {
			add(st)
		}
	}
	for _, dir := range t.dirs() {
		if m := t.stored(dir); m != nil {
			s.highest = max(s.highest, m.Serial)
			if s.newest == nil || newer(m, s.newest) {
				s.newest = m
			}
		}
	}
	return s
}

// newer orders manifests by serial, then by expiry (the same serial re-signed later).
func newer(a, b *Manifest) bool {
	if a.Serial != b.Serial {
		return a.Serial > b.Serial
	}
	return a.Expires.After(b.Expires)
}

func rollback(serial, highest int64) error {
	return fmt.Errorf("runtime manifest serial %d is older than serial %d harmony already accepted: %w", serial, highest, ErrRollback)
}

// Accept verifies a manifest and its minisign signature, checks that it has not expired and
// that its serial is not lower than the highest seen, then records it as the newest accepted
// manifest and notes when it was seen. A refused manifest changes nothing.
func (t Trust) Accept(ctx context.Context, data, sig []byte) (*Manifest, error) {
	keyID, err := t.Verifier.Verify(RemoteName, data, sig)
	if err != nil {
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
	now := t.now()
	if m.Expired(now) {
		return nil, hint.With(fmt.Errorf("runtime manifest serial %d expired on %s: %w", m.Serial, m.Expires.Format(time.DateOnly), ErrExpired),
			"the mirror serves an outdated manifest, so harmony cannot see current runtime releases: check HARMONY_MIRROR (now "+fmt.Sprintf("%q", installer.Mirror())+"); the manifest harmony has stays in use")
	}
	err = state.Update(ctx, t.Home, func(s *state.State) error {
		seen := t.seen(*s)
		highest := max(seen.highest, builtin.Serial)
		if m.Serial < highest {
			return rollback(m.Serial, highest)
		}
		if m.Serial > highest+MaxSerialJump {
			return fmt.Errorf("runtime manifest serial %d is more than %d above serial %d, the highest harmony accepted: %w", m.Serial, MaxSerialJump, highest, ErrSerialJump)
		}
		if err := installer.WriteFileAtomic(filepath.Join(t.Home, RemoteName), bytes.NewReader(data), 0o644); err != nil {
			return err
		}
		if err := installer.WriteFileAtomic(filepath.Join(t.Home, RemoteSignature), bytes.NewReader(sig), 0o644); err != nil {
			return err
		}
		s.HighestManifestSerial = m.Serial
		if s.ManifestSerialFloors == nil {
			s.ManifestSerialFloors = map[string]int64{}
		}
		s.ManifestSerialFloors[keyID] = max(s.ManifestSerialFloors[keyID], m.Serial)
		s.ManifestLastSeen = now
		return nil
	})
	if errors.Is(err, ErrRollback) {
		return nil, hint.With(err, "someone served an old runtime manifest (a replay); harmony keeps the newer one it has")
	}
	if errors.Is(err, ErrSerialJump) {
		return nil, hint.With(err, "a genuine release raises the serial by one per change; harmony keeps the manifest it has (report this: the signing key may be misused)")
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

// Current returns the newest manifest this user trusts: the newest accepted remote one that
// still verifies, else the embedded one. It refuses (ErrRollback) when that manifest is older
// than the highest serial recorded: an older signed runtimes.yaml put back on disk, or the
// accepted one removed, must not roll the runtimes back.
func (t Trust) Current() (*Manifest, error) {
	builtin, err := Load()
	if err != nil {
		return nil, err
	}
	home, err := state.Load(t.Home)
	if err != nil {
		return nil, err
	}
	seen := t.seen(home)
	m := builtin
	if seen.newest != nil && newer(seen.newest, builtin) {
		m = seen.newest
	}
	if m.Serial < seen.highest {
		return nil, hint.With(rollback(m.Serial, seen.highest),
			fmt.Sprintf("the runtime manifest harmony accepted is gone or was replaced by an older one in %s; harmony refuses to go back to older runtimes", t.Home),
			"harmony fetches the newest signed manifest before it installs (harmony bootstrap), or put back the newer runtimes.yaml and runtimes.yaml.minisig")
	}
	return m, nil
}

// LastSeen returns when a signed remote manifest was last fetched and accepted (zero: never).
func (t Trust) LastSeen() time.Time {
	home, _ := state.Load(t.Home)
	return t.seen(home).lastSeen
}

// FreezeWarning returns, when m has expired, the warning that harmony cannot see current
// runtime releases, saying when a remote manifest was last seen; else "".
func (t Trust) FreezeWarning(m *Manifest) string {
	if !m.Expired(t.now()) {
		return ""
	}
	seen := "never"
	if last := t.LastSeen(); !last.IsZero() {
		seen = last.UTC().Format(time.DateOnly)
	}
	return fmt.Sprintf("the runtime manifest (serial %d) expired on %s and no newer one was seen (last seen: %s): harmony cannot see current runtime releases, so newer patches may exist; check HARMONY_MIRROR and update harmony",
		m.Serial, m.Expires.UTC().Format(time.DateOnly), seen)
}
