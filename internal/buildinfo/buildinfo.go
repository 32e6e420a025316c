// Package buildinfo holds what the release build stamps into the binary: the version, the
// commit, the build date and the minisign public keys the binary trusts.
package buildinfo

import (
	"runtime"
	"strings"
)

// Set with -ldflags "-X github.com/NationTech/harmony-agent/internal/buildinfo.Version=…" by the
// release build; a plain go build keeps these defaults.
var (
	Version = "dev"
	Commit  = "none"
	Date    = "unknown"
	// TrustedKeys is the list of minisign public keys (base64 lines, as in a .pub file's second
	// line) that this binary trusts, separated by newlines or commas. It is fixed at build time and
	// never read from the environment, a flag or a file at run time.
	TrustedKeys = ""
)

// Info is the version report printed by `harmony version`.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit"`
	Date      string `json:"date"`
	GoVersion string `json:"goVersion"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
}

// Get returns the build information of the running binary.
func Get() Info {
	return Info{
		Version:   Version,
		Commit:    Commit,
		Date:      Date,
		GoVersion: runtime.Version(),
		OS:        runtime.GOOS,
		Arch:      runtime.GOARCH,
	}
}

// Keys returns the trusted minisign public keys, one per entry.
func Keys() []string {
	var keys []string
	for _, k := range strings.FieldsFunc(TrustedKeys, func(r rune) bool { return r == '\n' || r == ',' }) {
		if k = strings.TrimSpace(k); k != "" {
			keys = append(keys, k)
		}
	}
	return keys
}
