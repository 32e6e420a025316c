// Package notice tells a user, at most once a day, that a newer harmony release exists. The check
// reads the release's signed checksums.txt (no API call, HARMONY_MIRROR honoured) in the
// background; its result is kept in state.json, so a slow network never delays a command and the
// notice shows on a later run when the check did not finish in time.
package notice

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"

	"github.com/NationTech/harmony-agent/internal/state"
)

// Interval is how often the check runs and the notice is shown, at most.
const Interval = 24 * time.Hour

// Checker decides when to check and what to say.
type Checker struct {
	// Home is HARMONY_HOME, where state.json keeps the last check and notice.
	Home string
	// Current is the running version.
	Current string
	// Latest returns the newest release's version, verified.
	Latest func(ctx context.Context) (string, error)
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

func (c *Checker) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Enabled reports whether notices make sense for this run: a released build, a terminal on
// stderr, not in CI, not turned off.
func Enabled(current string, stderrIsTerminal bool, getenv func(string) string) bool {
	if !stderrIsTerminal || getenv("CI") != "" || getenv("HARMONY_NO_UPDATE_CHECK") != "" {
		return false
	}
	_, err := semver.StrictNewVersion(strings.TrimPrefix(current, "v"))
	return err == nil
}

// Refresh checks for a newer release when the last check is older than Interval, recording the
// result. Errors are recorded as "checked" too, so an offline machine is not asked every run.
func (c *Checker) Refresh(ctx context.Context) error {
	s, err := state.Load(c.Home)
	if err != nil {
		return err
	}
	if c.now().Sub(s.LastUpdateCheck) < Interval {
		return nil
	}
	latest, lerr := c.Latest(ctx)
	if ctx.Err() != nil {
		return ctx.Err() // cut short: try again next run
	}
	return state.Update(ctx, c.Home, func(s *state.State) error {
		s.LastUpdateCheck = c.now()
		if lerr == nil {
			s.LatestHarmony = latest
		}
		return nil
	})
}

// Message returns the notice to print now ("" for none) and records that it was shown.
func (c *Checker) Message(ctx context.Context) (string, error) {
	s, err := state.Load(c.Home)
	if err != nil || s.LatestHarmony == "" || c.now().Sub(s.LastUpdateNotice) < Interval {
		return "", err
	}
	msg := Newer(c.Current, s.LatestHarmony)
	if msg == "" {
		return "", nil
	}
	if err := state.Update(ctx, c.Home, func(s *state.State) error { s.LastUpdateNotice = c.now(); return nil }); err != nil {
		return "", err
	}
	return msg, nil
}

// Newer returns the notice for latest when it is a newer release than current ("" when it is
// not, or when either is not a release version such as a development build's).
func Newer(current, latest string) string {
	l, err1 := semver.StrictNewVersion(strings.TrimPrefix(latest, "v"))
	cur, err2 := semver.StrictNewVersion(strings.TrimPrefix(current, "v"))
	if err1 != nil || err2 != nil || !l.GreaterThan(cur) {
		return ""
	}
	return fmt.Sprintf("harmony v%s is available (you have v%s): harmony self-update", l, cur)
}
