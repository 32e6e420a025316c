package cli

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestSudoArgs checks the privileged re-run's command line: harmony itself with the same
// arguments, keeping the proxy and CA settings a download needs behind a proxy (lowercase
// spellings included) and harmony's own settings, and nothing else of the user's environment
// (privilege confusion: root takes only what it is told to).
func TestSudoArgs(t *testing.T) {
	t.Parallel()
	got := sudoArgs("/usr/local/bin/harmony", []string{"bootstrap", "--runtime", "auto"})
	if len(got) != 5 || got[1] != "/usr/local/bin/harmony" || strings.Join(got[2:], " ") != "bootstrap --runtime auto" {
		t.Fatalf("sudo arguments: %q", got)
	}
	kept, ok := strings.CutPrefix(got[0], "--preserve-env=")
	if !ok {
		t.Fatalf("first sudo argument %q is not --preserve-env=", got[0])
	}
	list := strings.Split(kept, ",")
	for _, need := range []string{"HARMONY_USER_KUBECONFIG", "HARMONY_MIRROR", "HARMONY_ROOT", "NO_COLOR",
		"HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "https_proxy", "http_proxy", "no_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR"} {
		if !slices.Contains(list, need) {
			t.Errorf("sudo does not keep %s (kept: %q)", need, list)
		}
	}
	others := []string{"NO_COLOR", "HTTPS_PROXY", "HTTP_PROXY", "NO_PROXY", "https_proxy", "http_proxy", "no_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR"}
	for _, name := range list {
		if !strings.HasPrefix(name, "HARMONY_") && !slices.Contains(others, name) {
			t.Errorf("sudo keeps %s, which harmony does not need", name)
		}
	}
}

// TestSuLineRunsWhatItNames: the su hint, pasted into a shell, hands su's shell the harmony
// binary and its arguments as they are, even from a folder with a space or a quote in its name.
func TestSuLineRunsWhatItNames(t *testing.T) {
	t.Parallel()
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Fatalf("no bash to read the command back: %v", err)
	}
	self, args := "/home/u/it's my tools/harmony", []string{"bootstrap", "--version", "v1.36.4+k3s1"}
	line, ok := strings.CutPrefix(suLine(self, args...), "su -c ")
	if !ok {
		t.Fatalf("not an su command: %q", suLine(self, args...))
	}
	// The user's shell hands su one string; su's shell splits it.
	inner, err := exec.Command(bash, "-c", `printf '%s' `+line).Output()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bash, "-c", `printf '%s\0' `+string(inner)).Output()
	if err != nil {
		t.Fatalf("su's shell on %q: %v", inner, err)
	}
	if got, want := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00"), append([]string{self}, args...); !slices.Equal(got, want) {
		t.Fatalf("su would run %q, want %q", got, want)
	}
}
