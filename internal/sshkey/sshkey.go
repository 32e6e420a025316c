// Package sshkey gives harmony's Ed25519 release key in OpenSSH's encodings, so that a release is
// signed twice with one key: minisign (checksums.txt.minisig) and OpenSSH's `ssh-keygen -Y sign`
// (checksums.txt.sig), which a stock machine verifies with `ssh-keygen -Y verify`.
//
// A minisign key is an Ed25519 key: the OpenSSH public key is the same 32 bytes, and the OpenSSH
// private key is derived from the minisign secret key at release time (never stored).
package sshkey

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"strings"

	"aead.dev/minisign"
	"golang.org/x/crypto/ssh"
)

// Namespace is the OpenSSH signature namespace of a release's checksums.txt.sig (ssh-keygen -n).
const Namespace = "harmony-release"

// Principal names the release key in an allowed_signers file (ssh-keygen -I).
const Principal = "harmony-release"

// PublicFromMinisign returns the OpenSSH public key ("ssh-ed25519 AAAA…") of a minisign public
// key given as its base64 line.
func PublicFromMinisign(minisignPub string) (string, error) {
	var pub minisign.PublicKey
	if err := pub.UnmarshalText([]byte(strings.TrimSpace(minisignPub))); err != nil {
		return "", fmt.Errorf("minisign public key %q: %w", minisignPub, err)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(minisignPub))
	if err != nil || len(raw) != 2+8+ed25519.PublicKeySize {
		return "", fmt.Errorf("minisign public key %q: not an Ed25519 key", minisignPub)
	}
	sshPub, err := ssh.NewPublicKey(ed25519.PublicKey(raw[10:]))
	if err != nil {
		return "", fmt.Errorf("minisign public key %q: %w", minisignPub, err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sshPub))), nil
}

// AllowedSigners returns the allowed_signers line that trusts key (an OpenSSH public key) for
// release signatures only.
func AllowedSigners(key string) string {
	return fmt.Sprintf("%s namespaces=%q %s\n", Principal, Namespace, key)
}

// PrivateFromMinisign returns the OpenSSH private key file (PEM, unencrypted) of an unencrypted
// minisign secret key file's content.
func PrivateFromMinisign(minisignKey []byte) ([]byte, error) {
	var priv minisign.PrivateKey
	if err := priv.UnmarshalText(minisignKey); err != nil {
		return nil, fmt.Errorf("minisign secret key: %w", err)
	}
	// The unencrypted encoding: algorithm, KDF and hash (2 bytes each), salt (32), KDF limits
	// (8+8), key id (8), Ed25519 private key (64: seed, then public key), checksum (32).
	text, err := priv.MarshalText()
	if err != nil {
		return nil, err
	}
	_, b64, _ := strings.Cut(string(text), "\n")
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
	if err != nil || len(raw) != 158 {
		return nil, fmt.Errorf("minisign secret key: unexpected encoding")
	}
	key := ed25519.NewKeyFromSeed(raw[62 : 62+ed25519.SeedSize])
	if !bytes.Equal(key, raw[62:126]) {
		return nil, fmt.Errorf("minisign secret key: its public half does not match its seed")
	}
	block, err := ssh.MarshalPrivateKey(key, Principal)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(block), nil
}
