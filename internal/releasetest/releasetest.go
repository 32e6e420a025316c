// Package releasetest serves a GitHub-shaped release tree over real HTTP for tests:
// <owner>/<repo>/releases/download/<tag>/<asset> and <owner>/<repo>/releases/latest/download/<asset>
// (a redirect to the latest tag, as GitHub answers). Any file can be corrupted, truncated,
// slowed, made to fail or dropped, and every request is counted.
package releasetest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Fault changes how one file is served.
type Fault struct {
	// Status, when set, is answered instead of the file.
	Status int
	// CutAfter, when > 0, closes the connection after that many body bytes (the headers still
	// announce the full length), like a dropped connection.
	CutAfter int64
	// IgnoreRange serves the whole file with 200 even to a Range request.
	IgnoreRange bool
	// Delay pauses before every 32 KiB of body.
	Delay time.Duration
	// Drip sends the body one byte at a time, flushed, pausing Drip before each: a mirror that
	// never stalls long enough to trip a per-read timer, yet would take forever.
	Drip time.Duration
	// Extra, when > 0, appends that many more bytes after the file (a server that sends more
	// than the pinned artifact: the "endless data" threat), announced in Content-Length unless
	// HideLength is set.
	Extra int64
	// HideLength sends the body without a Content-Length (chunked), as a stream of unknown end.
	HideLength bool
	// RedirectTo, when set, answers with a redirect to that URL instead of the file.
	RedirectTo string
	// Times limits the fault to the next Times requests; 0 means every request.
	Times int
}

type file struct {
	data    []byte
	modTime time.Time
	fault   *Fault
}

// Server is a local release server. Its URL stands in for https://github.com (HARMONY_MIRROR).
type Server struct {
	*httptest.Server

	mu     sync.Mutex
	files  map[string]*file // path without leading slash
	latest map[string]string
	hits   map[string]int
	served map[string]int64
	ranges map[string][]string
}

// New starts a server that stops when the test ends.
func New(t testing.TB) *Server {
	return start(t, httptest.NewServer)
}

// NewTLS starts a server that speaks https (with a certificate only its Client() trusts), for
// tests of what harmony does between https and plain http.
func NewTLS(t testing.TB) *Server {
	return start(t, httptest.NewTLSServer)
}

func start(t testing.TB, listen func(http.Handler) *httptest.Server) *Server {
	s := &Server{
		files:  map[string]*file{},
		latest: map[string]string{},
		hits:   map[string]int{},
		served: map[string]int64{},
		ranges: map[string][]string{},
	}
	s.Server = listen(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// Path returns the tree path of a release asset.
func Path(repo, tag, asset string) string {
	return repo + "/releases/download/" + tag + "/" + asset
}

// Add serves data as asset of repo's release tag and returns its URL.
func (s *Server) Add(repo, tag, asset string, data []byte) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := Path(repo, tag, asset)
	s.files[p] = &file{data: bytes.Clone(data), modTime: time.Now().Add(-time.Hour).Truncate(time.Second)}
	return s.URL + "/" + p
}

// fileCache holds the files AddFile read, once per process: every test server of a package
// shares one read-only copy of a snapshot's archives instead of reading and cloning ~300 MiB
// each (parallel install tests ran a test binary out of memory). Changes (Corrupt, Replace)
// work on copies.
var fileCache sync.Map // path + size + mtime → []byte

// AddFile serves the file at path as asset.
func (s *Server) AddFile(t testing.TB, repo, tag, asset, path string) string {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	key := fmt.Sprintf("%s\x00%d\x00%d", path, fi.Size(), fi.ModTime().UnixNano())
	b, ok := fileCache.Load(key)
	if !ok {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ = fileCache.LoadOrStore(key, data)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := Path(repo, tag, asset)
	s.files[p] = &file{data: b.([]byte), modTime: time.Now().Add(-time.Hour).Truncate(time.Second)}
	return s.URL + "/" + p
}

// AddDir serves every regular file directly in dir as an asset of repo's release tag.
func (s *Server) AddDir(t testing.TB, repo, tag, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Type().IsRegular() {
			s.AddFile(t, repo, tag, e.Name(), filepath.Join(dir, e.Name()))
		}
	}
}

// SetLatest makes releases/latest/download/<asset> of repo redirect to tag.
func (s *Server) SetLatest(repo, tag string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latest[repo] = tag
}

// Replace serves new bytes under an existing path (a file that changed on the server).
func (s *Server) Replace(repo, tag, asset string, data []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.mustFile(Path(repo, tag, asset))
	f.data = bytes.Clone(data)
	f.modTime = f.modTime.Add(time.Minute)
}

// Corrupt flips one byte in the middle of the served file, keeping its length.
func (s *Server) Corrupt(repo, tag, asset string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.mustFile(Path(repo, tag, asset))
	f.data = bytes.Clone(f.data)
	f.data[len(f.data)/2] ^= 0xff
}

// Truncate serves only the first n bytes of the file on every request, announcing the full length.
func (s *Server) Truncate(repo, tag, asset string, n int64) {
	s.SetFault(repo, tag, asset, Fault{CutAfter: n})
}

// SetFault sets how the file is served until Reset (or until Fault.Times requests).
func (s *Server) SetFault(repo, tag, asset string, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustFile(Path(repo, tag, asset)).fault = &f
}

// Reset serves the file normally again.
func (s *Server) Reset(repo, tag, asset string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mustFile(Path(repo, tag, asset)).fault = nil
}

// Remove stops serving the file (404).
func (s *Server) Remove(repo, tag, asset string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.files, Path(repo, tag, asset))
}

