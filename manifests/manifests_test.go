package manifests_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/NationTech/harmony-agent/installer"
	"github.com/NationTech/harmony-agent/internal/releasetest"
	"github.com/NationTech/harmony-agent/internal/state"
	"github.com/NationTech/harmony-agent/manifests"
)

func v(tag string) manifests.Version { return manifests.MustParseVersion(tag) }

func TestVersionOrdering(t *testing.T) {
	t.Parallel()
	ordered := []string{"v1.35.9+k3s3", "v1.36.4-rc1+k3s1", "v1.36.4-rc2+k3s1", "v1.36.4+k3s1", "v1.36.4+k3s2", "v1.36.4+k3s10", "v1.36.5+k3s1", "v1.37.0+k3s1"}
	for i := range ordered {
		for j := range ordered {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := v(ordered[i]).Compare(v(ordered[j])); got != want {
				t.Errorf("Compare(%s, %s) = %d, want %d", ordered[i], ordered[j], got, want)
			}
		}
	}
	if got := v("v1.36.4+k3s1").ImageTag(); got != "v1.36.4-k3s1" {
		t.Errorf("ImageTag = %q", got)
	}
	for _, bad := range []string{"", "1.36.4+k3s1", "v1.36.4", "v1.36+k3s1", "v1.36.4+k3s", "v1.36.4+k3s0", "v1.36.4+k3s01", "v1.36.4+rke2r1", "latest", "v01.36.4+k3s1"} {
		if _, err := manifests.ParseVersion(bad); !errors.Is(err, manifests.ErrBadVersion) {
			t.Errorf("ParseVersion(%q) = %v, want ErrBadVersion", bad, err)
		}
	}
}

func TestPolicy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		from, to string
		policy   manifests.Policy
		want     error
	}{
		{"v1.36.2+k3s1", "v1.36.4+k3s1", manifests.Policy{}, nil},
		{"v1.36.4+k3s1", "v1.36.4+k3s2", manifests.Policy{}, nil},
		{"v1.36.4+k3s1", "v1.36.4+k3s1", manifests.Policy{}, nil},
		{"v1.36.4+k3s1", "v1.37.0+k3s1", manifests.Policy{}, manifests.ErrMinorUpgrade},
		{"v1.36.4+k3s1", "v1.37.0+k3s1", manifests.Policy{AllowMinor: true}, nil},
		{"v1.36.4+k3s1", "v1.38.0+k3s1", manifests.Policy{AllowMinor: true}, manifests.ErrMinorSkip},
		{"v1.36.4+k3s1", "v2.0.0+k3s1", manifests.Policy{AllowMinor: true}, manifests.ErrMinorSkip},
		{"v1.36.4+k3s2", "v1.36.4+k3s1", manifests.Policy{}, manifests.ErrDowngrade},
		{"v1.36.4+k3s1", "v1.36.3+k3s1", manifests.Policy{}, manifests.ErrDowngrade},
		{"v1.36.4+k3s1", "v1.36.3+k3s1", manifests.Policy{AllowDowngrade: true}, nil},
	}
	for _, tt := range tests {
		err := tt.policy.Check(v(tt.from), v(tt.to))
		if (tt.want == nil) != (err == nil) || (tt.want != nil && !errors.Is(err, tt.want)) {
			t.Errorf("%s → %s with %+v: %v, want %v", tt.from, tt.to, tt.policy, err, tt.want)
		}
	}
}

