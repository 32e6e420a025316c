package hint_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/NationTech/harmony-agent/internal/hint"
)

func TestOfOrdersWithAndAfter(t *testing.T) {
	t.Parallel()
	inner := hint.With(errors.New("boom"), "inner 1", "inner 2")
	err := hint.With(hint.After(fmt.Errorf("wrapped: %w", inner), "last"), "first")
	if got, want := hint.Of(err), []string{"first", "inner 1", "inner 2", "last"}; !slices.Equal(got, want) {
		t.Fatalf("hints %q, want %q", got, want)
	}
}

func TestCommandQuotesWhatAShellSplits(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"harmony", "down", "app"}, "harmony down app"},
		{[]string{"harmony", "status", "my app", "-n", "shop"}, "harmony status 'my app' -n shop"},
		{[]string{"harmony", "launch", "it's"}, `harmony launch 'it'\''s'`},
		{[]string{"harmony", "launch", ""}, "harmony launch ''"},
	} {
		if got := hint.Command(tc.args...); got != tc.want {
			t.Errorf("Command(%q) = %q, want %q", tc.args, got, tc.want)
		}
	}
}
