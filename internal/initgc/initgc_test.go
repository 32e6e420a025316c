package initgc

import (
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"testing"
	"time"
)

// gogc is the setting GOGC gives.
func gogc(t *testing.T) int {
	switch v := os.Getenv("GOGC"); v {
	case "":
		return 100
	case "off":
		return -1
	default:
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Skipf("GOGC=%q", v)
		}
		return n
	}
}

var done bool

// The collector is off during initialisation, and Done gives GOGC's setting back: at once
// for a small heap, after the first collection for a large one.
func TestDoneGivesTheSettingBack(t *testing.T) {
	want := gogc(t)
	if percent != want {
		t.Fatalf("setting before initialisation: %d, GOGC says %d", percent, want)
	}
	if !done { // the first run of the test in this process (go test -count)
		if off := setting(); off != -1 {
			t.Fatalf("during initialisation the collector was at %d, not off", off)
		}
	}
	done = true
	Done()
	if want <= 0 {
		if got := setting(); got != want {
			t.Fatalf("after Done: %d, want %d", got, want)
		}
		return
	}
	runtime.GC()
	waitFor(t, want)

	// 64 MiB left by the initialisation: the first goal leaves room for it.
	giveBack(64 << 20)
	wantFirst := (64 << 20) * (100 + want) / minHeap
	if first := setting(); first != wantFirst {
		t.Fatalf("first setting %d, want %d", first, wantFirst)
	}
	runtime.GC()
	waitFor(t, want)
}

// setting reads the collector's setting (without setting it, as debug.SetGCPercent would).
func setting() int {
	s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
	metrics.Read(s)
	return int(int64(s[0].Value.Uint64()))
}

// waitFor waits until the collector's setting is want (a finaliser sets it).
func waitFor(t *testing.T, want int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := setting()
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("setting %d after a collection, want %d", got, want)
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
}
