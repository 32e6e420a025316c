package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/term"

	"github.com/NationTech/harmony-agent/installer"
	"github.com/NationTech/harmony-agent/internal/buildinfo"
	"github.com/NationTech/harmony-agent/internal/notice"
)

// Bounds of the background update check: it never delays a command by more than noticeGrace.
const (
	noticeTimeout = 3 * time.Second
	noticeGrace   = 500 * time.Millisecond
)

// updateNotice is the background "newer harmony available" check of one run.
type updateNotice struct {
	checker *notice.Checker
	done    chan struct{}
}

// startUpdateNotice starts the daily check when notices apply to this run (nil otherwise).
func startUpdateNotice(ctx context.Context, args []string, stderr io.Writer) *updateNotice {
	f, ok := stderr.(*os.File)
	if !ok || !notice.Enabled(buildinfo.Version, term.IsTerminal(int(f.Fd())), os.Getenv) {
		return nil
	}
	if len(args) > 0 {
		switch args[0] {
		case "self-update", "completion", "__complete", "__completeNoDesc":
			return nil
		}
	}
	home, err := installer.Home() // root's own data directory when run as root
	if err != nil {
		return nil
	}
	n := &updateNotice{done: make(chan struct{}), checker: &notice.Checker{
		Home: home, Current: buildinfo.Version,
		Latest: func(ctx context.Context) (string, error) { return latestHarmony(ctx, home) },
	}}
	go func() {
		defer close(n.done)
		ctx, cancel := context.WithTimeout(ctx, noticeTimeout)
		defer cancel()
		_ = n.checker.Refresh(ctx)
	}()
	return n
}

// finish prints the notice, if any, after the command's own output.
func (n *updateNotice) finish(stderr io.Writer) {
	if n == nil {
		return
	}
	select {
	case <-n.done:
	case <-time.After(noticeGrace): // shown on a later run instead
	}
	ctx, cancel := context.WithTimeout(context.Background(), noticeGrace)
	defer cancel()
	if msg, err := n.checker.Message(ctx); err == nil && msg != "" {
		fmt.Fprintf(stderr, "\n%s\n", printable(msg))
	}
}

// latestHarmony returns the newest release's version from its signed checksums.txt (the mirror
// honoured, no retries: a notice is never worth waiting for).
func latestHarmony(ctx context.Context, home string) (string, error) {
	rel, err := latestRelease(ctx, home)
	if err != nil {
		return "", err
	}
	return rel.Version.String(), nil
}

// latestRelease is the newest release as its signed checksums.txt describes it.
func latestRelease(ctx context.Context, home string) (installer.Release, error) {
	v, err := installer.NewVerifier(buildinfo.Keys())
	if err != nil {
		return installer.Release{}, err
	}
	fetch := installer.NewFetcher(home)
	fetch.Retries = -1
	return fetch.FetchRelease(ctx, installer.Mirror(), "latest", v)
}
