package installer

import (
	"path/filepath"
	"testing"
)

// Privilege confusion: harmony running as root never takes its data directory from the
// environment of the user who ran sudo; it uses the system's (under HARMONY_ROOT).
func TestHomePrivilegeConfusionRootIgnoresTheUsersHome(t *testing.T) {
	user := t.TempDir()
	root := t.TempDir()
	t.Setenv(HomeEnv, filepath.Join(user, "harmony"))
	t.Setenv("XDG_DATA_HOME", filepath.Join(user, "data"))
	t.Setenv("HOME", user)
	t.Setenv(RootEnv, root)

	got, err := home(0)
	if want := filepath.Join(root, "var", "lib", "harmony"); err != nil || got != want {
		t.Fatalf("root's home = %q, %v; want %q", got, err, want)
	}
	if got := CacheDir(got); got != filepath.Join(root, "var", "lib", "harmony", "cache", "sha256") {
		t.Fatalf("root's cache = %q", got)
	}
	got, err = home(1000)
	if err != nil || got != filepath.Join(user, "harmony") {
		t.Fatalf("a user's home = %q, %v; want HARMONY_HOME", got, err)
	}
	t.Setenv(RootEnv, "")
	if got, _ := home(0); got != filepath.Join(string(filepath.Separator), "var", "lib", "harmony") {
		t.Fatalf("root's home without HARMONY_ROOT = %q", got)
	}
}
