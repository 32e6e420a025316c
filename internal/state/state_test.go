package state_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/NationTech/harmony-agent/internal/hint"
	"github.com/NationTech/harmony-agent/internal/state"
)

// Rollback: a damaged state file is neither overwritten nor deleted, and nothing tells the user
// to delete it (that once reset the highest manifest serial).
func TestDamagedStateIsKeptAndNotToBeDeleted(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	path := filepath.Join(home, "state.json")
	if err := os.WriteFile(path, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := state.Update(context.Background(), home, func(s *state.State) error {
		s.HighestManifestSerial = 1
		return nil
	})
	if err == nil {
		t.Fatal("update over a damaged state succeeded")
	}
	msg := strings.ToLower(strings.ReplaceAll(err.Error(), home, "") + " " + strings.Join(hint.Of(err), " "))
	if strings.Contains(msg, "delete") || strings.Contains(msg, "remove") || !strings.Contains(msg, "rollback") {
		t.Fatalf("message %q: want no advice to delete the file, and why it matters", msg)
	}
	if b, _ := os.ReadFile(path); string(b) != "{not json" {
		t.Fatal("the damaged state was overwritten")
	}
}
