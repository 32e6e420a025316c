package initgc

import (
	"os"
	"runtime/debug"
	"strconv"
	"testing"
)

func TestDoneRestoresTheSetting(t *testing.T) {
	want := 100
	switch v := os.Getenv("GOGC"); v {
	case "":
	case "off":
		want = -1
	default:
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Skipf("GOGC=%q", v)
		}
		want = n
	}
	if percent != want {
		t.Fatalf("setting before initialisation: %d, GOGC says %d", percent, want)
	}
	if off := debug.SetGCPercent(-1); off != -1 {
		t.Fatalf("during initialisation the collector was at %d, not off", off)
	}
	Done()
	if got := debug.SetGCPercent(want); got != want {
		t.Fatalf("after Done: %d, want %d", got, want)
	}
}