// Hits returns how many requests reached the file.
func (s *Server) Hits(repo, tag, asset string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[Path(repo, tag, asset)]
}

// Served returns how many body bytes of the file were written to clients.
func (s *Server) Served(repo, tag, asset string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.served[Path(repo, tag, asset)]
}

// Ranges returns the Range headers of the requests for the file ("" when none).
func (s *Server) Ranges(repo, tag, asset string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.ranges[Path(repo, tag, asset)]...)
}

// Digest returns the SHA-256 of data, lowercase hex.
func Digest(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// Checksums renders a sha256sum-style listing of the given assets.
func Checksums(assets map[string][]byte) []byte {
	var b strings.Builder
	for name, data := range assets {
		fmt.Fprintf(&b, "%s  %s\n", Digest(data), name)
	}
	return []byte(b.String())
}

func (s *Server) mustFile(p string) *file {
	f, ok := s.files[p]
	if !ok {
		panic("releasetest: no file " + p)
	}
	return f
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	p := strings.TrimPrefix(r.URL.Path, "/")
	s.mu.Lock()
	if repo, asset, ok := strings.Cut(p, "/releases/latest/download/"); ok {
		tag, found := s.latest[repo]
		s.mu.Unlock()
		if !found {
			http.NotFound(w, r)
			return
		}
		http.Redirect(w, r, "/"+Path(repo, tag, asset), http.StatusFound)
		return
	}
	f, ok := s.files[p]
	s.hits[p]++
	s.ranges[p] = append(s.ranges[p], r.Header.Get("Range"))
	var fault Fault
	var data []byte
	var mod time.Time
	if ok {
		data, mod = f.data, f.modTime
		if f.fault != nil {
			fault = *f.fault
			if f.fault.Times > 0 {
				if f.fault.Times--; f.fault.Times == 0 {
					f.fault = nil
				}
			}
		}
	}
	s.mu.Unlock()
	if !ok {
		http.NotFound(w, r)
		return
	}
	if fault.Status != 0 {
		http.Error(w, http.StatusText(fault.Status), fault.Status)
		return
	}
	if fault.RedirectTo != "" {
		http.Redirect(w, r, fault.RedirectTo, http.StatusFound)
		return
	}
	cw := &countingWriter{ResponseWriter: w, s: s, path: p, limit: fault.CutAfter, delay: fault.Delay, drip: fault.Drip}
	if fault.Extra > 0 {
		if !fault.HideLength {
			w.Header().Set("Content-Length", strconv.FormatInt(int64(len(data))+fault.Extra, 10))
		}
		w.WriteHeader(http.StatusOK)
		_, _ = io.Copy(cw, io.MultiReader(bytes.NewReader(data), io.LimitReader(zeros{}, fault.Extra)))
		return
	}
	if fault.IgnoreRange {
		r.Header.Del("Range")
	}
	w.Header().Set("ETag", `"`+Digest(data)[:16]+`"`)
	http.ServeContent(cw, r, filepath.Base(p), mod, bytes.NewReader(data))
}

// zeros reads as an endless run of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// countingWriter counts body bytes and applies CutAfter and Delay.
type countingWriter struct {
	http.ResponseWriter
	s       *Server
	path    string
	limit   int64
	written int64
	delay   time.Duration
	drip    time.Duration
}

func (c *countingWriter) Write(p []byte) (int, error) {
	total := 0
	for len(p) > 0 {
		chunk := p
		if len(chunk) > 32<<10 {
			chunk = chunk[:32<<10]
		}
		if c.drip > 0 {
			chunk = chunk[:1]
			time.Sleep(c.drip)
		}
		if c.delay > 0 {
			time.Sleep(c.delay)
		}
		if c.limit > 0 && c.written+int64(len(chunk)) > c.limit {
			chunk = chunk[:c.limit-c.written]
			n, _ := c.ResponseWriter.Write(chunk)
			c.count(n)
			if fl, ok := c.ResponseWriter.(http.Flusher); ok {
				fl.Flush()
			}
			panic(http.ErrAbortHandler) // drop the connection mid-body
		}
		n, err := c.ResponseWriter.Write(chunk)
		c.count(n)
		total += n
		if err != nil {
			return total, err
		}
		if c.drip > 0 {
			fl, ok := c.ResponseWriter.(http.Flusher)
			if ok {
				fl.Flush()
			}
		}
		p = p[len(chunk):]
	}
	return total, nil
}

func (c *countingWriter) count(n int) {
	c.written += int64(n)
	c.s.mu.Lock()
	c.s.served[c.path] += int64(n)
	c.s.mu.Unlock()
}
