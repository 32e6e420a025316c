package installer

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"aead.dev/minisign"
)

var (
	// ErrChecksumMismatch means downloaded bytes do not hash to the pinned digest.
	ErrChecksumMismatch = errors.New("checksum mismatch")
	// ErrBadSignature means a signature is missing, malformed, made by an untrusted key or does
	// not match the signed file.
	ErrBadSignature = errors.New("signature verification failed")
	// ErrNoTrustedKey means this binary was built without any trusted release key.
	ErrNoTrustedKey = errors.New("no trusted release key is built into this binary")
	// ErrNotListed means checksums.txt has no line for the asset.
	ErrNotListed = errors.New("not listed in checksums")
)

// ValidDigest reports whether s is a lowercase hex SHA-256 digest.
func ValidDigest(s string) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}

// ParseChecksums parses a sha256sum-style file ("<digest>  <name>" or "<digest> *<name>" per
// line, as goreleaser, k3s and k3d publish) into a map from asset name to digest. Blank lines
// are skipped; anything else malformed, or a name listed twice with different digests, is an error.
func ParseChecksums(data []byte) (map[string]string, error) {
	sums := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if strings.TrimSpace(line) == "" {
			continue
		}
		digest, name, ok := strings.Cut(line, " ")
		name = strings.TrimPrefix(strings.TrimLeft(name, " "), "*")
		digest = strings.ToLower(digest)
		if !ok || !ValidDigest(digest) || name == "" {
			return nil, fmt.Errorf("checksums line %d: want \"<sha256>  <name>\", got %q", n, line)
		}
		if prev, dup := sums[name]; dup && prev != digest {
			return nil, fmt.Errorf("checksums line %d: %q listed twice with different digests", n, name)
		}
		sums[name] = digest
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read checksums: %w", err)
	}
	if len(sums) == 0 {
		return nil, errors.New("checksums file lists no file")
	}
	return sums, nil
}

// Lookup returns the digest listed for asset.
func Lookup(sums map[string]string, asset string) (string, error) {
	d, ok := sums[asset]
	if !ok {
		return "", fmt.Errorf("%q: %w", asset, ErrNotListed)
	}
	return d, nil
}

// Verifier checks minisign signatures against a fixed list of trusted public keys.
type Verifier struct {
	keys []minisign.PublicKey
}

// NewVerifier parses trusted public keys (the base64 line of a minisign .pub file, or the
// whole file).
func NewVerifier(keys []string) (*Verifier, error) {
	v := &Verifier{}
	for i, k := range keys {
		var pk minisign.PublicKey
		if err := pk.UnmarshalText([]byte(strings.TrimSpace(k))); err != nil {
			return nil, fmt.Errorf("trusted key %d: %w", i+1, err)
		}
		v.keys = append(v.keys, pk)
	}
	return v, nil
}

// KeyIDs returns the ids of the trusted keys, as minisign prints them.
func (v *Verifier) KeyIDs() []string {
	var ids []string
	for _, k := range v.keys {
		ids = append(ids, fmt.Sprintf("%X", k.ID()))
	}
	return ids
}

// Verify checks that sig is a valid minisign signature of msg by one of the trusted keys and
// returns that key's id. what names the signed file in errors.
func (v *Verifier) Verify(what string, msg, sig []byte) (string, error) {
	if len(v.keys) == 0 {
		return "", fmt.Errorf("verify %q: %w", what, ErrNoTrustedKey)
	}
	if len(bytes.TrimSpace(sig)) == 0 {
		return "", fmt.Errorf("verify %q: signature is missing or empty: %w", what, ErrBadSignature)
	}
	var s minisign.Signature
	if err := s.UnmarshalText(sig); err != nil {
		return "", fmt.Errorf("verify %q: malformed signature (%v): %w", what, err, ErrBadSignature)
	}
	for _, k := range v.keys {
		if k.ID() != s.KeyID {
			continue
		}
		if minisign.Verify(k, msg, sig) {
			return fmt.Sprintf("%X", k.ID()), nil
		}
		return "", fmt.Errorf("verify %q: signature by key %X does not match the file (tampered or corrupted): %w", what, k.ID(), ErrBadSignature)
	}
	return "", fmt.Errorf("verify %q: signed by key %X, which this binary does not trust (trusted: %s): %w",
		what, s.KeyID, strings.Join(v.KeyIDs(), ", "), ErrBadSignature)
}
