package installer_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/NationTech/harmony-agent/installer"
	"github.com/NationTech/harmony-agent/internal/releasetest"
)

func TestParseChecksums(t *testing.T) {
	t.Parallel()
	d1, d2 := strings.Repeat("a", 64), strings.Repeat("b", 64)
	sums, err := installer.ParseChecksums([]byte(d1 + "  harmony_1.0.0_linux_amd64.tar.gz\n\n" + strings.ToUpper(d2) + " *k3s\r\n"))
	if err != nil {
		t.Fatal(err)
	}
	if sums["harmony_1.0.0_linux_amd64.tar.gz"] != d1 || sums["k3s"] != d2 || len(sums) != 2 {
		t.Fatalf("parsed %v", sums)
	}
	if _, err := installer.Lookup(sums, "k3s-arm64"); !errors.Is(err, installer.ErrNotListed) {
		t.Fatalf("Lookup of a missing asset: %v", err)
	}
	for _, bad := range []string{"", "zz  k3s\n", d1 + "\n", d1[:63] + "  k3s\n", d1 + "  k3s\n" + d2 + "  k3s\n", "<html>404</html>"} {
		if _, err := installer.ParseChecksums([]byte(bad)); err == nil {
			t.Errorf("ParseChecksums(%q) accepted bad input", bad)
		}
	}
}

func FuzzParseChecksums(f *testing.F) {
	f.Add([]byte(strings.Repeat("a", 64) + "  k3s\n"))
	f.Add([]byte(strings.Repeat("0", 64) + " *x y\r\n\n"))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, data []byte) {
		sums, err := installer.ParseChecksums(data)
		if err != nil {
			return
		}
		if len(sums) == 0 {
			t.Fatal("accepted a file with no entries")
		}
		for name, d := range sums {
			if !installer.ValidDigest(d) || name == "" {
				t.Fatalf("accepted entry %q => %q", name, d)
			}
		}
	})
}

func TestVerifier(t *testing.T) {
	t.Parallel()
	trusted, other := releasetest.NewKey(t), releasetest.NewKey(t)
	msg := []byte("checksums")
	v, err := installer.NewVerifier([]string{other.Public, trusted.Public})
	if err != nil {
		t.Fatal(err)
	}
	id, err := v.Verify("checksums.txt", msg, trusted.Sign(msg))
	if err != nil || id != trusted.ID {
		t.Fatalf("good signature: id %q, err %v", id, err)
	}
	only, _ := installer.NewVerifier([]string{trusted.Public})
	empty, _ := installer.NewVerifier(nil)
	tests := []struct {
		name    string
		v       *installer.Verifier
		msg     []byte
		sig     []byte
		wantErr error
		wantMsg string
	}{
		{"tampered file", v, []byte("checksumz"), trusted.Sign(msg), installer.ErrBadSignature, "does not match"},
		{"untrusted key", only, msg, other.Sign(msg), installer.ErrBadSignature, "does not trust"},
		{"malformed", v, msg, []byte("untrusted comment: x\nnot base64!\n"), installer.ErrBadSignature, "malformed"},
		{"missing", v, msg, nil, installer.ErrBadSignature, "missing"},
		{"no trusted key", empty, msg, trusted.Sign(msg), installer.ErrNoTrustedKey, "no trusted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.v.Verify("checksums.txt", tt.msg, tt.sig)
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("error %v, want %v saying %q", err, tt.wantErr, tt.wantMsg)
			}
		})
	}
	if _, err := installer.NewVerifier([]string{"not a key"}); err == nil {
		t.Fatal("NewVerifier accepted a malformed key")
	}
}
