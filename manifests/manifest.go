// Package manifests holds harmony's pinned runtime manifest (runtimes.yaml, embedded in the
// binary as the offline trust root), loads and validates it, and answers what to install:
// which artifact and digest for a platform, which version by default, and which upgrades the
// version policy allows. A newer manifest is accepted from a release only when signed by a
// trusted key and not older than the newest one seen.
package manifests

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/NationTech/harmony-agent/installer"
)

//go:embed runtimes.yaml
var embedded []byte

// Embedded returns the raw manifest built into this binary.
func Embedded() []byte { return embedded }

// SchemaVersion is the manifest schema this binary reads.
const SchemaVersion = 1

// Upstream release repositories, in GitHub's layout under the mirror.
const (
	K3sRepo = "k3s-io/k3s"
	K3dRepo = "k3d-io/k3d"
)

var (
	// ErrUnsupportedPlatform means the manifest has no artifact for an os/arch.
	ErrUnsupportedPlatform = errors.New("no artifact for this platform")
	// ErrDigestUnknown means the artifact exists upstream but its digest is not pinned, so
	// harmony refuses to use it.
	ErrDigestUnknown = errors.New("digest not pinned")
)

// Asset is one upstream file with its pinned SHA-256 and size, or the reason no digest is pinned.
type Asset struct {
	Name   string `json:"name"`
	SHA256 string `json:"sha256,omitempty"`
	// Size is the file's exact size in bytes, as scripts/pin-runtime measured it on the verified
	// download.
	Size int64 `json:"size,omitempty"`
	// MaxSize bounds the file's size where the exact size was not measured.
	MaxSize int64  `json:"maxSize,omitempty"`
	Unknown string `json:"unknown,omitempty"`
}

// Bound is the most bytes harmony downloads for the asset: its size, else its pinned bound.
func (a Asset) Bound() int64 {
	if a.Size > 0 {
		return a.Size
	}
	return a.MaxSize
}

// Image is a container image reference pinned by digest, or the reason it is not.
type Image struct {
	Ref     string `json:"ref"`
	Digest  string `json:"digest,omitempty"`
	Unknown string `json:"unknown,omitempty"`
}

// Pinned returns ref@digest, or ErrDigestUnknown.
func (i Image) Pinned() (string, error) {
	if i.Digest == "" {
		return "", fmt.Errorf("image %s: %w: %s", i.Ref, ErrDigestUnknown, i.Unknown)
	}
	return i.Ref + "@" + i.Digest, nil
}

// Release is one pinned k3s release.
type Release struct {
	Version Version          `json:"version"`
	Assets  map[string]Asset `json:"assets"`
	Airgap  map[string]Asset `json:"airgap"`
	Image   Image            `json:"image"`
}

// K3s is the pinned k3s minor line.
type K3s struct {
	Line     string    `json:"line"`
	Default  Version   `json:"default"`
	Releases []Release `json:"releases"`
}

// K3d is the pinned k3d release.
type K3d struct {
	Version string           `json:"version"`
	Assets  map[string]Asset `json:"assets"`
}

// Manifest is runtimes.yaml.
type Manifest struct {
	Schema int   `json:"schema"`
	Serial int64 `json:"serial"`
	// Expires is the signed date after which this manifest no longer vouches for being current:
	// past it harmony warns that it cannot see current runtime releases (a frozen mirror, or no
	// release for too long). scripts/pin-runtime and scripts/sign-manifest set it.
	Expires time.Time `json:"expires"`
	K3s     K3s       `json:"k3s"`
	K3d     K3d       `json:"k3d"`
}

// Validity is how long a freshly pinned or signed manifest stays current (its Expires).
const Validity = 180 * 24 * time.Hour

// Expired reports whether now is past the manifest's expiry.
func (m *Manifest) Expired(now time.Time) bool { return now.After(m.Expires) }

