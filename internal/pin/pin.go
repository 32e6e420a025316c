// Package pin maintains manifests/runtimes.yaml: it reads the upstream release checksum files of
// a k3s (and optionally a k3d) release from the mirror, downloads each listed artifact to check
// it against that digest and measure its size, writes the release's entry with both, and bumps
// the manifest's serial. A digest that is not in a checksum file it could read, or whose file
// could not be downloaded and verified, is never written: the entry says "unknown" and why.
package pin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/NationTech/harmony-agent/installer"
	"github.com/NationTech/harmony-agent/manifests"
)

// Options of one pinning run.
type Options struct {
	// Manifest is the path of runtimes.yaml to update.
	Manifest string
	// K3s is the k3s tag to pin, e.g. v1.36.5+k3s1.
	K3s string
	// K3d is the k3d tag to pin; empty keeps the current one.
	K3d string
	// Mirror is the GitHub-shaped base URL to read the checksum files from.
	Mirror string
	// KeepDefault keeps the current default even when the pinned release is newer.
	KeepDefault bool
	// Fetcher downloads the checksum files.
	Fetcher *installer.Fetcher
	// Out receives a summary of what changed.
	Out io.Writer
	// Now is the clock (nil: time.Now); the manifest expires manifests.Validity after it.
	Now func() time.Time
}

