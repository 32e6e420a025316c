package installer_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/NationTech/harmony-agent/installer"
	"github.com/NationTech/harmony-agent/internal/hint"
	"github.com/NationTech/harmony-agent/internal/releasetest"
)

// The tests in this file reproduce attacks on the download path, named after the threats of the
// trust chain in DESIGN.md; each failed on the code before its fix.

// plant writes data at path (creating its directory).
func plant(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}

// Privilege confusion / arbitrary software: a file that someone else could write sits in the
// cache under the pinned digest. A cache hit is hashed again before it is used, wherever the
// cache lives, and a cache entry must be a regular file, never a link harmony would follow.
func TestFetchPrivilegeConfusionCacheIsRehashedAndNeverFollowed(t *testing.T) {
	t.Parallel()
	data := randomBytes(t, 64<<10)
	tests := []struct {
		name  string
		plant func(t *testing.T, cache, digest, outside string)
	}{
		{"tampered entry under the pinned digest", func(t *testing.T, cache, digest, _ string) {
			plant(t, filepath.Join(cache, digest), []byte("#!/bin/sh\necho planted\n"))
		}},
		{"oversized entry under the pinned digest", func(t *testing.T, cache, digest, _ string) {
			plant(t, filepath.Join(cache, digest), append(bytes.Clone(data), 0))
		}},
		{"entry is a link to the right bytes elsewhere", func(t *testing.T, cache, digest, outside string) {
			plant(t, filepath.Join(outside, "elsewhere"), data)
			symlink(t, filepath.Join(outside, "elsewhere"), filepath.Join(cache, digest))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := releasetest.New(t)
			srv.Add(repo, tag, "k3s", data)
			f := newFetcher(t)
			a := artifact(srv, "k3s", data)
			outside := t.TempDir()
			tt.plant(t, f.Cache, a.SHA256, outside)

			res, err := f.Fetch(context.Background(), a)
			if err != nil {
				t.Fatal(err)
			}
			if res.Cached || srv.Hits(repo, tag, "k3s") != 1 {
				t.Fatalf("the planted entry was used (cached=%v, server hits %d)", res.Cached, srv.Hits(repo, tag, "k3s"))
			}
			st, err := os.Lstat(res.Path)
			if err != nil || !st.Mode().IsRegular() {
				t.Fatalf("cache entry %q is not a regular file: %v %v", res.Path, st, err)
			}
			mustContent(t, res.Path, data)
			if b, err := os.ReadFile(filepath.Join(outside, "elsewhere")); err == nil && !bytes.Equal(b, data) {
				t.Fatal("the link's target was changed")
			}
		})
	}
}

// Privilege confusion: links planted beside the cache entry (the partial download, its metadata,
// its lock) must not make harmony write, truncate or create the files they point to.
func TestFetchPrivilegeConfusionPlantedLinksAreNotWrittenThrough(t *testing.T) {
	t.Parallel()
	for _, suffix := range []string{".partial", ".partial.json", ".lock"} {
		for _, dangling := range []bool{false, true} {
			name := suffix + " → an existing file"
			if dangling {
				name = suffix + " → a file yet to be created"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				srv := releasetest.New(t)
				data := randomBytes(t, 64<<10)
				srv.Add(repo, tag, "k3s", data)
				f := newFetcher(t)
				a := artifact(srv, "k3s", data)
				outside := t.TempDir()
				victim := filepath.Join(outside, "victim")
				precious := []byte("a file the attacker wants overwritten, e.g. /etc/sudoers")
				plant(t, victim, precious)
				target := victim
				if dangling {
					target = filepath.Join(outside, "created")
				}
				symlink(t, target, filepath.Join(f.Cache, a.SHA256+suffix))

				res, err := f.Fetch(context.Background(), a)
				if err != nil {
					t.Fatal(err)
				}
				mustContent(t, res.Path, data)
				mustContent(t, victim, precious)
				if left, _ := os.ReadDir(outside); len(left) != 1 {
					t.Fatalf("harmony created files through a link: %v", left)
				}
			})
		}
	}
}

// Privilege confusion (the window between check and use): the cache file is swapped after Fetch
// verified it. InstallVerified hashes the bytes it installs, so the swap is caught and the
// previous install stays.
func TestInstallVerifiedRefusesBytesSwappedAfterFetch(t *testing.T) {
	t.Parallel()
	srv := releasetest.New(t)
	data := randomBytes(t, 64<<10)
	srv.Add(repo, tag, "k3s", data)
	f := newFetcher(t)
	a := artifact(srv, "k3s", data)
	res, err := f.Fetch(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "bin", "k3s")
	if err := installer.InstallVerified(res.Path, a.SHA256, dst, 0o755); err != nil {
		t.Fatal(err)
	}
	mustContent(t, dst, data)

	plant(t, res.Path, []byte("swapped after the check"))
	err = installer.InstallVerified(res.Path, a.SHA256, dst, 0o755)
	if !errors.Is(err, installer.ErrChecksumMismatch) {
		t.Fatalf("install of swapped bytes: %v, want ErrChecksumMismatch", err)
	}
	mustContent(t, dst, data)
	os.Remove(res.Path)
	symlink(t, dst, res.Path)
	if err := installer.InstallVerified(res.Path, a.SHA256, dst+".2", 0o755); err == nil {
		t.Fatal("installed through a link in the cache")
	}
	if left, _ := os.ReadDir(filepath.Dir(dst)); len(left) != 1 {
		t.Fatalf("a refused install left %v", left)
	}
}

