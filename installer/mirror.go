package installer

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/NationTech/harmony-agent/internal/hint"
)

// ReleaseRepo is the one place that names harmony's release repository.
const ReleaseRepo = "NationTech/harmony-agent"

// DefaultMirror is the base URL of every download unless HARMONY_MIRROR overrides it.
const DefaultMirror = "https://github.com"

// MirrorEnv names the environment variable that replaces DefaultMirror.
const MirrorEnv = "HARMONY_MIRROR"

// Mirror returns the base URL for downloads: HARMONY_MIRROR when set, else DefaultMirror.
func Mirror() string {
	if m := strings.TrimSpace(os.Getenv(MirrorEnv)); m != "" {
		return strings.TrimRight(m, "/")
	}
	return DefaultMirror
}

// ReleaseURL returns the GitHub-shaped address of a release asset under mirror:
// <mirror>/<repo>/releases/download/<tag>/<asset>, or .../releases/latest/download/<asset>
// when tag is "" or "latest".
func ReleaseURL(mirror, repo, tag, asset string) string {
	base := strings.TrimRight(mirror, "/") + "/" + repo + "/releases/"
	if tag == "" || tag == "latest" {
		return base + "latest/download/" + url.PathEscape(asset)
	}
	return base + "download/" + url.PathEscape(tag) + "/" + url.PathEscape(asset)
}

// ErrBadMirror means HARMONY_MIRROR is not a base URL harmony can download from.
var ErrBadMirror = errors.New("invalid " + MirrorEnv)

// CheckMirror checks a HARMONY_MIRROR value before anything is fetched from it: an https URL
// with a host (plain http only on this machine's loopback address), no query or fragment. The
// error says what a valid value looks like.
func CheckMirror(raw string) error {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return nil
	}
	// Only URL characters that no shell or unit file reads as syntax: the value is written into
	// the root agent's environment file, which cron and periodic scripts source as shell.
	// A query or fragment is refused below whatever it holds.
	base, _, _ := strings.Cut(strings.SplitN(raw, "#", 2)[0], "?")
	if i := strings.IndexFunc(base, func(r rune) bool { return !mirrorChar(r) }); i >= 0 {
		return hint.With(fmt.Errorf("%w %q: the character %q is not allowed in a mirror URL", ErrBadMirror, raw, []rune(base[i:])[0]),
			"a mirror URL holds only letters, digits and - . _ ~ : / % @ [ ] (percent-encode anything else)")
	}
	if !strings.Contains(raw, "://") {
		return hint.With(fmt.Errorf("%w %q: no scheme: a URL starts with https:// (http:// only for this machine)", ErrBadMirror, raw),
			mirrorExample(raw))
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return hint.With(fmt.Errorf("%w %q: %w", ErrBadMirror, raw, errors.Unwrap(err)), mirrorExample(""))
	case u.Scheme != "https" && u.Scheme != "http":
		return hint.With(fmt.Errorf("%w %q: scheme %q: want https (http only for this machine)", ErrBadMirror, redactURL(raw), u.Scheme),
			mirrorExample(""))
	case u.Host == "" || u.Hostname() == "":
		return hint.With(fmt.Errorf("%w %q: no host", ErrBadMirror, redactURL(raw)), mirrorExample(""))
	case u.RawQuery != "" || u.Fragment != "" || u.ForceQuery || strings.ContainsAny(raw, "?#"):
		return hint.With(fmt.Errorf("%w %q: a base URL has no query or fragment", ErrBadMirror, redactURL(raw)), mirrorExample(""))
	case u.Scheme == "http" && !isLoopback(u.Hostname()):
		return hint.With(fmt.Errorf("%w %q: plain http is accepted only for this machine (127.0.0.1, ::1, localhost)", ErrBadMirror, redactURL(raw)),
			"use the mirror's https address, e.g. "+MirrorEnv+"=https://"+u.Host+strings.TrimRight(u.EscapedPath(), "/"))
	}
	return nil
}

// mirrorExample is the hint after a malformed HARMONY_MIRROR: the value the user probably
// meant when it is a host (and port) without a scheme, else the general shape.
func mirrorExample(raw string) string {
	if raw != "" && !strings.Contains(raw, "://") {
		if u, err := url.Parse("//" + raw); err == nil && u.Host != "" && u.RawQuery == "" && u.Fragment == "" {
			scheme := "https"
			if isLoopback(u.Hostname()) {
				scheme = "http"
			}
			return "add the scheme: " + MirrorEnv + "=" + scheme + "://" + u.Host + strings.TrimRight(u.EscapedPath(), "/")
		}
	}
	return "a valid value: " + MirrorEnv + "=https://artifacts.example.com/github (the base of a GitHub-shaped release tree; http only for 127.0.0.1, ::1 or localhost)"
}

// mirrorChar reports whether r may appear in a HARMONY_MIRROR value: RFC 3986's unreserved
// characters, percent-escapes, and the delimiters of a base URL (scheme, host, port, IPv6
// brackets, path, user info).
func mirrorChar(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return true
	}
	return strings.ContainsRune("-._~:/%@[]", r)
}
