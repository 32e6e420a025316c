package bootstrap_test

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/NationTech/harmony-agent/bootstrap"
	"github.com/NationTech/harmony-agent/installer"
	"github.com/NationTech/harmony-agent/internal/releasetest"
	"github.com/NationTech/harmony-agent/manifests"
)

// Freeze: past the expiry of the manifest in use, runtime status warns that harmony cannot see
// current runtime releases, and says when a remote manifest was last seen.
func TestStatusFreezeWarnsPastTheManifestExpiry(t *testing.T) {
	t.Parallel()
	builtin, err := manifests.Load()
	if err != nil {
		t.Fatal(err)
	}
	v, err := installer.NewVerifier([]string{releasetest.NewKey(t).Public})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		now  time.Time
		want string
	}{
		{"before the expiry", builtin.Expires.Add(-time.Hour), ""},
		{"after the expiry", builtin.Expires.Add(time.Hour), "(last seen: never): harmony cannot see current runtime releases"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			trust := manifests.Trust{Home: t.TempDir(), Verifier: v, Now: func() time.Time { return tt.now }}
			k := bootstrap.NewK3s(trust.Home, trust, io.Discard, true)
			k.Paths = bootstrap.Paths{Root: t.TempDir()}
			st, err := k.Status(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if st.ManifestSerial != builtin.Serial || !st.ManifestExpires.Equal(builtin.Expires) || !st.ManifestLastSeen.IsZero() {
				t.Fatalf("manifest in status: serial %d, expires %v, last seen %v", st.ManifestSerial, st.ManifestExpires, st.ManifestLastSeen)
			}
			got := strings.Join(st.Warnings, "\n")
			if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Fatalf("warnings %q, want %q", got, tt.want)
			}
		})
	}
}
