package installer

import (
	"bytes"
	"testing"
	"time"
)

// Sizes are in MiB on a terminal and in logs alike (issue 18 item 17).
func TestLineBarWritesMiB(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	bar := NewProgress(&out, false)("k3s v1.36.4+k3s1 (linux/amd64)", 70<<20, 0).(*lineBar)
	bar.every = time.Hour
	_, _ = bar.Write(make([]byte, 12<<20))
	_, _ = bar.Write(make([]byte, 512<<10))
	bar.Finish()
	// Interrupted part way (issue 29 item 6): it says where it stopped, never "done".
	if want := "k3s v1.36.4+k3s1 (linux/amd64): 12.5 MiB of 70.0 MiB (17%) stopped\n"; out.String() != want {
		t.Fatalf("got %q, want %q", out.String(), want)
	}
	out.Reset()
	whole := NewProgress(&out, false)("k3s v1.36.4+k3s1 (linux/amd64)", 1<<20, 0)
	_, _ = whole.Write(make([]byte, 1<<20))
	whole.Finish()
	if want := "k3s v1.36.4+k3s1 (linux/amd64): 1.0 MiB of 1.0 MiB (100%) done\n"; out.String() != want {
		t.Fatalf("got %q, want %q", out.String(), want)
	}
	out.Reset()
	small := NewProgress(&out, false)("runtimes.yaml", -1, 0)
	_, _ = small.Write(make([]byte, 300<<10))
	small.Finish()
	if want := "runtimes.yaml: 0.3 MiB done\n"; out.String() != want {
		t.Fatalf("got %q, want %q", out.String(), want)
	}
}
