package installer_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/NationTech/harmony-agent/installer"
	"github.com/NationTech/harmony-agent/internal/hint"
	"github.com/NationTech/harmony-agent/internal/releasetest"
)

const (
	repo = "k3s-io/k3s"
	tag  = "v1.36.4+k3s1"
)

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func newFetcher(t testing.TB) *installer.Fetcher {
	f := installer.NewFetcher(t.TempDir())
	f.Backoff = time.Millisecond
	f.Retries = 3
	return f
}

func artifact(srv *releasetest.Server, asset string, data []byte) installer.Artifact {
	return installer.Artifact{
		Name:    "k3s " + tag + " (linux/amd64)",
		URL:     srv.URL + "/" + releasetest.Path(repo, tag, asset),
		SHA256:  releasetest.Digest(data),
		MaxSize: int64(len(data)),
	}
}

func mustContent(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: content differs (%d bytes, want %d)", path, len(got), len(want))
	}
}

// cacheEntries lists what the cache directory holds besides lock files.
func cacheEntries(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".lock") {
			names = append(names, e.Name())
		}
	}
	return names
}

func TestFetchVerifiesCachesAndDownloadsOnce(t *testing.T) {
	t.Parallel()
	srv := releasetest.New(t)
	data := randomBytes(t, 200<<10)
	srv.Add(repo, tag, "k3s", data)
	f := newFetcher(t)
	a := artifact(srv, "k3s", data)

	res, err := f.Fetch(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	if res.Cached || res.Transferred != int64(len(data)) {
		t.Fatalf("first fetch: cached=%v transferred=%d, want a full download", res.Cached, res.Transferred)
	}
	if res.Path != filepath.Join(f.Cache, a.SHA256) {
		t.Fatalf("path %q is not content-addressed", res.Path)
	}
	mustContent(t, res.Path, data)

	again, err := f.Fetch(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Cached || again.Transferred != 0 || srv.Hits(repo, tag, "k3s") != 1 {
		t.Fatalf("second fetch: cached=%v transferred=%d hits=%d, want no download", again.Cached, again.Transferred, srv.Hits(repo, tag, "k3s"))
	}
}

func TestFetchResumesOnlyTheMissingBytes(t *testing.T) {
	t.Parallel()
	srv := releasetest.New(t)
	data := randomBytes(t, 1<<20)
	srv.Add(repo, tag, "k3s", data)
	const cut = 300_000
	srv.SetFault(repo, tag, "k3s", releasetest.Fault{CutAfter: cut, Times: 1})

	home := t.TempDir()
	a := artifact(srv, "k3s", data)
	// A first harmony process gives up after the connection drops ...
	first := installer.NewFetcher(home)
	first.Retries = -1
	if _, err := first.Fetch(context.Background(), a); err == nil {
		t.Fatal("fetch over a dropped connection succeeded")
	}
	if got := cacheEntries(t, first.Cache); len(got) != 2 { // <digest>.partial and its .json
		t.Fatalf("after the drop the cache holds %v, want the partial file and its metadata", got)
	}
	// ... and the next one resumes where it stopped.
	second := installer.NewFetcher(home)
	res, err := second.Fetch(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	mustContent(t, res.Path, data)
	if served := srv.Served(repo, tag, "k3s"); served != int64(len(data)) {
		t.Fatalf("server sent %d bytes in all, want exactly %d (resume must not re-send)", served, len(data))
	}
	ranges := srv.Ranges(repo, tag, "k3s")
	if len(ranges) != 2 || ranges[0] != "" || !strings.HasPrefix(ranges[1], "bytes=") || ranges[1] == "bytes=0-" {
		t.Fatalf("Range headers %q, want none then a resume", ranges)
	}
	if res.Transferred <= 0 || res.Transferred >= int64(len(data)) {
		t.Fatalf("second fetch transferred %d bytes, want less than the whole %d", res.Transferred, len(data))
	}
}

func TestFetchRetriesWithinOneCall(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		fault      releasetest.Fault
		wantHits   int
		wantServed func(size int64) bool
	}{
		{"5xx then success", releasetest.Fault{Status: 503, Times: 2}, 3, func(n int64) bool { return n == 512<<10 }},
		{"dropped connection resumes", releasetest.Fault{CutAfter: 100_000, Times: 1}, 2, func(n int64) bool { return n == 512<<10 }},
		// cut, then a Range request answered in full (and cut again), then a resume that completes
		{"server ignores Range restarts", releasetest.Fault{CutAfter: 100_000, IgnoreRange: true, Times: 2}, 3, func(n int64) bool { return n > 512<<10 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := releasetest.New(t)
			data := randomBytes(t, 512<<10)
			srv.Add(repo, tag, "k3s", data)
			srv.SetFault(repo, tag, "k3s", tt.fault)
			f := newFetcher(t)
			a := artifact(srv, "k3s", data)
			res, err := f.Fetch(context.Background(), a)
			if err != nil {
				t.Fatal(err)
			}
			mustContent(t, res.Path, data)
			if hits := srv.Hits(repo, tag, "k3s"); hits != tt.wantHits {
				t.Fatalf("hits = %d, want %d", hits, tt.wantHits)
			}
			if served := srv.Served(repo, tag, "k3s"); !tt.wantServed(served) {
				t.Fatalf("served %d bytes: unexpected", served)
			}
		})
	}
}

// Each retry is told as it happens, with its number, its pause and a short reason.
func TestFetchTellsEachRetry(t *testing.T) {
	t.Parallel()
	srv := releasetest.New(t)
	data := randomBytes(t, 64<<10)
	srv.Add(repo, tag, "k3s", data)
	srv.SetFault(repo, tag, "k3s", releasetest.Fault{Status: 503, Times: 2})
	f := newFetcher(t)
	var got []installer.Retry
	f.OnRetry = func(r installer.Retry) { got = append(got, r) }
	if _, err := f.Fetch(context.Background(), artifact(srv, "k3s", data)); err != nil {
		t.Fatal(err)
	}
	want := []installer.Retry{
		{Name: "k3s " + tag + " (linux/amd64)", Attempt: 1, Of: 3, Wait: time.Millisecond, Reason: "HTTP 503 Service Unavailable"},
		{Name: "k3s " + tag + " (linux/amd64)", Attempt: 2, Of: 3, Wait: 2 * time.Millisecond, Reason: "HTTP 503 Service Unavailable"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("retries told:\n%v\nwant:\n%v", got, want)
	}
	var b bytes.Buffer
	installer.PrintRetries(&b, false)(want[1])
	if line := "k3s " + tag + " (linux/amd64): retry 2/3 in 2ms: HTTP 503 Service Unavailable\n"; b.String() != line {
		t.Fatalf("printed %q, want %q", b.String(), line)
	}
	if installer.PrintRetries(&b, true) != nil {
		t.Fatal("--quiet shows retries")
	}
}

// A mirror's status line is the mirror's text: its retry line reaches the terminal without
// control characters (no window title, no screen clearing, no forged line).
func TestRetryLineFromAHostileMirrorIsInert(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = bufio.NewReader(c).ReadString('\n')
				_, _ = io.WriteString(c, "HTTP/1.1 503 \x1b]0;PWNED\x07\x1b[2J\u202e\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
			}()
		}
	}()
	f := newFetcher(t)
	var b bytes.Buffer
	f.OnRetry = installer.PrintRetries(&b, false)
	data := []byte("payload")
	a := installer.Artifact{Name: "k3s", URL: "http://" + ln.Addr().String() + "/k3s", SHA256: releasetest.Digest(data), MaxSize: int64(len(data))}
	if _, err := f.Fetch(context.Background(), a); err == nil {
		t.Fatal("a mirror that only answers 503 served the file")
	}
	if b.Len() == 0 || strings.ContainsAny(b.String(), "\x1b\x07\u202e") {
		t.Fatalf("retry lines %q: want them told, without control characters", b.String())
	}
}

func TestFetchRestartsWhenTheFileChanged(t *testing.T) {
	t.Parallel()
	srv := releasetest.New(t)
	old := randomBytes(t, 400<<10)
	srv.Add(repo, tag, "k3s", old)
	srv.Truncate(repo, tag, "k3s", 150_000)
	home := t.TempDir()
	first := installer.NewFetcher(home)
	first.Retries = -1
	newer := randomBytes(t, 400<<10)
	a := artifact(srv, "k3s", newer) // pinned to the new content
	if _, err := first.Fetch(context.Background(), a); err == nil {
		t.Fatal("truncated fetch succeeded")
	}
	srv.Replace(repo, tag, "k3s", newer)
	srv.Reset(repo, tag, "k3s")
	res, err := installer.NewFetcher(home).Fetch(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	mustContent(t, res.Path, newer)
}

func TestFetchFailuresInstallNothing(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		setup   func(srv *releasetest.Server, f *installer.Fetcher, a *installer.Artifact)
		wantErr error
		wantMsg string
	}{
		{
			name: "wrong bytes",
			setup: func(srv *releasetest.Server, _ *installer.Fetcher, _ *installer.Artifact) {
				srv.Corrupt(repo, tag, "k3s")
			},
			wantErr: installer.ErrChecksumMismatch,
			wantMsg: "the file was discarded",
		},
		{
			name: "missing file",
			setup: func(srv *releasetest.Server, _ *installer.Fetcher, _ *installer.Artifact) {
				srv.Remove(repo, tag, "k3s")
			},
			wantErr: installer.ErrHTTPStatus,
			wantMsg: "404",
		},
		{
			name: "always truncated",
			setup: func(srv *releasetest.Server, _ *installer.Fetcher, _ *installer.Artifact) {
				srv.Truncate(repo, tag, "k3s", 1000)
			},
			wantMsg: "interrupted",
		},
		{
			name: "stalled server",
			setup: func(srv *releasetest.Server, f *installer.Fetcher, _ *installer.Artifact) {
				srv.SetFault(repo, tag, "k3s", releasetest.Fault{Delay: 300 * time.Millisecond})
				f.StallTimeout = 50 * time.Millisecond
				f.Retries = 0
			},
			wantMsg: "stalled",
		},
		{
			name: "unreachable mirror",
			setup: func(srv *releasetest.Server, f *installer.Fetcher, a *installer.Artifact) {
				a.URL = "http://127.0.0.1:1/" + releasetest.Path(repo, tag, "k3s")
				f.Retries = 1
			},
			wantMsg: "connect",
		},
		{
			name:    "malformed pinned digest",
			setup:   func(_ *releasetest.Server, _ *installer.Fetcher, a *installer.Artifact) { a.SHA256 = "abc" },
			wantMsg: "not a SHA-256",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := releasetest.New(t)
			data := randomBytes(t, 128<<10)
			srv.Add(repo, tag, "k3s", data)
			f := newFetcher(t)
			a := artifact(srv, "k3s", data)
			tt.setup(srv, f, &a)

			// The previous working install must survive the failed update.
			dst := filepath.Join(t.TempDir(), "bin", "k3s")
			previous := []byte("previous k3s")
			if err := installer.WriteFileAtomic(dst, bytes.NewReader(previous), 0o755); err != nil {
				t.Fatal(err)
			}
			res, err := f.Fetch(context.Background(), a)
			if err == nil {
				err = installer.InstallFile(res.Path, dst, 0o755)
				t.Fatalf("fetch succeeded (err after install: %v)", err)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("error %q does not say %q", err, tt.wantMsg)
			}
			if _, statErr := os.Stat(filepath.Join(f.Cache, releasetest.Digest(data))); !os.IsNotExist(statErr) {
				t.Fatalf("a verified cache entry exists after a failure (%v)", statErr)
			}
			if errors.Is(err, installer.ErrChecksumMismatch) && len(cacheEntries(t, f.Cache)) != 0 {
				t.Fatalf("bad bytes were kept: %v", cacheEntries(t, f.Cache))
			}
			// A failure keeps a partial file only when it holds bytes to resume from.
			for _, name := range cacheEntries(t, f.Cache) {
				if st, err := os.Stat(filepath.Join(f.Cache, name)); err == nil && st.Size() == 0 {
					t.Fatalf("an empty %s was left behind", name)
				}
			}
			if n := strings.Count(err.Error(), a.URL); n > 1 {
				t.Fatalf("error names the address %d times: %v", n, err)
			}
			mustContent(t, dst, previous)
		})
	}
}

