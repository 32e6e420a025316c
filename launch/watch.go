package launch

import (
	"bufio"
	"context"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/moby/patternmatcher"
)

// WatchOptions configure Watch.
type WatchOptions struct {
	// Debounce is how long the files must stay still before a launch (a burst of saves is one).
	Debounce time.Duration
	// Poll is how often files are compared when the system gives no file events (0: 1s).
	Poll time.Duration
	// Cycle is told about each launch, the first one included: the files that changed (none for
	// the first), what the launch did and how long it took. superseded is a launch cut short by
	// a newer change (the next launch follows at once).
	Cycle func(changed []string, res *Result, err error, took time.Duration, superseded bool)
	// Polling forces polling (for tests of the fallback).
	Polling bool
	// QuietAfterFirst prints the progress of the first launch only (Cycle says the rest).
	QuietAfterFirst bool
}

// Watch launches req, then again each time a file of the repository changes, until ctx ends.
// A launch that fails (a broken manifest, a failing build) leaves what runs as it is; the next
// change tries again. A change during a launch cuts it short: launches are safe to interrupt
// (the inventory is written before any object), and the next one picks up from there.
// Changes in .git, in folders the repository's .gitignore names and editors' temporary files
// are not changes.
func Watch(ctx context.Context, req Request, host Host, sink Sink, o WatchOptions) error {
	if o.Debounce <= 0 {
		o.Debounce = 300 * time.Millisecond
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	proj, err := Resolve(req.Selection)
	if err != nil {
		return err
	}
	w, err := newWatcher(proj.Root, o)
	if err != nil {
		return err
	}
	defer w.close()
	go w.run(ctx)

	var changed []string
	for n := 0; ; n++ {
		cycleSink := sink
		if n > 0 && o.QuietAfterFirst {
			cycleSink.Progress, cycleSink.Live = io.Discard, false
		}
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		var next []string
		superseded := false
		go func() {
			defer close(done)
			start := time.Now()
			res, err := Run(cctx, req, host, cycleSink)
			superseded = cctx.Err() != nil && ctx.Err() == nil
			if o.Cycle != nil && ctx.Err() == nil {
				o.Cycle(changed, res, err, time.Since(start), superseded)
			}
		}()
	cycle:
		for {
			select {
			case <-ctx.Done():
				cancel()
				<-done
				return nil
			case files := <-w.changes:
				next = merge(next, files)
				cancel() // a newer version: this launch is cut short
			case <-done:
				break cycle
			}
		}
		cancel()
		if len(next) == 0 {
			// Wait for the next change.
			select {
			case <-ctx.Done():
				return nil
			case files := <-w.changes:
				next = files
			}
		}
		changed = next
	}
}

func merge(a, b []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range append(append([]string{}, a...), b...) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

// sedTemp is the name of GNU sed -i's temporary file, renamed over the file it edits.
var sedTemp = regexp.MustCompile(`^sed[A-Za-z0-9]{6}$`)

// watcher reports the repository's changed files (root-relative), a burst at a time.
type watcher struct {
	root    string
	o       WatchOptions
	ignore  *patternmatcher.PatternMatcher
	fs      *fsnotify.Watcher // nil: polling
	changes chan []string
}

func newWatcher(root string, o WatchOptions) (*watcher, error) {
	w := &watcher{root: root, o: o, changes: make(chan []string, 1)}
	w.ignore, _ = patternmatcher.New(gitignorePatterns(root))
	if o.Polling {
		return w, nil
	}
	fw, err := fsnotify.NewWatcher()
	if err != nil {
		return w, nil // no events here: polling
	}
	w.fs = fw
	if err := w.addTree(root); err != nil {
		fw.Close()
		w.fs = nil // too many folders for the system's watches (inotify's limit): polling
	}
	return w, nil
}

func (w *watcher) close() {
	if w.fs != nil {
		w.fs.Close()
	}
}

// skipped reports whether rel (root-relative, slashes) is not watched.
func (w *watcher) skipped(rel string, dir bool) bool {
	base := filepath.Base(rel)
	if base == ".git" || base == "node_modules" {
		return true
	}
	if !dir && (strings.HasSuffix(base, "~") || strings.HasSuffix(base, ".swp") || strings.HasSuffix(base, ".swx") ||
		strings.HasPrefix(base, ".#") || base == "4913" || strings.HasSuffix(base, ".tmp") || sedTemp.MatchString(base)) {
		return true // editors' temporary files, and sed -i's
	}
	if w.ignore != nil && rel != "." {
		if m, _ := w.ignore.MatchesOrParentMatches(rel); m {
			return true
		}
	}
	return false
}

func (w *watcher) addTree(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // gone meanwhile, or unreadable: not watched
		}
		if !d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(w.root, p)
		if w.skipped(filepath.ToSlash(rel), true) {
			return filepath.SkipDir
		}
		return w.fs.Add(p)
	})
}

