package installer

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/NationTech/harmony-agent/internal/hint"
)

// Bar receives the bytes of one transfer as they arrive.
type Bar interface {
	io.Writer
	Finish()
}

// ProgressFunc starts a Bar for a transfer of total bytes (-1 when unknown), of which done
// bytes are already there (a resume).
type ProgressFunc func(label string, total, done int64) Bar

// NewProgress picks how transfers are shown on w: a progress bar on a terminal, a plain line
// every few seconds otherwise (CI logs stay readable), nothing when quiet.
func NewProgress(w io.Writer, quiet bool) ProgressFunc {
	if quiet {
		return nil
	}
	if f, ok := w.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return func(label string, total, done int64) Bar {
			bar := progressbar.NewOptions64(total,
				progressbar.OptionSetWriter(w),
				progressbar.OptionSetDescription(label),
				progressbar.OptionShowBytes(true),
				progressbar.OptionUseIECUnits(true), // MiB, as in logs (humanBytes), never MB
				progressbar.OptionSetWidth(30),
				progressbar.OptionThrottle(100*time.Millisecond),
				progressbar.OptionShowCount(),
				progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
				progressbar.OptionEnableColorCodes(os.Getenv("NO_COLOR") == ""),
				progressbar.OptionFullWidth(),
			)
			_ = bar.Set64(done)
			return barAdapter{bar}
		}
	}
	return func(label string, total, done int64) Bar {
		return &lineBar{w: w, label: label, total: total, done: done, every: 5 * time.Second, last: time.Now()}
	}
}

type barAdapter struct{ *progressbar.ProgressBar }

// Finish ends the bar where the transfer ended: full when all arrived, as it stopped otherwise
// (a download interrupted at 5 % never draws 100 %).
func (b barAdapter) Finish() {
	if st := b.State(); st.Max > 0 && st.CurrentNum < st.Max {
		_ = b.Exit()
		return
	}
	_ = b.ProgressBar.Finish()
}

// lineBar prints "label: 12.0 MiB of 70.0 MiB (17%)" at most every few seconds, and once at the end.
type lineBar struct {
	mu    sync.Mutex
	w     io.Writer
	label string
	total int64
	done  int64
	every time.Duration
	last  time.Time
}

func (l *lineBar) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.done += int64(len(p))
	if time.Since(l.last) >= l.every {
		l.last = time.Now()
		l.print("")
	}
	return len(p), nil
}

func (l *lineBar) Finish() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total > 0 && l.done < l.total {
		l.print(" stopped") // a download interrupted part way is not "done"
		return
	}
	l.print(" done")
}

func (l *lineBar) print(suffix string) {
	if l.total > 0 {
		fmt.Fprintf(l.w, "%s: %s of %s (%d%%)%s\n", l.label, humanBytes(l.done), humanBytes(l.total), l.done*100/l.total, suffix)
		return
	}
	fmt.Fprintf(l.w, "%s: %s%s\n", l.label, humanBytes(l.done), suffix)
}

// humanBytes writes a size in MiB, the one unit harmony uses for sizes on a terminal and in
// logs, so lines compare at a glance.
func humanBytes(n int64) string {
	return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
}

// PrintRetries returns the OnRetry of a Fetcher that shows each retry on w as it happens
// ("k3s v1.36.4+k3s1 (linux/amd64): retry 2/4 in 1s: connection refused"), or nil when quiet.
func PrintRetries(w io.Writer, quiet bool) func(Retry) {
	if quiet {
		return nil
	}
	return func(r Retry) {
		// The reason quotes the mirror (an HTTP status line): no terminal controls.
		fmt.Fprintf(w, "%s: retry %d/%d in %s: %s\n", oneLine(r.Name), r.Attempt, r.Of, r.Wait, oneLine(r.Reason))
	}
}

// oneLine is s with line breaks as spaces and every other control character, and the
// invisible characters that reorder text, dropped; invalid UTF-8 becomes U+FFFD.
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\r' || r == '\t':
			return ' '
		case hint.Invisible(r):
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
}