func TestConcurrentFetchesDownloadOnce(t *testing.T) {
	t.Parallel()
	srv := releasetest.New(t)
	data := randomBytes(t, 256<<10)
	srv.Add(repo, tag, "k3s", data)
	srv.SetFault(repo, tag, "k3s", releasetest.Fault{Delay: 5 * time.Millisecond})
	home := t.TempDir()
	a := artifact(srv, "k3s", data)

	var wg sync.WaitGroup
	results := make([]installer.Result, 4)
	errs := make([]error, 4)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = installer.NewFetcher(home).Fetch(context.Background(), a) // separate fetchers, as separate processes
		}()
	}
	wg.Wait()
	downloads := 0
	for i, err := range errs {
		if err != nil {
			t.Fatalf("fetch %d: %v", i, err)
		}
		mustContent(t, results[i].Path, data)
		if !results[i].Cached {
			downloads++
		}
	}
	if downloads != 1 || srv.Hits(repo, tag, "k3s") != 1 {
		t.Fatalf("%d fetches downloaded, server hit %d times; want one download", downloads, srv.Hits(repo, tag, "k3s"))
	}
}

func TestGetSmallFiles(t *testing.T) {
	t.Parallel()
	srv := releasetest.New(t)
	srv.Add(repo, tag, "checksums.txt", []byte("x"))
	srv.SetFault(repo, tag, "checksums.txt", releasetest.Fault{Status: 502, Times: 1})
	f := newFetcher(t)
	b, err := f.Get(context.Background(), srv.URL+"/"+releasetest.Path(repo, tag, "checksums.txt"), 1024)
	if err != nil || string(b) != "x" {
		t.Fatalf("Get = %q, %v", b, err)
	}
	if _, err := f.Get(context.Background(), srv.URL+"/nope", 1024); !errors.Is(err, installer.ErrHTTPStatus) {
		t.Fatalf("Get of a missing file: %v, want ErrHTTPStatus", err)
	}
	srv.SetLatest(repo, tag)
	b, err = f.Get(context.Background(), installer.ReleaseURL(srv.URL, repo, "latest", "checksums.txt"), 1024)
	if err != nil || string(b) != "x" {
		t.Fatalf("Get through latest = %q, %v", b, err)
	}
}