// run sends each burst of changes (files still for Debounce) until ctx ends.
func (w *watcher) run(ctx context.Context) {
	pending := map[string]bool{}
	var timer <-chan time.Time
	flush := func() {
		if len(pending) == 0 {
			return
		}
		files := make([]string, 0, len(pending))
		for f := range pending {
			files = append(files, f)
		}
		sort.Strings(files)
		pending = map[string]bool{}
		select {
		case w.changes <- files:
		case <-ctx.Done():
		}
	}
	if w.fs == nil {
		w.poll(ctx, pending, flush)
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.fs.Events:
			if !ok {
				return
			}
			rel, err := filepath.Rel(w.root, ev.Name)
			if err != nil {
				continue
			}
			rel = filepath.ToSlash(rel)
			st, serr := os.Stat(ev.Name)
			isDir := serr == nil && st.IsDir()
			if w.skipped(rel, isDir) {
				continue
			}
			if isDir && ev.Op&fsnotify.Create != 0 {
				_ = w.addTree(ev.Name) // a new folder: watched too
			}
			if ev.Op&fsnotify.Chmod != 0 && ev.Op&^fsnotify.Chmod == 0 {
				continue // a permission or time change alone
			}
			pending[rel] = true
			timer = time.After(w.o.Debounce)
		case <-timer:
			flush()
		case <-w.fs.Errors:
		}
	}
}

// poll compares the tree's files (size and modification time) every Poll.
func (w *watcher) poll(ctx context.Context, pending map[string]bool, flush func()) {
	last := w.snapshot()
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(w.o.Poll):
		}
		now := w.snapshot()
		for p, s := range now {
			if last[p] != s {
				pending[p] = true
			}
		}
		for p := range last {
			if _, ok := now[p]; !ok {
				pending[p] = true
			}
		}
		last = now
		flush()
	}
}

// maxGitignore caps what is read of .gitignore, and maxIgnorePatterns the patterns kept (each
// path the watch sees is matched against all of them): a pattern left out only widens the watch.
const (
	maxGitignore      = 256 << 10
	maxIgnorePatterns = 2000
)

type fileStamp struct {
	size int64
	mod  time.Time
}

func (w *watcher) snapshot() map[string]fileStamp {
	out := map[string]fileStamp{}
	_ = filepath.WalkDir(w.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(w.root, p)
		rel = filepath.ToSlash(rel)
		if w.skipped(rel, d.IsDir()) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				out[rel] = fileStamp{info.Size(), info.ModTime()}
			}
		}
		return nil
	})
	return out
}

// gitignorePatterns reads the repository's top .gitignore as patterns (a pattern without a slash
// matches at any depth, as in git; negations and nested .gitignore files are not read: they
// only make the watch wider).
// Like every file harmony reads from a repository, it must be a regular file inside it (a link
// to /dev/urandom never ends, a FIFO blocks); its first maxGitignore bytes and maxIgnorePatterns
// patterns are read.
func gitignorePatterns(root string) []string {
	name := filepath.Join(root, ".gitignore")
	if st, err := os.Lstat(name); err != nil || !st.Mode().IsRegular() {
		return nil
	}
	f, err := os.OpenFile(name, os.O_RDONLY|openNonblock, 0)
	if err != nil {
		return nil
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return nil // replaced since
	}
	var out []string
	s := bufio.NewScanner(io.LimitReader(f, maxGitignore))
	for s.Scan() && len(out) < maxIgnorePatterns {
		l := strings.TrimSpace(s.Text())
		if l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, "!") {
			continue
		}
		l = strings.TrimSuffix(l, "/")
		if strings.HasPrefix(l, "/") {
			out = append(out, strings.TrimPrefix(l, "/"))
			continue
		}
		if !strings.Contains(l, "/") {
			out = append(out, "**/"+l)
		}
		out = append(out, l)
	}
	return out
}