// Platforms each runtime must list (with a digest or an explicit "unknown").
var (
	K3sPlatforms = []string{"linux/amd64", "linux/arm64", "linux/arm"}
	K3dPlatforms = []string{"linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64", "windows/amd64"}
)

// UnmarshalText parses a tag (so Version works as a YAML/JSON string).
func (v *Version) UnmarshalText(b []byte) error {
	p, err := ParseVersion(string(b))
	if err != nil {
		return err
	}
	*v = p
	return nil
}

// MarshalText renders the tag.
func (v Version) MarshalText() ([]byte, error) { return []byte(v.String()), nil }

// Load returns the embedded manifest. It is validated by the tests, so an error here means a
// broken build.
func Load() (*Manifest, error) {
	m, err := Parse(embedded)
	if err != nil {
		return nil, fmt.Errorf("embedded runtimes.yaml: %w", err)
	}
	return m, nil
}

// Parse reads and validates a manifest. Unknown fields are errors.
func Parse(data []byte) (*Manifest, error) {
	var m Manifest
	if err := yaml.UnmarshalStrict(data, &m); err != nil {
		return nil, fmt.Errorf("parse runtimes.yaml: %w", err)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// Validate checks every field and names the first bad one.
func (m *Manifest) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("runtimes.yaml: %s: %s", field, fmt.Sprintf(format, args...)))
	}
	if m.Schema != SchemaVersion {
		bad("schema", "%d is not supported (this harmony reads schema %d): update harmony", m.Schema, SchemaVersion)
	}
	if m.Serial < 1 {
		bad("serial", "must be a positive integer, got %d", m.Serial)
	}
	if m.Expires.IsZero() {
		bad("expires", "missing: the date after which harmony warns that it cannot see current runtime releases (RFC 3339, e.g. 2027-05-27T00:00:00Z)")
	}
	major, minor, err := ParseLine(m.K3s.Line)
	if err != nil {
		bad("k3s.line", "%v", err)
	}
	if len(m.K3s.Releases) == 0 {
		bad("k3s.releases", "no release pinned")
	}
	seen := map[string]bool{}
	for i, r := range m.K3s.Releases {
		f := fmt.Sprintf("k3s.releases[%d]", i)
		if r.Version.IsZero() {
			bad(f+".version", "missing")
			continue
		}
		if seen[r.Version.String()] {
			bad(f+".version", "duplicate version %s", r.Version)
		}
		seen[r.Version.String()] = true
		if err == nil && (r.Version.Major() != major || r.Version.Minor() > minor+1 || r.Version.Minor()+1 < minor) {
			bad(f+".version", "%s is outside the pinned line %s (and its neighbours)", r.Version, m.K3s.Line)
		}
		validateAssets(bad, f+".assets", r.Assets, K3sPlatforms)
		validateAssets(bad, f+".airgap", r.Airgap, K3sPlatforms)
		switch img := r.Image; {
		case img.Ref == "":
			bad(f+".image.ref", "missing")
		case img.Ref != "rancher/k3s:"+r.Version.ImageTag():
			bad(f+".image.ref", "%q does not match the version (want rancher/k3s:%s)", img.Ref, r.Version.ImageTag())
		case img.Digest == "" && img.Unknown == "":
			bad(f+".image", "needs a digest or an explicit unknown: reason")
		case img.Digest != "" && (!strings.HasPrefix(img.Digest, "sha256:") || !installer.ValidDigest(strings.TrimPrefix(img.Digest, "sha256:"))):
			bad(f+".image.digest", "%q is not sha256:<64 hex>", img.Digest)
		}
	}
	if m.K3s.Default.IsZero() {
		bad("k3s.default", "missing")
	} else if !seen[m.K3s.Default.String()] {
		bad("k3s.default", "%s is not one of k3s.releases", m.K3s.Default)
	} else if err == nil && (m.K3s.Default.Major() != major || m.K3s.Default.Minor() != minor) {
		bad("k3s.default", "%s is not in the pinned line %s", m.K3s.Default, m.K3s.Line)
	}
	if !strings.HasPrefix(m.K3d.Version, "v") {
		bad("k3d.version", "want a tag such as v5.9.0, got %q", m.K3d.Version)
	}
	validateAssets(bad, "k3d.assets", m.K3d.Assets, K3dPlatforms)
	return errors.Join(errs...)
}

