//go:build !linux

package cli_test

import "github.com/rogpeppe/go-internal/testscript"

// cmdMaxRSS is Linux's (maxrss_linux_test.go): the scripts use it under [linux] only.
func cmdMaxRSS(ts *testscript.TestScript, _ bool, _ []string) {
	ts.Fatalf("maxrss: Linux only")
}
