package installer_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/NationTech/harmony-agent/installer"
	"github.com/NationTech/harmony-agent/internal/releasetest"
)

// The signed trusted comment of checksums.txt names the version and the time until which the
// release vouches for being the newest; a release served as the newest past that time (or
// signed with none) is called out as possibly stale, whatever a mirror says.
func TestReleaseSignedUntil(t *testing.T) {
	t.Parallel()
	key := releasetest.NewKey(t)
	v, err := installer.NewVerifier([]string{key.Public})
	if err != nil {
		t.Fatal(err)
	}
	sums := releasetest.Checksums(map[string][]byte{"harmony_1.2.0_linux_amd64.tar.gz": []byte("archive")})
	now := time.Date(2027, 3, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name, comment string
		until         time.Time
		stale         string // part of StaleNewest's text; "" for none
		err           error
	}{
		{name: "current", comment: releasetest.ChecksumsComment("1.2.0", now.Add(time.Hour)), until: now.Add(time.Hour)},
		{name: "past its time", comment: releasetest.ChecksumsComment("1.2.0", now.Add(-time.Hour)), until: now.Add(-time.Hour),
			stale: "was signed as current only until 2027-02-28: newer releases may exist"},
		{name: "no time signed", comment: "harmony 1.2.0 checksums", stale: "is signed without a date"},
		{name: "a time that is not one", comment: "harmony 1.2.0 checksums until tomorrow", err: installer.ErrBadSignature},
		{name: "another comment", comment: "harmony 1.2.0 checksums until", err: installer.ErrBadSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rel, err := installer.ParseRelease(sums, key.SignComment(sums, tc.comment), "latest", v)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("ParseRelease: %v, want %v", err, tc.err)
				}
				return
			}
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
		})
	}
}
