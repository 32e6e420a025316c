package manifests

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/Masterminds/semver/v3"
)

// ErrBadVersion marks a tag that is not a k3s release tag (vMAJOR.MINOR.PATCH[-pre]+k3sN).
var ErrBadVersion = errors.New("not a k3s version tag")

// Version is a k3s release tag such as v1.36.4+k3s1. SemVer ignores build metadata when
// ordering, but k3s carries its revision there: Version orders by the Kubernetes version first,
// then by the k3s revision, so v1.36.4+k3s2 is newer than v1.36.4+k3s1.
type Version struct {
	sv       *semver.Version
	revision int
}

// ParseVersion parses a k3s tag. The leading "v" and the "+k3sN" revision are required.
func ParseVersion(tag string) (Version, error) {
	rest, ok := strings.CutPrefix(tag, "v")
	if !ok {
		return Version{}, fmt.Errorf("%q: want a leading \"v\", as in v1.36.4+k3s1: %w", tag, ErrBadVersion)
	}
	sv, err := semver.StrictNewVersion(rest)
	if err != nil {
		return Version{}, fmt.Errorf("%q: %v: %w", tag, err, ErrBadVersion)
	}
	rev, ok := strings.CutPrefix(sv.Metadata(), "k3s")
	n, err := strconv.Atoi(rev)
	if !ok || err != nil || n < 1 || strconv.Itoa(n) != rev {
		return Version{}, fmt.Errorf("%q: want a k3s revision such as +k3s1: %w", tag, ErrBadVersion)
	}
	return Version{sv: sv, revision: n}, nil
}

// MustParseVersion is ParseVersion for constants; it panics on a bad tag.
func MustParseVersion(tag string) Version {
	v, err := ParseVersion(tag)
	if err != nil {
		panic(err)
	}
	return v
}

// String returns the tag, e.g. v1.36.4+k3s1.
func (v Version) String() string {
	if v.sv == nil {
		return ""
	}
	return "v" + v.sv.String()
}

// ImageTag returns the tag of the matching rancher/k3s image ("+" becomes "-").
func (v Version) ImageTag() string { return strings.ReplaceAll(v.String(), "+", "-") }

// Major, Minor, Patch and Revision return the parts of the tag.
func (v Version) Major() uint64    { return v.sv.Major() }
func (v Version) Minor() uint64    { return v.sv.Minor() }
func (v Version) Patch() uint64    { return v.sv.Patch() }
func (v Version) Revision() int    { return v.revision }
func (v Version) IsZero() bool     { return v.sv == nil }
func (v Version) Line() string     { return fmt.Sprintf("v%d.%d", v.Major(), v.Minor()) }
func (v Version) Prerelease() bool { return v.sv.Prerelease() != "" }

// Compare returns -1, 0 or +1 as v is older than, the same as, or newer than o.
func (v Version) Compare(o Version) int {
	if c := v.sv.Compare(o.sv); c != 0 {
		return c
	}
	switch {
	case v.revision < o.revision:
		return -1
	case v.revision > o.revision:
		return 1
	}
	return 0
}

// ParseLine parses a minor line such as v1.36 and returns major and minor.
func ParseLine(line string) (uint64, uint64, error) {
	rest, ok := strings.CutPrefix(line, "v")
	maj, min, ok2 := strings.Cut(rest, ".")
	a, err1 := strconv.ParseUint(maj, 10, 64)
	b, err2 := strconv.ParseUint(min, 10, 64)
	if !ok || !ok2 || err1 != nil || err2 != nil {
		return 0, 0, fmt.Errorf("line %q: want vMAJOR.MINOR, as in v1.36", line)
	}
	return a, b, nil
}
