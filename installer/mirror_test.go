package installer_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/NationTech/harmony-agent/installer"
	"github.com/NationTech/harmony-agent/internal/hint"
)

func TestCheckMirror(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		value, err, hint string
	}{
		{value: ""},
		{value: "https://github.com"},
		{value: "https://mirror.example/github/"},
		{value: "http://127.0.0.1:8080"},
		{value: "http://[::1]:8080/base"},
		{value: "http://localhost:9000"},
		{value: "127.0.0.1:8080", err: "no scheme", hint: "HARMONY_MIRROR=http://127.0.0.1:8080"},
		{value: "localhost:8080", err: "no scheme", hint: "HARMONY_MIRROR=http://localhost:8080"},
		{value: "mirror.example/gh", err: "no scheme", hint: "HARMONY_MIRROR=https://mirror.example/gh"},
		{value: "ftp://mirror.example", err: `scheme "ftp"`, hint: "HARMONY_MIRROR=https://"},
		{value: "http://mirror.example", err: "plain http is accepted only for this machine", hint: "HARMONY_MIRROR=https://mirror.example"},
		{value: "https://", err: "no host", hint: "a valid value"},
		{value: "https://mirror.example/?x=1", err: "no query or fragment", hint: "a valid value"},
		{value: "https://mirror.example/%zz", err: "invalid URL escape", hint: "a valid value"},
		// The value reaches a file root's cron sources as shell: no shell syntax gets through.
		{value: "https://m.example/$(touch /tmp/pwned)", err: "not allowed in a mirror URL", hint: "percent-encode"},
		{value: "https://m.example/`id`", err: "not allowed", hint: "percent-encode"},
		{value: "https://m.example/a;id", err: "not allowed", hint: "percent-encode"},
		{value: "https://m.example/a'b", err: "not allowed", hint: "percent-encode"},
		{value: "https://m.example/a b", err: "not allowed", hint: "percent-encode"},
		{value: "https://m.example/a\nb", err: "not allowed", hint: "percent-encode"},
		{value: "https://m.example/a\\b", err: "not allowed", hint: "percent-encode"},
		{value: "https://user@m.example:8443/gh%20mirror/", err: ""},
		{value: "https://m.example/a=b", err: "not allowed", hint: "percent-encode"},
		{value: "https://m.example/?$(id)", err: "no query or fragment", hint: "a valid value"},
		{value: "https://m.example/#", err: "no query or fragment", hint: "a valid value"},
	} {
		err := installer.CheckMirror(tc.value)
		if tc.err == "" {
			if err != nil {
				t.Errorf("CheckMirror(%q) = %v, want nil", tc.value, err)
			}
			continue
		}
		if err == nil || !errors.Is(err, installer.ErrBadMirror) || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("CheckMirror(%q) = %v, want ErrBadMirror containing %q", tc.value, err, tc.err)
			continue
		}
		if h := strings.Join(hint.Of(err), "\n"); !strings.Contains(h, tc.hint) {
			t.Errorf("CheckMirror(%q) hints %q, want one containing %q", tc.value, h, tc.hint)
		}
	}
}