func validateAssets(bad func(string, string, ...any), field string, assets map[string]Asset, required []string) {
	known := map[string]bool{}
	for _, p := range required {
		known[p] = true
		if _, ok := assets[p]; !ok {
			bad(field, "missing platform %q", p)
		}
	}
	platforms := make([]string, 0, len(assets))
	for p := range assets {
		platforms = append(platforms, p)
	}
	sort.Strings(platforms)
	for _, p := range platforms {
		a := assets[p]
		f := fmt.Sprintf("%s[%q]", field, p)
		switch {
		case !known[p]:
			bad(f, "unknown platform %q (known: %s)", p, strings.Join(required, ", "))
		case a.Name == "" || strings.ContainsAny(a.Name, "/\\") || strings.Contains(a.Name, ".."):
			bad(f+".name", "%q is not a plain asset name", a.Name)
		case a.SHA256 == "" && a.Unknown == "":
			bad(f, "needs sha256 or an explicit unknown: reason (never a placeholder digest)")
		case a.SHA256 != "" && a.Unknown != "":
			bad(f, "has both sha256 and unknown")
		case a.SHA256 != "" && !installer.ValidDigest(a.SHA256):
			bad(f+".sha256", "%q is not a lowercase SHA-256 hex digest", a.SHA256)
		case a.Size < 0 || a.MaxSize < 0:
			bad(f, "size and maxSize must be positive")
		case a.SHA256 != "" && a.Size == 0 && a.MaxSize == 0:
			bad(f, "needs size (measured by scripts/pin-runtime) or maxSize: every download is bounded")
		case a.Size > 0 && a.MaxSize > 0:
			bad(f, "has both size and maxSize")
		case a.SHA256 == "" && (a.Size > 0 || a.MaxSize > 0):
			bad(f, "a size without a digest")
		}
	}
}

// DefaultRelease returns the release installed when none is named.
func (m *Manifest) DefaultRelease() Release {
	r, _ := m.Release(m.K3s.Default.String())
	return r
}

// Release returns the pinned release with the given tag.
func (m *Manifest) Release(tag string) (Release, error) {
	v, err := ParseVersion(tag)
	if err != nil {
		return Release{}, err
	}
	for _, r := range m.K3s.Releases {
		if r.Version.Compare(v) == 0 {
			return r, nil
		}
	}
	return Release{}, fmt.Errorf("k3s %s: %w (pinned: %s)", tag, ErrNotPinned, strings.Join(m.Versions(), ", "))
}

// Versions lists the pinned k3s tags, newest first.
func (m *Manifest) Versions() []string {
	rs := append([]Release(nil), m.K3s.Releases...)
	sort.Slice(rs, func(i, j int) bool { return rs[i].Version.Compare(rs[j].Version) > 0 })
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Version.String()
	}
	return out
}

// artifact picks the asset for platform and says where to fetch it: what names it in messages
// ("k3s v1.36.4+k3s1"), repo and tag locate its release.
func artifact(what, repo, tag, platform, mirror string, assets map[string]Asset) (installer.Artifact, error) {
	a, ok := assets[platform]
	if !ok {
		return installer.Artifact{}, fmt.Errorf("%s for %s: %w", what, platform, ErrUnsupportedPlatform)
	}
	if a.SHA256 == "" {
		return installer.Artifact{}, fmt.Errorf("%s for %s (%s): %w: %s", what, platform, a.Name, ErrDigestUnknown, a.Unknown)
	}
	return installer.Artifact{
		Name:    fmt.Sprintf("%s (%s)", what, platform),
		URL:     installer.ReleaseURL(mirror, repo, tag, a.Name),
		SHA256:  a.SHA256,
		MaxSize: a.Bound(),
	}, nil
}

