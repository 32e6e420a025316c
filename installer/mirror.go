package installer

import (
	"net/url"
	"os"
	"strings"
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