// BenchmarkFetchCacheHit measures a cache hit, which hashes the cached file again (64 MiB, about
// the size of a k3s binary).
func BenchmarkFetchCacheHit(b *testing.B) {
	srv := releasetest.New(b)
	data := randomBytes(b, 64<<20)
	srv.Add(repo, tag, "k3s", data)
	f := newFetcher(b)
	a := artifact(srv, "k3s", data)
	if _, err := f.Fetch(context.Background(), a); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if res, err := f.Fetch(context.Background(), a); err != nil || !res.Cached {
			b.Fatalf("cached=%v, %v", res.Cached, err)
		}
	}
}

// Hostile mirror (slow-loris): a small signed file's headers arrive, then its body stops. Get
// gives up after StallTimeout (and its retries) instead of hanging harmony forever.
func TestGetStalledBody(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("harmony 1.0.0 checksums"))
		w.(http.Flusher).Flush()
		<-r.Context().Done() // nothing more, until the client leaves
	}))
	t.Cleanup(srv.Close)
	f := newFetcher(t)
	f.StallTimeout = 50 * time.Millisecond
	f.Retries = 1
	// The deadline only ends the test if Get hangs; Get must fail before it, on its own.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := f.Get(ctx, srv.URL+"/checksums.txt", 1<<20)
	if err == nil || ctx.Err() != nil || !strings.Contains(err.Error(), "stalled") {
		t.Fatalf("Get of a stalled body: %v (context: %v), want a stall error", err, ctx.Err())
	}
}