func TestEmbeddedManifest(t *testing.T) {
	t.Parallel()
	m, err := manifests.Load()
	if err != nil {
		t.Fatal(err)
	}
	if m.K3s.Default.String() != "v1.36.4+k3s1" || m.K3d.Version != "v5.9.0" {
		t.Fatalf("default k3s %s, k3d %s", m.K3s.Default, m.K3d.Version)
	}
	if got := strings.Join(m.Versions(), " "); got != "v1.36.4+k3s1 v1.36.3+k3s1 v1.36.2+k3s1" {
		t.Fatalf("versions %s", got)
	}
	// The committed file is the canonical rendering, so scripts/pin-runtime's output diffs cleanly.
	out, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, manifests.Embedded()) {
		t.Fatal("runtimes.yaml is not in canonical form: regenerate it with scripts/pin-runtime")
	}
	rel := m.DefaultRelease()
	a, err := rel.Binary("https://mirror.example", "linux/amd64")
	if err != nil {
		t.Fatal(err)
	}
	if a.MaxSize != 256<<20 {
		t.Fatalf("artifact bound %d, want the pinned maxSize", a.MaxSize)
	}
	if a.SHA256 != "835873f37245fc615f547a2fe2af9402a347875f13fa64a1f136de644955ea3f" ||
		a.URL != "https://mirror.example/k3s-io/k3s/releases/download/v1.36.4+k3s1/k3s" {
		t.Fatalf("artifact %+v", a)
	}
	if img, err := rel.Image.Pinned(); err != nil || img != "rancher/k3s:v1.36.4-k3s1@sha256:edad48e12bf81c3a09ac1c05c0c0ffaaa22145980b989d6fae84543a76b83657" {
		t.Fatalf("image %q, %v", img, err)
	}
	// Unknown digests refuse, never fall back to unverified bytes.
	if _, err := rel.Binary("m", "linux/arm"); !errors.Is(err, manifests.ErrDigestUnknown) {
		t.Fatalf("armhf: %v, want ErrDigestUnknown", err)
	}
	old, _ := m.Release("v1.36.2+k3s1")
	if _, err := old.AirgapImages("m", "linux/amd64"); !errors.Is(err, manifests.ErrDigestUnknown) {
		t.Fatalf("unknown air-gap bundle: %v", err)
	}
	if _, err := rel.Binary("m", "darwin/arm64"); !errors.Is(err, manifests.ErrUnsupportedPlatform) {
		t.Fatalf("k3s on darwin: %v", err)
	}
	if _, err := m.K3d.Binary("m", "darwin/arm64"); err != nil {
		t.Fatal(err)
	}
	if ups := m.Upgrades(v("v1.36.2+k3s1"), manifests.Policy{}); len(ups) != 2 || ups[0].Version.String() != "v1.36.4+k3s1" {
		t.Fatalf("upgrades from v1.36.2: %v", ups)
	}
	if _, err := m.Release("v1.36.9+k3s1"); !errors.Is(err, manifests.ErrNotPinned) {
		t.Fatalf("unpinned release: %v", err)
	}
}

func TestValidationNamesTheField(t *testing.T) {
	t.Parallel()
	good := string(manifests.Embedded())
	tests := []struct {
		name, old, new, want string
	}{
		{"unknown platform", "linux/arm: {name: k3s-armhf", "linux/s390x: {name: k3s-s390x", `unknown platform "linux/s390x"`},
		{"missing asset", "      linux/arm64: {name: k3s-arm64, sha256: c920706346d5ad4e5cd3c7bf1bb09ce71ebe07fec829e513e40f1caf98aed8bb, maxSize: 268435456}\n", "", `k3s.releases[0].assets: missing platform "linux/arm64"`},
		{"malformed digest", "835873f37245fc615f547a2fe2af9402a347875f13fa64a1f136de644955ea3f", "835873f3", `k3s.releases[0].assets["linux/amd64"].sha256`},
		{"duplicate version", "version: v1.36.2+k3s1", "version: v1.36.3+k3s1", "duplicate version v1.36.3+k3s1"},
		{"bad tag", "version: v1.36.2+k3s1", "version: v1.36.2", "k3s revision"},
		{"default not pinned", "default: v1.36.4+k3s1", "default: v1.36.9+k3s1", "k3s.default: v1.36.9+k3s1 is not one of k3s.releases"},
		{"placeholder digest", "sha256: 06d8f25bc3a971c4eb29e0ff08429b180402db0f4dec838c9eac427e296800a0", "unknown: \"\"", `k3d.assets["linux/amd64"]: needs sha256 or an explicit unknown`},
		{"unknown field", "serial: 1", "serial: 1\nchannel: latest", "unknown field"},
		// Endless data: every pinned artifact carries its size or a bound.
		{"digest without a size", "835873f37245fc615f547a2fe2af9402a347875f13fa64a1f136de644955ea3f, maxSize: 268435456}", "835873f37245fc615f547a2fe2af9402a347875f13fa64a1f136de644955ea3f}", `k3s.releases[0].assets["linux/amd64"]: needs size`},
		{"size and bound", "maxSize: 268435456}", "maxSize: 268435456, size: 70000000}", "has both size and maxSize"},
		{"negative size", "maxSize: 268435456}", "maxSize: -1}", "must be positive"},
		// Freeze: every manifest says until when it vouches for being current.
		{"no expiry", "expires: 2027-05-27T00:00:00Z\n", "", "expires: missing"},
		{"image mismatch", "ref: rancher/k3s:v1.36.4-k3s1", "ref: rancher/k3s:latest", "k3s.releases[0].image.ref"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if !strings.Contains(good, tt.old) {
				t.Fatalf("test is stale: %q not in runtimes.yaml", tt.old)
			}
			_, err := manifests.Parse([]byte(strings.Replace(good, tt.old, tt.new, 1)))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one saying %q", err, tt.want)
			}
		})
	}
}

