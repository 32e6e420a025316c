package installer

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/gofrs/flock"
)

// LockFile takes an exclusive advisory lock on path (created when missing), waiting until it is
// free or ctx ends, and returns the function that releases it. It excludes other processes as
// well as other goroutines of this one.
func LockFile(ctx context.Context, path string) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("lock %q: %w", path, err)
	}
	// A link planted in place of the lock file is removed, and the file is opened without
	// following one, so taking a lock never creates or opens a file elsewhere.
	if err := removeIfNotRegular(path); err != nil {
		return nil, fmt.Errorf("lock %q: %w", path, err)
	}
	l := flock.New(path, flock.SetFlag(os.O_CREATE|os.O_RDONLY|oNoFollow))
	ok, err := l.TryLockContext(ctx, 50*time.Millisecond)
	if err != nil {
		return nil, fmt.Errorf("lock %q: %w", path, err)
	}
	if !ok {
		return nil, fmt.Errorf("lock %q: not acquired", path)
	}
	return func() { _ = l.Unlock() }, nil
}

// LockHome takes the lock that guards every state change in harmony's data directory.
func LockHome(ctx context.Context, home string) (func(), error) {
	return LockFile(ctx, filepath.Join(home, "lock"))
}

// TryLockFile takes an exclusive advisory lock on path (created when missing) without waiting:
// ok is false when another process holds it.
func TryLockFile(path string) (unlock func(), ok bool, err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, false, fmt.Errorf("lock %q: %w", path, err)
	}
	l := flock.New(path)
	ok, err = l.TryLock()
	if err != nil {
		return nil, false, fmt.Errorf("lock %q: %w", path, err)
	}
	if !ok {
		return nil, false, nil
	}
	return func() { _ = l.Unlock() }, true, nil
}