// Endless data: a server that sends more than the pinned size, announced or not, is cut off at
// the pinned size, the partial file is deleted and the error says so. Before the fix a server
// streaming forever filled the disk with a .partial file that stayed across runs.
func TestFetchEndlessDataStopsAtThePinnedSize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		fault        releasetest.Fault
		maxTransfer  int64
		wantInHeader bool
	}{
		{"endless stream of unknown length", releasetest.Fault{Extra: 64 << 20, HideLength: true}, 64<<10 + 1, false},
		{"announced length above the pinned size", releasetest.Fault{Extra: 8 << 20}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := releasetest.New(t)
			data := randomBytes(t, 64<<10)
			srv.Add(repo, tag, "k3s", data)
			srv.SetFault(repo, tag, "k3s", tt.fault)
			f := newFetcher(t)
			a := artifact(srv, "k3s", data)
			res, err := f.Fetch(context.Background(), a)
			if !errors.Is(err, installer.ErrTooLarge) {
				t.Fatalf("error %v, want ErrTooLarge", err)
			}
			if !strings.Contains(err.Error(), "65536") || !strings.Contains(err.Error(), "deleted") {
				t.Fatalf("error %q does not name the pinned size and say the partial file is gone", err)
			}
			if res.Transferred > tt.maxTransfer {
				t.Fatalf("received %d bytes, want at most %d (the pinned size is %d)", res.Transferred, tt.maxTransfer, a.MaxSize)
			}
			if got := cacheEntries(t, f.Cache); len(got) != 0 {
				t.Fatalf("the cache keeps %v", got)
			}
			if hits := srv.Hits(repo, tag, "k3s"); hits != 1 {
				t.Fatalf("%d requests: an oversized file is not retried", hits)
			}
		})
	}
}

// Endless data: an artifact without a pinned size is never downloaded, and a partial file left
// larger than the pinned size (by an older harmony) is thrown away rather than resumed.
func TestFetchEndlessDataNeedsABound(t *testing.T) {
	t.Parallel()
	srv := releasetest.New(t)
	data := randomBytes(t, 64<<10)
	srv.Add(repo, tag, "k3s", data)
	f := newFetcher(t)
	a := artifact(srv, "k3s", data)
	unbounded := a
	unbounded.MaxSize = 0
	if _, err := f.Fetch(context.Background(), unbounded); err == nil || !strings.Contains(err.Error(), "no pinned size") {
		t.Fatalf("unbounded fetch: %v", err)
	}
	if srv.Hits(repo, tag, "k3s") != 0 {
		t.Fatal("an unbounded artifact was requested")
	}
	plant(t, filepath.Join(f.Cache, a.SHA256+".partial"), make([]byte, 300<<10))
	res, err := f.Fetch(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	mustContent(t, res.Path, data)
}

// Transport: the Go client never follows a redirect from https to plain http (the bytes would
// travel unprotected, so anyone on the path could stall or swap them), for artifacts and for
// small files alike.
func TestFetchRefusesRedirectFromHTTPSToHTTP(t *testing.T) {
	t.Parallel()
	data := randomBytes(t, 16<<10)
	plain := releasetest.New(t)
	plainURL := plain.Add(repo, tag, "k3s", data)
	secure := releasetest.NewTLS(t)
	secure.Add(repo, tag, "k3s", data)
	secure.SetFault(repo, tag, "k3s", releasetest.Fault{RedirectTo: plainURL})
	f := newFetcher(t)
	f.Client = secure.Client()
	a := artifact(secure, "k3s", data)

	if _, err := f.Fetch(context.Background(), a); !errors.Is(err, installer.ErrInsecureTransport) {
		t.Fatalf("fetch through an https→http redirect: %v, want ErrInsecureTransport", err)
	}
	if _, err := f.Get(context.Background(), a.URL, 1<<20); !errors.Is(err, installer.ErrInsecureTransport) {
		t.Fatalf("get through an https→http redirect: %v, want ErrInsecureTransport", err)
	}
	if plain.Hits(repo, tag, "k3s") != 0 {
		t.Fatal("the plain-http target was requested")
	}
	// https to https is fine.
	secure.Reset(repo, tag, "k3s")
	if _, err := f.Fetch(context.Background(), a); err != nil {
		t.Fatal(err)
	}
}

// Transport: plain http is accepted for loopback addresses only (the test servers); any other
// plain-http address, such as a HARMONY_MIRROR typed without https, is refused before a
// connection is made, with an example of a value that works.
func TestFetchRefusesPlainHTTPBeyondLoopback(t *testing.T) {
	t.Parallel()
	f := newFetcher(t)
	f.Retries = 0
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, u := range []string{"http://192.0.2.10/k3s-io/k3s/releases/download/v1/k3s", "http://mirror.example/k3s", "ftp://127.0.0.1/k3s"} {
		a := installer.Artifact{Name: "k3s", URL: u, SHA256: strings.Repeat("a", 64), MaxSize: 10}
		_, err := f.Fetch(ctx, a)
		if !errors.Is(err, installer.ErrInsecureTransport) {
			t.Fatalf("%s: %v, want ErrInsecureTransport", u, err)
		}
		if msg := err.Error() + strings.Join(hint.Of(err), "\n"); !strings.Contains(msg, "HARMONY_MIRROR=https://") {
			t.Fatalf("%s: error %q gives no example of a valid HARMONY_MIRROR", u, err)
		}
		if _, err := f.Get(ctx, u, 10); !errors.Is(err, installer.ErrInsecureTransport) {
			t.Fatalf("get %s: %v, want ErrInsecureTransport", u, err)
		}
	}
	for _, u := range []string{"http://127.0.0.1:1/x", "http://localhost:1/x", "http://[::1]:1/x"} {
		if err := installer.CheckURL(u); err != nil {
			t.Errorf("loopback %s refused: %v", u, err)
		}
	}
}