// withSerial returns the embedded manifest with another serial.
func withSerial(t *testing.T, serial string) []byte {
	return []byte(strings.Replace(string(manifests.Embedded()), "serial: 1\n", "serial: "+serial+"\n", 1))
}

// withExpiry returns the manifest data with another expiry date.
func withExpiry(t *testing.T, data []byte, expires time.Time) []byte {
	t.Helper()
	m, err := manifests.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	m.Expires = expires
	out, err := m.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// serialOf prints a manifest's serial, or "none".
func serialOf(m *manifests.Manifest) string {
	if m == nil {
		return "none"
	}
	return fmt.Sprint(m.Serial)
}

func newTrust(t *testing.T, keys ...*releasetest.Key) manifests.Trust {
	t.Helper()
	var pubs []string
	for _, k := range keys {
		pubs = append(pubs, k.Public)
	}
	v, err := installer.NewVerifier(pubs)
	if err != nil {
		t.Fatal(err)
	}
	return manifests.Trust{Home: t.TempDir(), Verifier: v}
}

// store puts a signed manifest in dir as harmony keeps an accepted one.
func store(t *testing.T, dir string, data, sig []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, manifests.RemoteName), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, manifests.RemoteSignature), sig, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestTrustAcceptsOnlySignedNewerManifests(t *testing.T) {
	t.Parallel()
	key, stranger := releasetest.NewKey(t), releasetest.NewKey(t)
	trust := newTrust(t, key)
	home := trust.Home
	ctx := context.Background()

	m5 := withSerial(t, "5")
	if m, err := trust.Accept(ctx, m5, key.Sign(m5)); err != nil || m.Serial != 5 {
		t.Fatalf("accept serial 5: %v", err)
	}
	m3 := withSerial(t, "3")
	tests := []struct {
		name    string
		data    []byte
		sig     []byte
		wantErr error
	}{
		{"rollback: replayed older serial", m3, key.Sign(m3), manifests.ErrRollback},
		{"mix-and-match: the signature of another manifest", withSerial(t, "6"), key.Sign(m5), installer.ErrBadSignature},
		{"arbitrary software: untrusted key", withSerial(t, "7"), stranger.Sign(withSerial(t, "7")), installer.ErrBadSignature},
		{"missing signature", withSerial(t, "8"), nil, installer.ErrBadSignature},
	}
	for _, tt := range tests {
		if _, err := trust.Accept(ctx, tt.data, tt.sig); !errors.Is(err, tt.wantErr) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.wantErr)
		}
		if st, _ := state.Load(home); st.HighestManifestSerial != 5 {
			t.Errorf("%s: highest serial became %d", tt.name, st.HighestManifestSerial)
		}
	}
	cur, err := trust.Current()
	if err != nil || cur.Serial != 5 {
		t.Fatalf("current manifest serial %s, %v; want the accepted 5", serialOf(cur), err)
	}
	// A tampered stored copy is not used, and the embedded manifest (serial 1) does not stand
	// in for the serial 5 harmony accepted: that would be a rollback too.
	if err := os.WriteFile(filepath.Join(home, manifests.RemoteName), withSerial(t, "9"), 0o644); err != nil {
		t.Fatal(err)
	}
	if cur, err := trust.Current(); !errors.Is(err, manifests.ErrRollback) {
		t.Fatalf("current with a tampered stored manifest: serial %s, %v; want ErrRollback", serialOf(cur), err)
	}
}

// Rollback: deleting state.json does not lower the highest serial, since the stored manifest
// carries it too. Before the fix, deleting state.json (which an error hint suggested) let a
// replayed older manifest in.
func TestTrustRollbackSurvivesDeletingTheState(t *testing.T) {
	t.Parallel()
	key := releasetest.NewKey(t)
	trust := newTrust(t, key)
	ctx := context.Background()
	m5, m3 := withSerial(t, "5"), withSerial(t, "3")
	if _, err := trust.Accept(ctx, m5, key.Sign(m5)); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(trust.Home, "state.json")); err != nil {
		t.Fatal(err)
	}
	if _, err := trust.Accept(ctx, m3, key.Sign(m3)); !errors.Is(err, manifests.ErrRollback) {
		t.Fatalf("older manifest after deleting state.json: %v, want ErrRollback", err)
	}
	if cur, err := trust.Current(); err != nil || cur.Serial != 5 {
		t.Fatalf("current: serial %s, %v; want serial 5", serialOf(cur), err)
	}
}

