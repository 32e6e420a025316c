package cli

import (
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
