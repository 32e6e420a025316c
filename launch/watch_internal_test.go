package launch

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// The watcher reports a burst of changes once, as root-relative paths, with file events and with
// the polling fallback alike; .git, what .gitignore names and editors' temporary files are not
// changes.
func TestWatcherReportsChangesOnly(t *testing.T) {
	for _, polling := range []bool{false, true} {
		name := "events"
		if polling {
			name = "polling"
		}
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			for _, d := range []string{".git", "k8s", "build/out", "src/node_modules"} {
				if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			write := func(name, body string) {
				t.Helper()
				if err := os.WriteFile(filepath.Join(root, name), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			write(".gitignore", "# outputs\n/build\n*.log\n")
			write("k8s/app.yaml", "a")
			w, err := newWatcher(root, WatchOptions{Debounce: 100 * time.Millisecond, Poll: 50 * time.Millisecond, Polling: polling})
			if err != nil {
				t.Fatal(err)
			}
			defer w.close()
			if (w.fs == nil) != polling {
				t.Fatalf("fsnotify watcher %v, polling %v", w.fs != nil, polling)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go w.run(ctx)
			time.Sleep(150 * time.Millisecond) // the poller's first look

			write(".git/index", "x")
			write("build/out/bin", "x")
			write("app.log", "x")
			write("k8s/.app.yaml.swp", "x")
			write("k8s/sedO4ThbO", "x")
			write("src/node_modules/m.js", "x")
			write("k8s/app.yaml", "changed")
			write("k8s/new.yaml", "new")
			select {
			case got := <-w.changes:
				if want := []string{"k8s/app.yaml", "k8s/new.yaml"}; !slices.Equal(got, want) {
					t.Fatalf("changes %q, want %q", got, want)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no change reported")
			}
			select {
			case got := <-w.changes:
				t.Fatalf("a second report for one burst: %q", got)
			case <-time.After(400 * time.Millisecond):
			}
		})
	}
}