// Rollback: an older signed manifest put back on disk in place of the accepted one is refused
// by Current, as is the accepted one going missing. Before the fix Current never compared the
// stored manifest with the state and used it.
func TestTrustRollbackCurrentRefusesAnOlderStoredManifest(t *testing.T) {
	t.Parallel()
	key := releasetest.NewKey(t)
	trust := newTrust(t, key)
	m5, m3 := withSerial(t, "5"), withSerial(t, "3")
	if _, err := trust.Accept(context.Background(), m5, key.Sign(m5)); err != nil {
		t.Fatal(err)
	}
	store(t, trust.Home, m3, key.Sign(m3))
	if cur, err := trust.Current(); !errors.Is(err, manifests.ErrRollback) {
		t.Fatalf("current with serial 3 put back: serial %s, %v; want ErrRollback", serialOf(cur), err)
	}
	for _, name := range []string{manifests.RemoteName, manifests.RemoteSignature} {
		if err := os.Remove(filepath.Join(trust.Home, name)); err != nil {
			t.Fatal(err)
		}
	}
	if cur, err := trust.Current(); !errors.Is(err, manifests.ErrRollback) {
		t.Fatalf("current with the accepted manifest gone: serial %s, %v; want ErrRollback", serialOf(cur), err)
	}
	// Fetching the newest signed manifest again is the way back.
	if _, err := trust.Accept(context.Background(), m5, key.Sign(m5)); err != nil {
		t.Fatal(err)
	}
	if cur, err := trust.Current(); err != nil || cur.Serial != 5 {
		t.Fatalf("current after fetching again: serial %s, %v", serialOf(cur), err)
	}
}

// Privilege confusion, the safe direction: a user reads (never writes) what root accepted while
// installing k3s, so the user's commands see the same newest manifest and the same highest
// serial, and root reads nothing of the user's.
func TestTrustUserSeesWhatRootAccepted(t *testing.T) {
	t.Parallel()
	key := releasetest.NewKey(t)
	root := newTrust(t, key)
	user := newTrust(t, key)
	user.System = root.Home
	seenAt := time.Date(2027, 1, 2, 3, 4, 5, 0, time.UTC)
	root.Now = func() time.Time { return seenAt }
	m5, m3 := withSerial(t, "5"), withSerial(t, "3")
	if _, err := root.Accept(context.Background(), m5, key.Sign(m5)); err != nil {
		t.Fatal(err)
	}
	if cur, err := user.Current(); err != nil || cur.Serial != 5 {
		t.Fatalf("user's current: serial %s, %v; want root's serial 5", serialOf(cur), err)
	}
	if got := user.LastSeen(); !got.Equal(seenAt) {
		t.Fatalf("user's last seen %v, want root's %v", got, seenAt)
	}
	if _, err := user.Accept(context.Background(), m3, key.Sign(m3)); !errors.Is(err, manifests.ErrRollback) {
		t.Fatalf("user accepting serial 3 below root's 5: %v", err)
	}
	if entries, _ := os.ReadDir(root.Home); len(entries) != 4 { // runtimes.yaml, .minisig, state.json, lock
		t.Fatalf("root's directory changed: %v", entries)
	}
}

// Freeze: a manifest carries a signed expiry. An expired one from the mirror is refused and
// changes nothing; the manifest in use past its expiry yields a warning that harmony cannot see
// current runtime releases, saying when a remote manifest was last seen.
func TestTrustFreeze(t *testing.T) {
	t.Parallel()
	key := releasetest.NewKey(t)
	trust := newTrust(t, key)
	builtin, err := manifests.Load()
	if err != nil {
		t.Fatal(err)
	}
	before := builtin.Expires.Add(-24 * time.Hour)
	after := builtin.Expires.Add(24 * time.Hour)
	trust.Now = func() time.Time { return after }

	frozen := withExpiry(t, withSerial(t, "7"), builtin.Expires)
	if _, err := trust.Accept(context.Background(), frozen, key.Sign(frozen)); !errors.Is(err, manifests.ErrExpired) {
		t.Fatalf("expired manifest: %v, want ErrExpired", err)
	}
	if st, _ := state.Load(trust.Home); st.HighestManifestSerial != 0 || !st.ManifestLastSeen.IsZero() {
		t.Fatalf("a refused manifest changed the state: %+v", st)
	}
	cur, err := trust.Current()
	if err != nil {
		t.Fatal(err)
	}
	w := trust.FreezeWarning(cur)
	if !strings.Contains(w, "cannot see current runtime releases") || !strings.Contains(w, "last seen: never") {
		t.Fatalf("freeze warning %q", w)
	}
	trust.Now = func() time.Time { return before }
	if w := trust.FreezeWarning(cur); w != "" {
		t.Fatalf("warning before the expiry: %q", w)
	}
	// A fresh manifest is accepted and recorded as seen.
	fresh := withSerial(t, "8")
	if _, err := trust.Accept(context.Background(), fresh, key.Sign(fresh)); err != nil {
		t.Fatal(err)
	}
	if got := trust.LastSeen(); !got.Equal(before) {
		t.Fatalf("last seen %v, want %v", got, before)
	}
	trust.Now = func() time.Time { return after }
	if w := trust.FreezeWarning(cur); !strings.Contains(w, "last seen: "+before.Format(time.DateOnly)) {
		t.Fatalf("freeze warning %q does not say when a manifest was last seen", w)
	}
}

