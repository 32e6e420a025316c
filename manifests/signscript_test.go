package manifests_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/NationTech/harmony-agent/installer"
	"github.com/NationTech/harmony-agent/internal/releasetest"
	"github.com/NationTech/harmony-agent/manifests"
)

// Freeze: the release's before hook publishes the manifest with a fresh signed expiry, so a
// mirror that keeps serving it is noticed once that date has passed.
func TestSignManifestScriptSetsASignedExpiry(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("minisign"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("minisign is missing (scripts/test installs it)")
		}
		t.Skip("minisign is missing")
	}
	repo := t.TempDir() // a copy of the two files the script reads, so the real .release stays
	for _, f := range []string{"scripts/sign-manifest", "manifests/runtimes.yaml"} {
		b, err := os.ReadFile(filepath.Join("..", f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(repo, filepath.Dir(f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(repo, f), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	key := releasetest.NewKey(t)
	keyFile := filepath.Join(t.TempDir(), "release.key")
	if err := os.WriteFile(keyFile, key.PrivateText(t), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(repo, "scripts", "sign-manifest"))
	cmd.Env = append(os.Environ(), "HARMONY_MINISIGN_KEY="+keyFile, "HARMONY_MANIFEST_VALID_DAYS=30")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sign-manifest: %v\n%s", err, out)
	}
	data, err := os.ReadFile(filepath.Join(repo, ".release", manifests.RemoteName))
	if err != nil {
		t.Fatal(err)
	}
	sig, err := os.ReadFile(filepath.Join(repo, ".release", manifests.RemoteSignature))
	if err != nil {
		t.Fatal(err)
	}
	v, _ := installer.NewVerifier([]string{key.Public})
	if _, err := v.Verify(manifests.RemoteName, data, sig); err != nil {
		t.Fatal(err)
	}
	m, err := manifests.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	builtin, _ := manifests.Load()
	day := time.Now().UTC().Add(30 * 24 * time.Hour).Truncate(24 * time.Hour)
	if m.Serial != builtin.Serial || m.Expires.Before(day.Add(-24*time.Hour)) || m.Expires.After(day.Add(24*time.Hour)) {
		t.Fatalf("published serial %d expires %v, want serial %d expiring about %v", m.Serial, m.Expires, builtin.Serial, day)
	}
}
