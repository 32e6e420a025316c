package notice_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/NationTech/harmony-agent/internal/notice"
)

func TestNewer(t *testing.T) {
	for _, c := range []struct{ current, latest, want string }{
		{"1.2.3", "v1.3.0", "harmony v1.3.0 is available (you have v1.2.3): harmony self-update"},
		{"v1.2.3", "1.2.4", "harmony v1.2.4 is available (you have v1.2.3): harmony self-update"},
		{"1.2.3", "1.2.3", ""},
		{"1.3.0", "1.2.9", ""}, // an older "latest" (a rolled-back mirror) is no news
		{"dev", "1.2.3", ""},   // development builds are not told to update
		{"1.2.3", "garbage", ""},
	} {
		if got := notice.Newer(c.current, c.latest); got != c.want {
			t.Errorf("Newer(%q, %q) = %q, want %q", c.current, c.latest, got, c.want)
		}
	}
}

// The check runs at most once a day, an offline machine included; the notice shows once a day.
func TestCheckerOncePerInterval(t *testing.T) {
	home := t.TempDir()
	now := time.Date(2026, 11, 28, 8, 0, 0, 0, time.UTC)
	calls := 0
	latest, fail := "1.4.0", false
	c := &notice.Checker{Home: home, Current: "1.3.0", Now: func() time.Time { return now },
		Latest: func(context.Context) (string, error) {
			calls++
			if fail {
				return "", errors.New("offline")
			}
			return latest, nil
		}}
	ctx := context.Background()
	if err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if msg, err := c.Message(ctx); err != nil || msg != "harmony v1.4.0 is available (you have v1.3.0): harmony self-update" {
		t.Fatalf("message %q, %v", msg, err)
	}
	if msg, _ := c.Message(ctx); msg != "" {
		t.Fatalf("second message the same day: %q", msg)
	}
	now = now.Add(time.Hour)
	if err := c.Refresh(ctx); err != nil || calls != 1 {
		t.Fatalf("refresh within the interval: %d calls, %v", calls, err)
	}
	now = now.Add(notice.Interval)
	fail = true
	if err := c.Refresh(ctx); err != nil || calls != 2 {
		t.Fatalf("refresh after the interval: %d calls, %v", calls, err)
	}
	now = now.Add(time.Minute)
	if err := c.Refresh(ctx); err != nil || calls != 2 {
		t.Fatalf("an offline check is recorded too: %d calls, %v", calls, err)
	}
	if msg, _ := c.Message(ctx); msg != "harmony v1.4.0 is available (you have v1.3.0): harmony self-update" {
		t.Fatalf("the last known release is still news a day later: %q", msg)
	}
}
