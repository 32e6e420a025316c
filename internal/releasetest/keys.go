package releasetest

import (
	"crypto/rand"
	"fmt"
	"testing"

	"aead.dev/minisign"
)

// Key is a throwaway minisign key pair made by a test.
type Key struct {
	// Public is the base64 public key line, as a trusted key is given to harmony.
	Public string
	// ID is the key id as minisign prints it.
	ID   string
	priv minisign.PrivateKey
}

// NewKey generates a throwaway key pair.
func NewKey(t testing.TB) *Key {
	t.Helper()
	pub, priv, err := minisign.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &Key{Public: pub.String(), ID: fmt.Sprintf("%X", pub.ID()), priv: priv}
}

// Sign returns a minisign signature of data (the .minisig file's content).
func (k *Key) Sign(data []byte) []byte {
	return minisign.SignWithComments(k.priv, data, "harmony test", "signature from a throwaway test key")
}

// PrivateText returns the unencrypted secret key file's content, for the minisign command.
func (k *Key) PrivateText(t testing.TB) []byte {
	t.Helper()
	b, err := k.priv.MarshalText()
	if err != nil {
		t.Fatal(err)
	}
	return b
}