func TestTrustFetchOverHTTP(t *testing.T) {
	t.Parallel()
	key := releasetest.NewKey(t)
	srv := releasetest.New(t)
	data := withSerial(t, "2")
	srv.Add(installer.ReleaseRepo, "v1.0.0", manifests.RemoteName, data)
	srv.Add(installer.ReleaseRepo, "v1.0.0", manifests.RemoteSignature, key.Sign(data))
	srv.SetLatest(installer.ReleaseRepo, "v1.0.0")
	f := installer.NewFetcher(t.TempDir())
	trust := newTrust(t, key)
	m, err := trust.Fetch(context.Background(), f, srv.URL)
	if err != nil || m.Serial != 2 {
		t.Fatalf("fetch: %v", err)
	}
	srv.Corrupt(installer.ReleaseRepo, "v1.0.0", manifests.RemoteName)
	if _, err := trust.Fetch(context.Background(), f, srv.URL); !errors.Is(err, installer.ErrBadSignature) {
		t.Fatalf("tampered manifest: %v", err)
	}
	// Freeze: the mirror keeps serving a manifest past its expiry.
	expired := withExpiry(t, withSerial(t, "3"), time.Now().Add(-time.Hour).Truncate(time.Second))
	srv.Replace(installer.ReleaseRepo, "v1.0.0", manifests.RemoteName, expired)
	srv.Replace(installer.ReleaseRepo, "v1.0.0", manifests.RemoteSignature, key.Sign(expired))
	if _, err := trust.Fetch(context.Background(), f, srv.URL); !errors.Is(err, manifests.ErrExpired) {
		t.Fatalf("expired manifest: %v, want ErrExpired", err)
	}
}

// A stolen key cannot freeze a machine: a serial far above the highest is refused, and once the
// key is rotated out (a binary that trusts only the new key), the floors it set no longer count,
// so the new key's manifests (and the built-in one) are accepted again.
func TestTrustStolenKeyCannotFreezeUpdates(t *testing.T) {
	t.Parallel()
	stolen, next := releasetest.NewKey(t), releasetest.NewKey(t)
	trust := newTrust(t, stolen)
	ctx := context.Background()
	huge := withSerial(t, "4611686018427387904") // 2^62
	if _, err := trust.Accept(ctx, huge, stolen.Sign(huge)); !errors.Is(err, manifests.ErrSerialJump) {
		t.Fatalf("serial 2^62: %v, want ErrSerialJump", err)
	}
	high := withSerial(t, fmt.Sprint(manifests.MaxSerialJump))
	if _, err := trust.Accept(ctx, high, stolen.Sign(high)); err != nil {
		t.Fatalf("a serial within the jump: %v", err)
	}

	// The key is rotated: a harmony that trusts only the next key, on the same machine.
	v, err := installer.NewVerifier([]string{next.Public})
	if err != nil {
		t.Fatal(err)
	}
	rotated := manifests.Trust{Home: trust.Home, Verifier: v}
	if cur, err := rotated.Current(); err != nil || cur.Serial != 1 {
		t.Fatalf("current after the rotation: serial %s, %v; want the built-in one", serialOf(cur), err)
	}
	m2 := withSerial(t, "2")
	if m, err := rotated.Accept(ctx, m2, next.Sign(m2)); err != nil || m.Serial != 2 {
		t.Fatalf("the next key's serial 2 after the rotation: %v", err)
	}
	// The new key's floor holds: a replay of an older one is still a rollback.
	m1 := withSerial(t, "1")
	if _, err := rotated.Accept(ctx, m1, next.Sign(m1)); !errors.Is(err, manifests.ErrRollback) {
		t.Fatalf("serial 1 after 2 under the next key: %v, want ErrRollback", err)
	}
}
