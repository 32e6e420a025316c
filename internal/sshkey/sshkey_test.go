package sshkey_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/NationTech/harmony-agent/internal/releasetest"
	"github.com/NationTech/harmony-agent/internal/sshkey"
)

func needSSHKeygen(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("ssh-keygen is missing: scripts/test installs openssh-client")
		}
		t.Skip("ssh-keygen is not installed (scripts/test installs openssh-client)")
	}
}

// One Ed25519 key, two encodings: what ssh-keygen signs with the derived private key verifies
// with the public key derived from the minisign public key, in the release namespace only.
func TestDerivedKeySignsForTheDerivedPublicKey(t *testing.T) {
	t.Parallel()
	needSSHKeygen(t)
	key := releasetest.NewKey(t)
	dir := t.TempDir()

	priv, err := sshkey.PrivateFromMinisign(key.PrivateText(t))
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(dir, "release")
	if err := os.WriteFile(keyFile, priv, 0o600); err != nil {
		t.Fatal(err)
	}
	pub, err := sshkey.PublicFromMinisign(key.Public)
	if err != nil {
		t.Fatal(err)
	}
	got, err := exec.Command("ssh-keygen", "-y", "-f", keyFile).Output()
	if err != nil {
		t.Fatalf("ssh-keygen cannot read the derived private key: %v", err)
	}
	if fields := strings.Fields(string(got)); len(fields) < 2 || fields[0]+" "+fields[1] != pub {
		t.Fatalf("derived private key's public half %q, want %q", got, pub)
	}

	msg := filepath.Join(dir, "checksums.txt")
	if err := os.WriteFile(msg, []byte("0000  harmony_1.2.3_linux_amd64.tar.gz\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ssh-keygen", "-Y", "sign", "-n", sshkey.Namespace, "-f", keyFile, msg).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen -Y sign: %v\n%s", err, out)
	}
	signers := filepath.Join(dir, "allowed_signers")
	if err := os.WriteFile(signers, []byte(sshkey.AllowedSigners(pub)), 0o644); err != nil {
		t.Fatal(err)
	}
	verify := func(namespace string, data []byte) error {
		cmd := exec.Command("ssh-keygen", "-Y", "verify", "-f", signers, "-I", sshkey.Principal, "-n", namespace, "-s", msg+".sig")
		cmd.Stdin = bytes.NewReader(data)
		return cmd.Run()
	}
	data, _ := os.ReadFile(msg)
	if err := verify(sshkey.Namespace, data); err != nil {
		t.Fatalf("signature does not verify: %v", err)
	}
	if err := verify("file", data); err == nil {
		t.Fatal("the allowed_signers line accepted another namespace")
	}
	if err := verify(sshkey.Namespace, append(data, '\n')); err == nil {
		t.Fatal("a changed file verified")
	}
}

func TestBadKeys(t *testing.T) {
	t.Parallel()
	if _, err := sshkey.PublicFromMinisign("RWQnotakey"); err == nil {
		t.Error("a broken public key was accepted")
	}
	if _, err := sshkey.PrivateFromMinisign([]byte("untrusted comment: x\nAAAA\n")); err == nil {
		t.Error("a broken secret key was accepted")
	}
}

// The committed release keys are one key: release/allowed_signers is release/minisign.pub in
// OpenSSH's encoding.
func TestCommittedReleaseKeysAgree(t *testing.T) {
	t.Parallel()
	root, err := releasetest.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	mpub, err := os.ReadFile(filepath.Join(root, "release", "minisign.pub"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(mpub)), "\n")
	pub, err := sshkey.PublicFromMinisign(lines[len(lines)-1])
	if err != nil {
		t.Fatal(err)
	}
	signers, err := os.ReadFile(filepath.Join(root, "release", "allowed_signers"))
	if err != nil {
		t.Fatal(err)
	}
	if want := sshkey.AllowedSigners(pub); string(signers) != want {
		t.Fatalf("release/allowed_signers:\n%s\nwant (from release/minisign.pub):\n%s", signers, want)
	}
}
