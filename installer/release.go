package installer

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"runtime"
	"strings"
	"time"

	"aead.dev/minisign"
	"github.com/Masterminds/semver/v3"
)

// ErrVersionMismatch means signed release files name another version than the one asked for or
// than their own archives carry (mix-and-match).
var ErrVersionMismatch = errors.New("release files are for another version")

// Release is one harmony release as its signed checksums.txt describes it. The version comes
// from the signature's trusted comment ("harmony <version> checksums"), so it is covered by the
// signature; every archive listed must carry that same version.
type Release struct {
	Version *semver.Version
	// Until is the time until which the release vouches for being the newest, from the file
	// checksums.txt lists for it (UntilPrefix): a mirror still serving it as the newest after that
	// may be frozen. Zero when it lists none.
	Until time.Time
	// Checksums maps each asset name to its SHA-256 digest.
	Checksums map[string]string
	// KeyID is the id of the trusted key that signed checksums.txt.
	KeyID string
}

// Tag is the release's tag, "v<version>".
func (r Release) Tag() string { return "v" + r.Version.String() }

// ArchiveName is the name of the release archive for a platform, as the release pipeline names it.
func ArchiveName(version, goos, goarch string) string {
	ext := ".tar.gz"
	if goos == "windows" {
		ext = ".zip"
	}
	return fmt.Sprintf("harmony_%s_%s_%s%s", strings.TrimPrefix(version, "v"), goos, goarch, ext)
}

// Archive returns the name and digest of this release's archive for the running platform.
func (r Release) Archive() (string, string, error) {
	name := ArchiveName(r.Version.String(), runtime.GOOS, runtime.GOARCH)
	d, err := Lookup(r.Checksums, name)
	if err != nil {
		return "", "", fmt.Errorf("release %s has no archive for %s/%s: %w", r.Tag(), runtime.GOOS, runtime.GOARCH, err)
	}
	return name, d, nil
}

var (
	trustedCommentRE = regexp.MustCompile(`^harmony (\S+) checksums$`)
	archiveNameRE    = regexp.MustCompile(`^harmony_([^_]+)_[a-z0-9]+_[a-z0-9]+\.(?:tar\.gz|zip)$`)
)

// Size caps of the small signed files of a release.
const (
	maxChecksumsSize = 1 << 20
	maxSignatureSize = 4 << 10
)

// FetchRelease downloads checksums.txt and its minisign signature of harmony's release tag ("" or
// "latest" for the newest) from mirror, verifies the signature with v, and returns the release.
// A tag's files must name that tag's version; the archives must all carry the signed version.
func (f *Fetcher) FetchRelease(ctx context.Context, mirror, tag string, v *Verifier) (Release, error) {
	sums, err := f.Get(ctx, ReleaseURL(mirror, ReleaseRepo, tag, "checksums.txt"), maxChecksumsSize)
	if err != nil {
		return Release{}, err
	}
	sig, err := f.Get(ctx, ReleaseURL(mirror, ReleaseRepo, tag, "checksums.txt.minisig"), maxSignatureSize)
	if err != nil {
		return Release{}, err
	}
	return ParseRelease(sums, sig, tag, v)
}

// ParseRelease verifies a release's checksums.txt against its signature and binds it to its
// version; tag, when it names a version, must be that version.
func ParseRelease(sums, sig []byte, tag string, v *Verifier) (Release, error) {
	keyID, err := v.Verify("checksums.txt", sums, sig)
	if err != nil {
		return Release{}, err
	}
	var s minisign.Signature
	if err := s.UnmarshalText(sig); err != nil { // cannot fail: Verify parsed it
		return Release{}, fmt.Errorf("verify %q: %w", "checksums.txt", ErrBadSignature)
	}
	m := trustedCommentRE.FindStringSubmatch(s.TrustedComment)
	if m == nil {
		return Release{}, fmt.Errorf("checksums.txt: signed comment %q does not name a harmony release: %w", s.TrustedComment, ErrBadSignature)
	}
	version, err := semver.StrictNewVersion(strings.TrimPrefix(m[1], "v"))
	if err != nil {
		return Release{}, fmt.Errorf("checksums.txt: signed version %q: %w", m[1], err)
	}
	if tag != "" && tag != "latest" {
		want, err := semver.NewVersion(tag)
		if err != nil {
			return Release{}, fmt.Errorf("release tag %q is not a version: %w", tag, err)
		}
		if !want.Equal(version) {
			return Release{}, fmt.Errorf("asked for %s, but its signed checksums.txt is for v%s: %w", tag, version, ErrVersionMismatch)
		}
	}
	list, err := ParseChecksums(sums)
	if err != nil {
		return Release{}, err
	}
	for name := range list {
		if am := archiveNameRE.FindStringSubmatch(name); am != nil && am[1] != version.String() {
			return Release{}, fmt.Errorf("checksums.txt signed for v%s lists %q: %w", version, name, ErrVersionMismatch)
		}
	}
	return Release{Version: version, Until: untilOf(list), Checksums: list, KeyID: keyID}, nil
}

// UntilPrefix begins the name of the empty file a release publishes, and lists in its signed
// checksums.txt, to say until when it vouches for being the newest release:
// harmony-current-until-20270307T000000Z (UTC). Inside checksums.txt the time is signed on both
// signature paths (minisign and OpenSSH), and installers that predate it pass over the line.
const UntilPrefix = "harmony-current-until-"

// UntilLayout is the time in an UntilPrefix name (Go's time layout).
const UntilLayout = "20060102T150405Z"

// MaxUntilAhead is the furthest ahead a release's time is believed: a release vouches for being
// the newest for months (90 days, at most 366), and one that claims more would hide a frozen
// mirror for good. A day more than the most a release may sign, for clocks that differ.
const MaxUntilAhead = 367 * 24 * time.Hour

// untilOf is the time a checksums list signs with UntilPrefix: the latest when it lists several
// (a re-signed release that kept its first line), zero when it lists none it can read. A name
// it cannot read is passed over, not refused: a later release may spell it otherwise, and only
// the release key signs it.
func untilOf(list map[string]string) time.Time {
	var until time.Time
	for name := range list {
		rest, ok := strings.CutPrefix(name, UntilPrefix)
		if !ok {
			continue
		}
		if t, err := time.Parse(UntilLayout, rest); err == nil && t.After(until) {
			until = t
		}
	}
	return until
}

// StaleNewest says why r, served as the newest release, may not be the newest: it vouched for
// that only until a time now past, or names no such time (or one too far ahead to believe). A
// mirror frozen on an old release looks like "nothing newer" without this. "" when r is current.
func (r Release) StaleNewest(now time.Time, mirror string) string {
	var why string
	switch {
	case r.Until.IsZero():
		why = "does not say until when it is current, so a mirror frozen on an old release cannot be told apart"
	case r.Until.After(now.Add(MaxUntilAhead)):
		why = fmt.Sprintf("claims to be current until %s, more than a year ahead, so a mirror frozen on an old release cannot be told apart", r.Until.UTC().Format(time.DateOnly))
	case now.After(r.Until):
		why = fmt.Sprintf("was signed as current only until %s: newer releases may exist", r.Until.UTC().Format(time.DateOnly))
	default:
		return ""
	}
	do := "something between you and the release server may be replaying an old release: check your network or proxy"
	if strings.TrimRight(mirror, "/") != DefaultMirror {
		do = fmt.Sprintf("ask whoever runs the mirror %s to sync it, or unset %s to ask the public release server", redactURL(mirror), MirrorEnv)
	}
	return fmt.Sprintf("the newest release the mirror offers, v%s, %s; %s", r.Version, why, do)
}
