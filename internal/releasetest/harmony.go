package releasetest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"aead.dev/minisign"
)

// BuildHarmonyVersion builds a harmony binary that reports version and trusts only the given
// keys, as the release pipeline stamps them, and returns its path.
func BuildHarmonyVersion(dir, version string, trustedKeys ...string) (string, error) {
	out := filepath.Join(dir, "harmony-"+version)
	pkg := "github.com/NationTech/harmony-agent/internal/buildinfo"
	ldflags := "-s -w -X " + pkg + ".Version=" + version + " -X " + pkg + ".TrustedKeys=" + strings.Join(trustedKeys, ",")
	return out, goBuild(out, "./cmd/harmony", ldflags)
}

// HarmonyRelease is a harmony release a test publishes: the archive for this platform holding
// binary, checksums.txt, and its minisign signature whose trusted comment names the version, as
// the release pipeline makes them.
type HarmonyRelease struct {
	Version   string
	Archive   string
	Checksums []byte
	Signature []byte
}

// Archive returns a .tar.gz holding file under name (mode 0755), as a release archive does.
func Archive(name string, file []byte) ([]byte, error) {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(file)), Typeflag: tar.TypeReg}); err != nil {
		return nil, err
	}
	if _, err := tw.Write(file); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	if err := gz.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// PublishHarmony publishes binary as harmony release version (tag "v"+version) on s, signed
// with key for comment version signedAs (normally version itself) and current for 90 days, and
// returns what it served.
func (s *Server) PublishHarmony(key *Key, version, signedAs string, binary []byte) (HarmonyRelease, error) {
	return s.PublishHarmonyUntil(key, version, signedAs, time.Now().Add(90*24*time.Hour), binary)
}

// PublishHarmonyUntil is PublishHarmony with the time until which the release vouches for being
// the newest (zero: none listed, as a release made before harmony listed one).
func (s *Server) PublishHarmonyUntil(key *Key, version, signedAs string, until time.Time, binary []byte) (HarmonyRelease, error) {
	if runtime.GOOS == "windows" {
		return HarmonyRelease{}, fmt.Errorf("PublishHarmony: zip archives are not built by tests")
	}
	arch, err := Archive("harmony", binary)
	if err != nil {
		return HarmonyRelease{}, err
	}
	name := fmt.Sprintf("harmony_%s_%s_%s.tar.gz", version, runtime.GOOS, runtime.GOARCH)
	assets := map[string][]byte{name: arch}
	if !until.IsZero() {
		assets[UntilAsset(until)] = nil
	}
	sums := Checksums(assets)
	sig := key.SignComment(sums, "harmony "+signedAs+" checksums")
	tag := "v" + version
	s.Add(HarmonyRepo, tag, name, arch)
	s.Add(HarmonyRepo, tag, "checksums.txt", sums)
	s.Add(HarmonyRepo, tag, "checksums.txt.minisig", sig)
	return HarmonyRelease{Version: version, Archive: name, Checksums: sums, Signature: sig}, nil
}

// UntilAsset is the name of the empty file a release lists in checksums.txt to say until when
// it vouches for being the newest release (installer.UntilPrefix; not imported: releasetest
// stands for the release pipeline, not for harmony).
func UntilAsset(until time.Time) string {
	return "harmony-current-until-" + until.UTC().Format("20060102T150405Z")
}

// SignComment returns a minisign signature of data with the given trusted comment.
func (k *Key) SignComment(data []byte, trusted string) []byte {
	return minisign.SignWithComments(k.priv, data, trusted, "signature from a throwaway test key")
}
