package releasetest

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// HarmonyRepo is harmony's release repository in the tree.
const HarmonyRepo = "NationTech/harmony-agent"

// Snapshot is the signed snapshot release that scripts/test builds with goreleaser before the
// Go tests (HARMONY_TEST_DIST, HARMONY_TEST_VERSION, HARMONY_TEST_KEYDIR).
type Snapshot struct {
	Dist, Version string
	// Pubkey is the base64 public key the snapshot's binaries trust.
	Pubkey string
	// KeyFile is the matching minisign secret key (unencrypted).
	KeyFile string
}

// Tag is the snapshot's release tag.
func (s Snapshot) Tag() string { return "v" + s.Version }

// NeedSnapshot returns the snapshot release, failing in CI and skipping elsewhere when the
// tests were not started by scripts/test.
func NeedSnapshot(t testing.TB) Snapshot {
	t.Helper()
	s := Snapshot{Dist: os.Getenv("HARMONY_TEST_DIST"), Version: os.Getenv("HARMONY_TEST_VERSION")}
	keys := os.Getenv("HARMONY_TEST_KEYDIR")
	if s.Dist == "" || s.Version == "" || keys == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("HARMONY_TEST_DIST, HARMONY_TEST_VERSION and HARMONY_TEST_KEYDIR are unset: run the tests through scripts/test, which builds the snapshot release")
		}
		t.Skip("no snapshot release: run scripts/test (it builds one and sets HARMONY_TEST_DIST)")
	}
	pub, err := os.ReadFile(filepath.Join(keys, "test.pub"))
	if err != nil {
		t.Fatalf("the snapshot's public key: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(pub)), "\n")
	s.Pubkey = lines[len(lines)-1]
	s.KeyFile = filepath.Join(keys, "test.key")
	return s
}

// Serve publishes the snapshot on srv as its tag and as the latest release.
func (s Snapshot) Serve(t testing.TB, srv *Server) {
	srv.AddDir(t, HarmonyRepo, s.Tag(), s.Dist)
	srv.SetLatest(HarmonyRepo, s.Tag())
}

// Sign signs data with the snapshot's key through the minisign command, as the release does.
func (s Snapshot) Sign(t testing.TB, data []byte) []byte {
	t.Helper()
	dir := t.TempDir()
	msg := filepath.Join(dir, "msg")
	if err := os.WriteFile(msg, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("minisign", "-S", "-s", s.KeyFile, "-m", msg, "-x", msg+".minisig").CombinedOutput(); err != nil {
		t.Fatalf("minisign: %v\n%s", err, out)
	}
	sig, err := os.ReadFile(msg + ".minisig")
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

// SSH returns the snapshot's OpenSSH signing key (derived by scripts/test from the minisign key,
// as a release derives its own): the private key file and the public key ("ssh-ed25519 AAAA…").
func (s Snapshot) SSH(t testing.TB) (keyFile, pub string) {
	t.Helper()
	keyFile = filepath.Join(filepath.Dir(s.KeyFile), "test_ssh")
	b, err := os.ReadFile(keyFile + ".pub")
	if err != nil {
		t.Fatalf("the snapshot's ssh key (scripts/test writes it): %v", err)
	}
	fields := strings.Fields(string(b))
	if len(fields) < 2 {
		t.Fatalf("%s: not an OpenSSH public key", keyFile+".pub")
	}
	return keyFile, fields[0] + " " + fields[1]
}

// SignChecksums signs a checksums.txt as a release of version does: minisign with the trusted
// comment "harmony <version> checksums" (.minisig) and ssh-keygen -Y sign (.sig).
func (s Snapshot) SignChecksums(t testing.TB, data []byte, version string) (minisig, sshsig []byte) {
	t.Helper()
	dir := t.TempDir()
	msg := filepath.Join(dir, "checksums.txt")
	if err := os.WriteFile(msg, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("minisign", "-S", "-s", s.KeyFile, "-m", msg, "-x", msg+".minisig",
		"-t", "harmony "+version+" checksums").CombinedOutput(); err != nil {
		t.Fatalf("minisign: %v\n%s", err, out)
	}
	keyFile, _ := s.SSH(t)
	if out, err := exec.Command("ssh-keygen", "-Y", "sign", "-n", "harmony-release", "-f", keyFile, msg).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -Y sign: %v\n%s", err, out)
	}
	minisig, err := os.ReadFile(msg + ".minisig")
	if err != nil {
		t.Fatal(err)
	}
	sshsig, err = os.ReadFile(msg + ".sig")
	if err != nil {
		t.Fatal(err)
	}
	return minisig, sshsig
}