// Binary returns the k3s binary artifact of r for platform ("linux/amd64"), to fetch from mirror.
func (r Release) Binary(mirror, platform string) (installer.Artifact, error) {
	return artifact("k3s "+r.Version.String(), K3sRepo, r.Version.String(), platform, mirror, r.Assets)
}

// AirgapImages returns the air-gap image bundle of r for platform.
func (r Release) AirgapImages(mirror, platform string) (installer.Artifact, error) {
	return artifact("k3s "+r.Version.String()+" air-gap images", K3sRepo, r.Version.String(), platform, mirror, r.Airgap)
}

// Binary returns the k3d binary artifact for platform.
func (k K3d) Binary(mirror, platform string) (installer.Artifact, error) {
	return artifact("k3d "+k.Version, K3dRepo, k.Version, platform, mirror, k.Assets)
}

// Marshal renders the manifest as runtimes.yaml in its canonical layout (the committed file is
// exactly this rendering), with its header comment.
func (m *Manifest) Marshal() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	var b strings.Builder
	b.WriteString(header)
	fmt.Fprintf(&b, "schema: %d\nserial: %d\nexpires: %s\nk3s:\n  line: %s\n  default: %s\n  releases:\n",
		m.Schema, m.Serial, m.Expires.UTC().Format(time.RFC3339), m.K3s.Line, m.K3s.Default)
	rs := append([]Release(nil), m.K3s.Releases...)
	sort.Slice(rs, func(i, j int) bool { return rs[i].Version.Compare(rs[j].Version) > 0 })
	for _, r := range rs {
		fmt.Fprintf(&b, "  - version: %s\n    assets:\n", r.Version)
		writeAssets(&b, "      ", r.Assets, K3sPlatforms)
		b.WriteString("    airgap:\n")
		writeAssets(&b, "      ", r.Airgap, K3sPlatforms)
		fmt.Fprintf(&b, "    image:\n      ref: %s\n", r.Image.Ref)
		if r.Image.Digest != "" {
			fmt.Fprintf(&b, "      digest: %s\n", r.Image.Digest)
		} else {
			fmt.Fprintf(&b, "      unknown: %s\n", quote(r.Image.Unknown))
		}
	}
	fmt.Fprintf(&b, "k3d:\n  version: %s\n  assets:\n", m.K3d.Version)
	writeAssets(&b, "    ", m.K3d.Assets, K3dPlatforms)
	return []byte(b.String()), nil
}

func writeAssets(b *strings.Builder, indent string, assets map[string]Asset, order []string) {
	for _, p := range order {
		a := assets[p]
		switch {
		case a.SHA256 != "" && a.Size > 0:
			fmt.Fprintf(b, "%s%s: {name: %s, sha256: %s, size: %d}\n", indent, p, a.Name, a.SHA256, a.Size)
		case a.SHA256 != "":
			fmt.Fprintf(b, "%s%s: {name: %s, sha256: %s, maxSize: %d}\n", indent, p, a.Name, a.SHA256, a.MaxSize)
		default:
			fmt.Fprintf(b, "%s%s: {name: %s, unknown: %s}\n", indent, p, a.Name, quote(a.Unknown))
		}
	}
}

func quote(s string) string {
	q, _ := json.Marshal(s)
	return string(q)
}

const header = `# harmony's pinned runtime manifest: every runtime harmony installs is named here with the
# SHA-256 and size of each artifact. Embedded in the binary (the offline trust root); a newer one
# is published with each release as runtimes.yaml + runtimes.yaml.minisig. Maintained by
# scripts/pin-runtime, which takes digests only from the upstream checksum files and measures
# "size" on the verified download. Where the size was not measured, "maxSize" bounds it (a
# download stops there). An entry whose digest could not be verified says "unknown: <why>", and
# harmony refuses to use it. Past "expires" harmony warns that it cannot see current runtime
# releases; "serial" never goes down.
`
