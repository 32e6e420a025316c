package installer_test

import (
	"strings"
	"testing"
	"time"

	"github.com/NationTech/harmony-agent/installer"
	"github.com/NationTech/harmony-agent/internal/releasetest"
)

// A release's signed checksums.txt lists an empty file whose name says until when the release
// vouches for being the newest; a release served as the newest past that time (or listing none,
// or one too far ahead to believe) is called out as possibly stale, whatever a mirror says.
func TestReleaseSignedUntil(t *testing.T) {
	t.Parallel()
	key := releasetest.NewKey(t)
	v, err := installer.NewVerifier([]string{key.Public})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)
	archive := "harmony_1.2.0_linux_amd64.tar.gz"
	for _, tc := range []struct {
		name  string
		extra []string // further names listed
		until time.Time
		stale string // part of StaleNewest's text; "" for none
	}{
		{name: "current", extra: []string{releasetest.UntilAsset(now.Add(time.Hour))}, until: now.Add(time.Hour)},
		{name: "past its time", extra: []string{releasetest.UntilAsset(now.Add(-time.Hour))}, until: now.Add(-time.Hour),
			stale: "was signed as current only until 2027-02-28: newer releases may exist"},
		{name: "no time listed", stale: "does not say until when it is current"},
		{name: "too far ahead to believe", extra: []string{releasetest.UntilAsset(now.Add(400 * 24 * time.Hour))}, until: now.Add(400 * 24 * time.Hour),
			stale: "more than a year ahead"},
		// A name harmony cannot read is passed over (a later release may spell it otherwise), not
		// a reason to refuse the release; of two times, the later one counts (a re-signed release).
		{name: "a time that is not one", extra: []string{installer.UntilPrefix + "tomorrow"}, stale: "does not say until when it is current"},
		{name: "two times", extra: []string{releasetest.UntilAsset(now.Add(-time.Hour)), releasetest.UntilAsset(now.Add(time.Hour))}, until: now.Add(time.Hour)},
		{name: "two times, both past", extra: []string{releasetest.UntilAsset(now.Add(-2 * time.Hour)), releasetest.UntilAsset(now.Add(-time.Hour))}, until: now.Add(-time.Hour),
			stale: "was signed as current only until"},
		{name: "a year ahead, the most a release signs", extra: []string{releasetest.UntilAsset(now.Add(366 * 24 * time.Hour))}, until: now.Add(366 * 24 * time.Hour)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assets := map[string][]byte{archive: []byte("archive")}
			for _, n := range tc.extra {
				assets[n] = nil
			}
			sums := releasetest.Checksums(assets)
			rel, err := installer.ParseRelease(sums, key.SignComment(sums, "harmony 1.2.0 checksums"), "latest", v)
			if err != nil {
				t.Fatal(err)
			}
			if !rel.Until.Equal(tc.until) || rel.Version.String() != "1.2.0" {
				t.Fatalf("release %s until %v, want 1.2.0 until %v", rel.Version, rel.Until, tc.until)
			}
			got := rel.StaleNewest(now, "https://user:secret@mirror.test/")
			if tc.stale == "" && got != "" || !strings.Contains(got, tc.stale) {
				t.Fatalf("StaleNewest: %q, want %q", got, tc.stale)
			}
			if strings.Contains(got, "secret") {
				t.Fatalf("StaleNewest shows the mirror's password: %q", got)
			}
			if tc.stale != "" && !strings.Contains(got, "ask whoever runs the mirror https://user:xxxxx@mirror.test/ to sync it, or unset HARMONY_MIRROR") {
				t.Fatalf("StaleNewest does not say what to do about a mirror: %q", got)
			}
			if tc.stale != "" && !strings.Contains(rel.StaleNewest(now, installer.DefaultMirror), "check your network or proxy") {
				t.Fatalf("StaleNewest on the default server: %q", rel.StaleNewest(now, installer.DefaultMirror))
			}
		})
	}
}