func (o *Options) validate() error {
	if o.Manifest == "" || o.K3s == "" || o.Mirror == "" || o.Fetcher == nil {
		return errors.New("pin: manifest path, k3s version, mirror and fetcher are required")
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	return nil
}

// k3sArch maps a platform to the upstream checksum file suffix and asset names.
var k3sArch = map[string]struct{ sums, binary, airgap string }{
	"linux/amd64": {"amd64", "k3s", "k3s-airgap-images-amd64.tar.zst"},
	"linux/arm64": {"arm64", "k3s-arm64", "k3s-airgap-images-arm64.tar.zst"},
	"linux/arm":   {"arm", "k3s-armhf", "k3s-airgap-images-arm.tar.zst"},
}

// Run pins the release and rewrites the manifest.
func Run(ctx context.Context, o Options) error {
	if err := o.validate(); err != nil {
		return err
	}
	raw, err := os.ReadFile(o.Manifest)
	if err != nil {
		return fmt.Errorf("pin: %w", err)
	}
	m, err := manifests.Parse(raw)
	if err != nil {
		return fmt.Errorf("pin: current manifest: %w", err)
	}
	version, err := manifests.ParseVersion(o.K3s)
	if err != nil {
		return fmt.Errorf("pin: %w", err)
	}
	rel := manifests.Release{
		Version: version,
		Assets:  map[string]manifests.Asset{},
		Airgap:  map[string]manifests.Asset{},
		Image: manifests.Image{
			Ref:     "rancher/k3s:" + version.ImageTag(),
			Unknown: "index digest not read: scripts/pin-runtime reads release checksum files only",
		},
	}
	if prev, err := m.Release(o.K3s); err == nil && prev.Image.Digest != "" {
		rel.Image = prev.Image // a digest pinned earlier for this very tag stays
	}
	verified := 0
	for _, platform := range manifests.K3sPlatforms {
		arch := k3sArch[platform]
		file := "sha256sum-" + arch.sums + ".txt"
		sums, why := o.checksums(ctx, manifests.K3sRepo, o.K3s, file)
		rel.Assets[platform] = o.asset(ctx, manifests.K3sRepo, o.K3s, arch.binary, sums, why, file)
		rel.Airgap[platform] = o.asset(ctx, manifests.K3sRepo, o.K3s, arch.airgap, sums, why, file)
		if rel.Assets[platform].SHA256 != "" {
			verified++
		}
	}
	if verified == 0 {
		return fmt.Errorf("pin: k3s %s: no binary digest could be read from the release's checksum files at %s: nothing written", o.K3s, o.Mirror)
	}
	replaced := false
	for i, r := range m.K3s.Releases {
		if r.Version.Compare(version) == 0 {
			m.K3s.Releases[i], replaced = rel, true
		}
	}
	if !replaced {
		m.K3s.Releases = append(m.K3s.Releases, rel)
	}
	if !o.KeepDefault && version.Compare(m.K3s.Default) > 0 && version.Line() == m.K3s.Line && !version.Prerelease() &&
		rel.Assets["linux/amd64"].SHA256 != "" && rel.Assets["linux/arm64"].SHA256 != "" {
		m.K3s.Default = version
	}
	if o.K3d != "" {
		k3d := manifests.K3d{Version: o.K3d, Assets: map[string]manifests.Asset{}}
		sums, why := o.checksums(ctx, manifests.K3dRepo, o.K3d, "checksums.txt")
		for _, platform := range manifests.K3dPlatforms {
			name := "k3d-" + strings.ReplaceAll(platform, "/", "-")
			if strings.HasPrefix(platform, "windows/") {
				name += ".exe"
			}
			k3d.Assets[platform] = o.asset(ctx, manifests.K3dRepo, o.K3d, name, sums, why, "checksums.txt")
		}
		m.K3d = k3d
	}
	m.Serial++
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	m.Expires = now().UTC().Add(manifests.Validity).Truncate(24 * time.Hour)
	out, err := m.Marshal()
	if err != nil {
		return fmt.Errorf("pin: the updated manifest is invalid: %w", err)
	}
	if err := installer.WriteFileAtomic(o.Manifest, strings.NewReader(string(out)), 0o644); err != nil {
		return fmt.Errorf("pin: %w", err)
	}
	fmt.Fprintf(o.Out, "pinned k3s %s (default %s), k3d %s; serial %d, expires %s\n", version, m.K3s.Default, m.K3d.Version, m.Serial, m.Expires.Format(time.DateOnly))
	for _, p := range manifests.K3sPlatforms {
		for _, a := range []manifests.Asset{rel.Assets[p], rel.Airgap[p]} {
			if a.SHA256 == "" {
				fmt.Fprintf(o.Out, "  %s %s: unknown (%s)\n", p, a.Name, a.Unknown)
			}
		}
	}
	return nil
}

// checksums fetches and parses one upstream checksum file; on failure it returns why.
func (o *Options) checksums(ctx context.Context, repo, tag, file string) (map[string]string, string) {
	b, err := o.Fetcher.Get(ctx, installer.ReleaseURL(o.Mirror, repo, tag, file), 1<<20)
	if err != nil {
		return nil, fmt.Sprintf("%s could not be read: %v", file, err)
	}
	sums, err := installer.ParseChecksums(b)
	if err != nil {
		return nil, fmt.Sprintf("%s is malformed: %v", file, err)
	}
	return sums, ""
}

// maxMeasured bounds the downloads pin-runtime makes to measure an artifact (the largest, the
// uncompressed air-gap image tarballs, are under 1 GiB).
const maxMeasured = 4 << 30

// asset pins one artifact: its digest from the checksum file, and its size measured on a
// download verified against that digest.
func (o *Options) asset(ctx context.Context, repo, tag, name string, sums map[string]string, why, file string) manifests.Asset {
	if sums == nil {
		return manifests.Asset{Name: name, Unknown: why}
	}
	d, err := installer.Lookup(sums, name)
	if err != nil {
		return manifests.Asset{Name: name, Unknown: "not listed in the release's " + file}
	}
	res, err := o.Fetcher.Fetch(ctx, installer.Artifact{Name: name, URL: installer.ReleaseURL(o.Mirror, repo, tag, name), SHA256: d, MaxSize: maxMeasured})
	if err != nil {
		return manifests.Asset{Name: name, Unknown: fmt.Sprintf("size not measured: %v", err)}
	}
	st, err := os.Stat(res.Path)
	if err != nil {
		return manifests.Asset{Name: name, Unknown: fmt.Sprintf("size not measured: %v", err)}
	}
	return manifests.Asset{Name: name, SHA256: d, Size: st.Size()}
}