// Hostile or broken mirror (drip feed): it sends a byte every little while, so no single read
// waits long enough for the stall timer, yet the download would never end. Fetch gives the
// artifact a time budget from its pinned size and a floor rate (made tiny here so the test is
// quick) and fails with an error that names the address, the bytes received and what to do;
// what arrived is kept to resume from.
func TestFetchDripFeedMirror(t *testing.T) {
	t.Parallel()
	srv := releasetest.New(t)
	data := randomBytes(t, 64<<10)
	srv.Add(repo, tag, "k3s", data)
	srv.SetFault(repo, tag, "k3s", releasetest.Fault{Drip: 2 * time.Millisecond})
	f := newFetcher(t)
	f.MinRate = 1 << 20 // 64 KiB at 1 MiB/s: 62.5 ms, plus the allowance
	f.Allowance = 100 * time.Millisecond
	a := artifact(srv, "k3s", data)
	// The deadline only ends the test if Fetch hangs (the drip would take minutes).
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, err := f.Fetch(ctx, a)
	if ctx.Err() != nil {
		t.Fatalf("Fetch from a drip-feeding mirror ran until the test's own deadline: %v", err)
	}
	if !errors.Is(err, installer.ErrTooSlow) {
		t.Fatalf("Fetch from a drip-feeding mirror: %v, want ErrTooSlow", err)
	}
	msg := err.Error()
	for _, want := range []string{a.URL, "bytes", "HARMONY_MIRROR", "1 MiB/s", "received "} {
		if !strings.Contains(msg, want) && !strings.Contains(strings.Join(hint.Of(err), "\n"), want) {
			t.Errorf("error %q (hint %q) does not mention %q", msg, strings.Join(hint.Of(err), "\n"), want)
		}
	}
	if srv.Served(repo, tag, "k3s") == 0 {
		t.Fatal("the server sent nothing: the drip was not exercised")
	}
	if _, err := os.Stat(filepath.Join(f.Cache, a.SHA256)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a too-slow download reached the cache: %v", err)
	}
}

// The same budget bounds a small file read with Get (a signature, a manifest).
func TestGetDripFeedMirror(t *testing.T) {
	t.Parallel()
	srv := releasetest.New(t)
	data := randomBytes(t, 8<<10)
	url := srv.Add(repo, tag, "runtimes.yaml", data)
	srv.SetFault(repo, tag, "runtimes.yaml", releasetest.Fault{Drip: 2 * time.Millisecond})
	f := newFetcher(t)
	f.MinRate = 1 << 20
	f.Allowance = 50 * time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	_, err := f.Get(ctx, url, 1<<20)
	if ctx.Err() != nil || !errors.Is(err, installer.ErrTooSlow) {
		t.Fatalf("Get from a drip-feeding mirror: %v (context: %v), want ErrTooSlow", err, ctx.Err())
	}
}

// A mirror URL may carry a password: no error or hint harmony prints (or the agent logs) shows it.
func TestMirrorPasswordNeverPrinted(t *testing.T) {
	t.Parallel()
	srv := releasetest.New(t)
	data := randomBytes(t, 1024)
	srv.Add(repo, tag, "k3s", data)
	srv.SetFault(repo, tag, "k3s", releasetest.Fault{Status: 404, Times: 10})
	f := newFetcher(t)
	a := artifact(srv, "k3s", data)
	a.URL = strings.Replace(a.URL, "://", "://mirror-user:hunter2-s3cret@", 1)
	_, err := f.Fetch(context.Background(), a)
	if err == nil {
		t.Fatal("a 404 served the file")
	}
	if _, gerr := f.Get(context.Background(), a.URL, 1024); gerr == nil || strings.Contains(gerr.Error(), "hunter2") {
		t.Errorf("get: %v: want an error without the password", gerr)
	}
	if text := err.Error() + strings.Join(hint.Of(err), "\n"); strings.Contains(text, "hunter2") || !strings.Contains(text, "mirror-user") {
		t.Fatalf("error %q: want the user named and the password hidden", text)
	}
	if cerr := installer.CheckMirror("ftp://mirror-user:hunter2-s3cret@m.example/"); cerr == nil || strings.Contains(cerr.Error(), "hunter2") {
		t.Fatalf("CheckMirror: %v: want an error without the password", cerr)
	}
}

// A host the resolver says does not exist gets the same answer a second later: it is told at
// once, not retried (issue 29 item 6); a resolver that failed otherwise is retried.
func TestNoSuchHostIsNotRetried(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		dnsErr  *net.DNSError
		retries int
	}{
		{"no such host", &net.DNSError{Err: "no such host", Name: "mirror.invalid", IsNotFound: true}, 0},
		{"resolver timed out", &net.DNSError{Err: "i/o timeout", Name: "mirror.invalid", IsTimeout: true}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := newFetcher(t)
			f.Client = &http.Client{Transport: &http.Transport{
				DialContext: func(context.Context, string, string) (net.Conn, error) { return nil, tc.dnsErr },
			}}
			var retries int
			f.OnRetry = func(installer.Retry) { retries++ }
			_, err := f.Get(context.Background(), "https://mirror.invalid/checksums.txt", 1<<20)
			if err == nil || !strings.Contains(err.Error(), tc.dnsErr.Err) {
				t.Fatalf("Get: %v, want the resolver's %q", err, tc.dnsErr.Err)
			}
			if retries != tc.retries {
				t.Fatalf("%d retries, want %d", retries, tc.retries)
			}
		})
	}
}
