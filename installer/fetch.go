package installer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/NationTech/harmony-agent/internal/hint"
)

// Artifact is one file to fetch together with the digest harmony already trusts for it (from
// the embedded runtime manifest or a signed checksums.txt).
type Artifact struct {
	// Name labels the artifact in messages, e.g. "k3s v1.36.4+k3s1 (linux/amd64)".
	Name string
	// URL is where to download it from.
	URL string
	// SHA256 is the pinned, trusted digest (lowercase hex).
	SHA256 string
	// MaxSize is the most bytes harmony accepts for the artifact: its pinned size, or the bound
	// pinned in its place. A larger Content-Length is refused before the body is read, a body
	// that goes on is cut off there and its partial file deleted. Required: every download is
	// bounded.
	MaxSize int64
}

// Result tells where a fetched artifact is and how it got there.
type Result struct {
	// Path is the verified file in the content-addressed cache. Treat it as read-only.
	Path string
	// Cached is true when nothing was downloaded.
	Cached bool
	// Transferred counts the body bytes received over the network in this call.
	Transferred int64
}

var (
	// ErrHTTPStatus marks a download refused by the server with a non-retryable status.
	ErrHTTPStatus = errors.New("unexpected HTTP status")
	// ErrTooLarge means the server sent, or announced, more bytes than the artifact's pinned size.
	ErrTooLarge = errors.New("larger than its pinned size")
	// ErrInsecureTransport refuses a plain-http address other than a loopback one, and any
	// redirect from https to http.
	ErrInsecureTransport = errors.New("insecure transport")
	// ErrTooSlow means a download did not finish within the time its size allows at
	// Fetcher.MinRate (plus Fetcher.Allowance).
	ErrTooSlow = errors.New("too slow")
)

// Fetcher downloads artifacts into a content-addressed cache. The zero value is not usable:
// set Cache (see NewFetcher).
type Fetcher struct {
	// Cache is the directory of verified files named by their SHA-256 digest.
	Cache string
	// Client does the HTTP requests; nil means NewHTTPClient().
	Client *http.Client
	// Progress, when set, is told about every download.
	Progress ProgressFunc
	// Retries is how many times a transient failure (network error, 5xx, truncated body) is
	// retried, resuming where it stopped. Negative means none.
	Retries int
	// Backoff is the first pause between tries; it doubles each time.
	Backoff time.Duration
	// StallTimeout aborts (and retries) a transfer that receives no byte for this long.
	StallTimeout time.Duration
	// MinRate (bytes per second) and Allowance bound a whole download, retries included:
	// an artifact of MaxSize bytes gets Allowance + MaxSize/MinRate, so a mirror that drips
	// bytes (never stalling long enough for StallTimeout) cannot keep harmony, or the
	// unattended agent, running forever. MinRate 0 means no bound.
	MinRate   int64
	Allowance time.Duration
	// OnRetry, when set, is told about every retry before its pause, as it happens.
	OnRetry func(Retry)
}

// Retry describes a transient failure about to be retried.
type Retry struct {
	// Name is the artifact's label (or the address of a small file).
	Name string
	// Attempt counts the retries, from 1 to Of.
	Attempt, Of int
	// Wait is the pause before the retry.
	Wait time.Duration
	// Reason is what went wrong, without the name and address the final error carries.
	Reason string
}

// retry tells OnRetry about a retry of name after err.
func (f *Fetcher) retry(name string, attempt int, wait time.Duration, err error) {
	if f.OnRetry == nil {
		return
	}
	reason := err.Error()
	var t *transientError
	if errors.As(err, &t) && t.reason != "" {
		reason = t.reason
	}
	f.OnRetry(Retry{Name: name, Attempt: attempt, Of: f.Retries, Wait: wait, Reason: reason})
}

// The floor a download is held to: 64 KiB/s on average, after 5 minutes for connecting, stalls
// and retries. k3s (about 70 MiB) gets about 23 minutes, a signature about 5.
const (
	DefaultMinRate   = 64 << 10
	DefaultAllowance = 5 * time.Minute
)

// errTooSlow is the cause of a download's context ending at its budget.
var errTooSlow = errors.New("download budget spent")

// budget bounds ctx by the time a download of size bytes may take (see Fetcher.MinRate).
func (f *Fetcher) budget(ctx context.Context, size int64) (context.Context, time.Duration, context.CancelFunc) {
	if f.MinRate <= 0 {
		return ctx, 0, func() {}
	}
	d := f.Allowance + time.Duration(float64(size)/float64(f.MinRate)*float64(time.Second))
	ctx, cancel := context.WithTimeoutCause(ctx, d, errTooSlow)
	return ctx, d, cancel
}

// tooSlow replaces err by ErrTooSlow when the download's budget ended it (and not the caller).
func (f *Fetcher) tooSlow(ctx context.Context, err error, what, addr string, received, size int64, d time.Duration) error {
	if err == nil || !errors.Is(context.Cause(ctx), errTooSlow) {
		return err
	}
	return hint.With(fmt.Errorf("%s from %q: %w: received %d of at most %d bytes in %s, below the %s harmony requires on average (the mirror drips or the network is very slow)",
		what, redactURL(addr), ErrTooSlow, received, size, roundDuration(d), rate(f.MinRate)),
		"check HARMONY_MIRROR (now "+strconv.Quote(redactURL(Mirror()))+"): point it at a faster mirror, e.g. HARMONY_MIRROR=https://artifacts.example.com/github, or retry on a faster network: the download resumes where it stopped")
}

// roundDuration drops sub-second noise from a duration of a second or more.
func roundDuration(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Round(time.Second)
	}
	return d.Round(time.Millisecond)
}

// rate renders bytes per second in IEC units.
func rate(bps int64) string {
	switch {
	case bps >= 1<<20 && bps%(1<<20) == 0:
		return fmt.Sprintf("%d MiB/s", bps>>20)
	case bps >= 1<<10 && bps%(1<<10) == 0:
		return fmt.Sprintf("%d KiB/s", bps>>10)
	}
	return fmt.Sprintf("%d bytes/s", bps)
}

// NewFetcher returns a Fetcher with harmony's defaults, caching under home.
func NewFetcher(home string) *Fetcher {
	return &Fetcher{
		Cache:        CacheDir(home),
		Client:       NewHTTPClient(),
		Retries:      4,
		Backoff:      500 * time.Millisecond,
		StallTimeout: 60 * time.Second,
		MinRate:      DefaultMinRate,
		Allowance:    DefaultAllowance,
	}
}

// NewHTTPClient returns the client every download uses: proxies from the environment
// (HTTPS_PROXY, NO_PROXY), bounded connect, TLS and header timeouts, and no overall timeout so
// that large files on slow links still finish (stalls are caught by Fetcher.StallTimeout).
func NewHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		IdleConnTimeout:       90 * time.Second,
		ForceAttemptHTTP2:     true,
	}}
}

// client returns the HTTP client with harmony's redirect rule added to whatever the caller set:
// every hop must pass CheckURL, and none may go from https down to http.
func (f *Fetcher) client() *http.Client {
	c := f.Client
	if c == nil {
		c = NewHTTPClient()
	}
	cc := *c
	next := c.CheckRedirect
	cc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) > 0 && via[len(via)-1].URL.Scheme == "https" && req.URL.Scheme != "https" {
			return fmt.Errorf("redirect from %q to %q: https must not lead to plain http: %w", redact(via[len(via)-1].URL), redact(req.URL), ErrInsecureTransport)
		}
		if err := checkURL(req.URL); err != nil {
			return fmt.Errorf("redirect: %w", err)
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
	return &cc
}

// CheckURL accepts an https address, and a plain-http one only when its host is a loopback
// address (a test server on this machine); anything else is ErrInsecureTransport.
func CheckURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("address %q: %w", raw, err)
	}
	return checkURL(u)
}

func checkURL(u *url.URL) error {
	switch {
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		return nil
	case u.Scheme == "http":
		return fmt.Errorf("plain-http address %q: harmony downloads over https only (plain http only from this machine's loopback address): %w", redact(u), ErrInsecureTransport)
	}
	return fmt.Errorf("address %q: want an https URL: %w", redact(u), ErrInsecureTransport)
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// redact drops any user:password from an address before it goes into a message.
func redact(u *url.URL) string { return u.Redacted() }

// redactURL is the address s with any password replaced by "xxxxx" (a mirror URL may carry
// one: errors and hints are printed, logged by the agent and kept in its log).
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}

// transientError is a failure worth retrying; reason is what went wrong in short, for the
// retry notice (the error itself names the file and its address).
type transientError struct {
	err    error
	reason string
}

func (t *transientError) Error() string { return t.err.Error() }
func (t *transientError) Unwrap() error { return t.err }

func transient(err error) error { return &transientError{err: err} }

// noSuchHost reports a name the resolver says does not exist: asking again in a second gets the
// same answer, so it is not retried (a resolver that timed out or failed is).
func noSuchHost(err error) bool {
	var dns *net.DNSError
	return errors.As(err, &dns) && dns.IsNotFound
}

// transientWhy is transient with the short reason shown when it is retried.
func transientWhy(err error, reason string) error { return &transientError{err: err, reason: reason} }

// requestError is a failed request described by what (which names the address), naming the
// address once: the *url.Error of net/http, which repeats it, is unwrapped.
func requestError(what string, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	return fmt.Errorf("%s: %w", what, err)
}

// Fetch returns the cached, verified file for a, downloading it first when the cache lacks it.
// Bytes are hashed while they stream; a file whose digest differs from a.SHA256 is discarded
// and never reaches the cache. Concurrent fetches of the same artifact, in this process or
// another, download it once.
func (f *Fetcher) Fetch(ctx context.Context, a Artifact) (Result, error) {
	want := strings.ToLower(a.SHA256)
	if !ValidDigest(want) {
		return Result{}, fmt.Errorf("fetch %s: pinned digest %q is not a SHA-256 hex digest", a.Name, a.SHA256)
	}
	if a.MaxSize <= 0 {
		return Result{}, fmt.Errorf("fetch %s: no pinned size: every download must be bounded", a.Name)
	}
	if err := CheckURL(a.URL); err != nil {
		return Result{}, f.explain(a, fmt.Errorf("fetch %s: %w", a.Name, err))
	}
	final := filepath.Join(f.Cache, want)
	if cachedOK(final, want, a.MaxSize) {
		return Result{Path: final, Cached: true}, nil
	}
	if err := os.MkdirAll(f.Cache, 0o755); err != nil {
		return Result{}, fmt.Errorf("create cache %q: %w", f.Cache, err)
	}
	unlock, err := LockFile(ctx, final+".lock")
	if err != nil {
		return Result{}, err
	}
	defer unlock()
	if cachedOK(final, want, a.MaxSize) { // another fetch finished while we waited for the lock
		return Result{Path: final, Cached: true}, nil
	}
	// Whatever else sits under the digest (altered bytes, a link) is not ours: download anew.
	if err := os.Remove(final); err != nil && !errors.Is(err, os.ErrNotExist) {
		return Result{}, fmt.Errorf("fetch %s: remove the unverified cache entry %q: %w", a.Name, final, err)
	}

	return f.fetch(ctx, a, want, final)
}

// fetch downloads a into final (the lock held), retrying within the download's budget.
func (f *Fetcher) fetch(parent context.Context, a Artifact, want, final string) (res Result, err error) {
	ctx, d, cancel := f.budget(parent, a.MaxSize)
	defer cancel()
	defer func() { err = f.tooSlow(ctx, err, "download "+a.Name, a.URL, res.Transferred, a.MaxSize, d) }()
	backoff := f.Backoff
	restarted := false
	for attempt := 0; ; attempt++ {
		n, resumed, err := f.download(ctx, a, want, final)
		res.Transferred += n
		if err == nil {
			res.Path = final
			return res, nil
		}
		if errors.Is(err, ErrChecksumMismatch) && resumed && !restarted {
			// The kept partial may come from a file that changed on the server: start over once.
			restarted = true
			continue
		}
		var t *transientError
		if !errors.As(err, &t) || attempt >= f.Retries || ctx.Err() != nil {
			dropEmptyPartial(final)
			return res, f.explain(a, err)
		}
		f.retry(a.Name, attempt+1, backoff, err)
		select {
		case <-ctx.Done():
			dropEmptyPartial(final)
			return res, ctx.Err()
		case <-time.After(backoff):
		}
		backoff *= 2
	}
}

// dropEmptyPartial removes the partial file of a failed download when it holds nothing to
// resume from, with its metadata: a failure leaves no empty file behind.
func dropEmptyPartial(final string) {
	partial := final + ".partial"
	if st, err := os.Lstat(partial); err == nil && st.Mode().IsRegular() && st.Size() == 0 {
		_ = os.Remove(partial)
		_ = os.Remove(partial + ".json")
	}
}

// cachedOK hashes the cache entry again: only a regular file (never a link, which is not
// followed) of at most max bytes whose bytes hash to want counts as a hit.
func cachedOK(path, want string, max int64) bool {
	got, err := hashFile(path, max)
	return err == nil && got == want
}

func (f *Fetcher) explain(a Artifact, err error) error {
	mirror := fmt.Sprintf("HARMONY_MIRROR (now %q)", redactURL(Mirror()))
	switch {
	case errors.Is(err, ErrInsecureTransport):
		return hint.With(err, "set HARMONY_MIRROR to an https address, for example HARMONY_MIRROR=https://artifacts.example.com/github (plain http is accepted only for 127.0.0.1, ::1 or localhost)")
	case errors.Is(err, ErrTooLarge):
		return hint.With(err, "the server sends more than the file harmony pinned: check "+mirror+"; if it persists the mirror serves altered files: report it")
	case errors.Is(err, ErrChecksumMismatch):
		return hint.With(err, "check "+mirror+" or retry; if it persists the mirror serves altered files: report it")
	case errors.Is(err, ErrHTTPStatus):
		return hint.With(err, "the server does not have this file: check "+mirror+" and the requested version")
	case errors.Is(err, context.Canceled):
		return err
	default:
		return hint.With(err, "check your network connection and "+mirror+", then retry: the download resumes where it stopped")
	}
}

// partialMeta remembers what a .partial file holds, so a resume can tell whether the server
// still has the same file.
type partialMeta struct {
	URL          string `json:"url"`
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"lastModified,omitempty"`
	Total        int64  `json:"total,omitempty"`
}

// download makes one attempt. It returns the body bytes received and whether it resumed.
func (f *Fetcher) download(ctx context.Context, a Artifact, want, final string) (int64, bool, error) {
	partial, metaPath := final+".partial", final+".partial.json"
	for _, p := range []string{partial, metaPath} {
		if err := removeIfNotRegular(p); err != nil {
			return 0, false, fmt.Errorf("download %s: %w", a.Name, err)
		}
	}
	file, err := openNoFollow(partial, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return 0, false, fmt.Errorf("download %s: %w", a.Name, err)
	}
	defer file.Close()
	// tooLarge ends a download that went beyond the pinned size: nothing of it is kept.
	tooLarge := func(n int64, format string, args ...any) (int64, bool, error) {
		file.Close()
		_ = os.Remove(partial)
		_ = os.Remove(metaPath)
		return n, false, fmt.Errorf("download %s: %s, more than the pinned %d bytes: %w; stopped, and the partial file was deleted",
			a.Name, fmt.Sprintf(format, args...), a.MaxSize, ErrTooLarge)
	}

	h := sha256.New()
	meta := readMeta(metaPath)
	have, err := f.prefix(file, h, meta, a.URL, a.MaxSize)
	if err != nil {
		return 0, false, fmt.Errorf("download %s: resume: %w", a.Name, err)
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.URL, nil)
	if err != nil {
		return 0, false, fmt.Errorf("download %s: %w", a.Name, err)
	}
	req.Header.Set("User-Agent", "harmony")
	if have > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", have))
		if v := validator(meta); v != "" {
			req.Header.Set("If-Range", v)
		}
	}
	resp, err := f.client().Do(req)
	if err != nil {
		err = requestError(fmt.Sprintf("download %s from %q", a.Name, redactURL(a.URL)), err)
		if errors.Is(err, ErrInsecureTransport) || noSuchHost(err) {
			return 0, false, err
		}
		return 0, false, transientWhy(err, errors.Unwrap(err).Error())
	}
	defer resp.Body.Close()

	resumed := false
	switch {
	case resp.StatusCode == http.StatusPartialContent && have > 0:
		start, total, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != have || (meta.Total > 0 && total > 0 && total != meta.Total) {
			if err := restart(file, h); err != nil {
				return 0, false, err
			}
			_ = os.Remove(metaPath)
			return 0, false, transient(fmt.Errorf("download %s: server answered an unexpected range %q; starting over", a.Name, resp.Header.Get("Content-Range")))
		}
		if total > a.MaxSize {
			return tooLarge(0, "the server announces %d bytes", total)
		}
		resumed = true
	case resp.StatusCode == http.StatusOK:
		if have > 0 { // Range ignored or file changed: start from zero
			if err := restart(file, h); err != nil {
				return 0, false, err
			}
			have = 0
		}
		meta = partialMeta{URL: a.URL, ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified"), Total: resp.ContentLength}
		if err := writeMeta(metaPath, meta); err != nil {
			return 0, false, fmt.Errorf("download %s: %w", a.Name, err)
		}
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		if err := restart(file, h); err != nil {
			return 0, false, err
		}
		_ = os.Remove(metaPath)
		return 0, false, transient(fmt.Errorf("download %s: server refused to resume; starting over", a.Name))
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout:
		return 0, false, transientWhy(fmt.Errorf("download %s from %q: HTTP %s", a.Name, redactURL(a.URL), resp.Status), "HTTP "+resp.Status)
	default:
		return 0, false, fmt.Errorf("download %s from %q: HTTP %s: %w", a.Name, redactURL(a.URL), resp.Status, ErrHTTPStatus)
	}

	total := int64(-1)
	if resp.ContentLength >= 0 {
		total = have + resp.ContentLength
		if total > a.MaxSize {
			return tooLarge(0, "the server announces %d bytes", total)
		}
	}
	var sink io.Writer = io.Discard
	if f.Progress != nil {
		bar := f.Progress(a.Name, total, have)
		defer bar.Finish()
		sink = bar
	}
	// One byte past the pinned size is enough to know the file is not the pinned one.
	body := io.LimitReader(newStallReader(resp.Body, f.StallTimeout, cancel), a.MaxSize-have+1)
	n, err := io.Copy(io.MultiWriter(file, h, sink), body)
	if have+n > a.MaxSize {
		return tooLarge(n, "the server sent more than %d bytes", a.MaxSize)
	}
	if err != nil {
		if cause := context.Cause(ctx); errors.Is(cause, errStalled) {
			err = cause
		}
		return n, resumed, transient(fmt.Errorf("download %s: interrupted after %d bytes: %w", a.Name, have+n, err))
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return n, resumed, transient(fmt.Errorf("download %s: truncated: got %d of %d bytes", a.Name, have+n, total))
	}
	got := hex.EncodeToString(h.Sum(nil))
	if got != want {
		file.Close()
		_ = os.Remove(partial)
		_ = os.Remove(metaPath)
		return n, resumed, fmt.Errorf("%w for %s: expected %s, got %s; the file was discarded", ErrChecksumMismatch, a.Name, want, got)
	}
	if err := file.Sync(); err != nil {
		return n, resumed, fmt.Errorf("download %s: sync: %w", a.Name, err)
	}
	if err := file.Close(); err != nil {
		return n, resumed, fmt.Errorf("download %s: close: %w", a.Name, err)
	}
	if err := os.Rename(partial, final); err != nil {
		return n, resumed, fmt.Errorf("download %s: place in cache: %w", a.Name, err)
	}
	_ = os.Remove(metaPath)
	syncDir(filepath.Dir(final))
	return n, resumed, nil
}

// prefix hashes the bytes a previous attempt left in file and positions it at their end. It
// empties the file when they cannot be trusted to belong to url.
func (f *Fetcher) prefix(file *os.File, h hash.Hash, meta partialMeta, url string, max int64) (int64, error) {
	st, err := file.Stat()
	if err != nil {
		return 0, err
	}
	have := st.Size()
	if have > 0 && (meta.URL != url || validator(meta) == "" || (meta.Total > 0 && have >= meta.Total) || have >= max) {
		return 0, restart(file, h)
	}
	if have == 0 {
		return 0, nil
	}
	if _, err := io.Copy(h, io.NewSectionReader(file, 0, have)); err != nil {
		return 0, err
	}
	_, err = file.Seek(have, io.SeekStart)
	return have, err
}

func restart(file *os.File, h hash.Hash) error {
	h.Reset()
	if err := file.Truncate(0); err != nil {
		return err
	}
	_, err := file.Seek(0, io.SeekStart)
	return err
}

// validator returns the If-Range value that proves the server still has the same file: a
// strong ETag, else Last-Modified.
func validator(m partialMeta) string {
	if m.ETag != "" && !strings.HasPrefix(m.ETag, "W/") {
		return m.ETag
	}
	return m.LastModified
}

func readMeta(path string) partialMeta {
	var m partialMeta
	f, err := openNoFollow(path, os.O_RDONLY, 0)
	if err != nil {
		return m
	}
	defer f.Close()
	if b, err := io.ReadAll(io.LimitReader(f, 64<<10)); err == nil {
		_ = json.Unmarshal(b, &m)
	}
	return m
}

// writeMeta replaces the metadata file by rename, so a link planted in its place is replaced,
// never written through.
func writeMeta(path string, m partialMeta) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return WriteFileAtomic(path, bytes.NewReader(b), 0o644)
}

// parseContentRange parses "bytes START-END/TOTAL" (TOTAL may be "*", returned as -1).
func parseContentRange(v string) (start, total int64, ok bool) {
	rest, found := strings.CutPrefix(v, "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, tot, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, false
	}
	s, _, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	start, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, 0, false
	}
	total = -1
	if tot != "*" {
		if total, err = strconv.ParseInt(tot, 10, 64); err != nil {
			return 0, 0, false
		}
	}
	return start, total, true
}

var errStalled = errors.New("no data received for too long (stalled transfer)")

// stallReader cancels the request when no byte arrives for timeout.
type stallReader struct {
	r     io.Reader
	timer *time.Timer
	d     time.Duration
}

func newStallReader(r io.Reader, d time.Duration, cancel context.CancelCauseFunc) io.Reader {
	if d <= 0 {
		return r
	}
	return &stallReader{r: r, d: d, timer: time.AfterFunc(d, func() { cancel(errStalled) })}
}

func (s *stallReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if n > 0 {
		s.timer.Reset(s.d)
	}
	if err != nil {
		s.timer.Stop()
	}
	return n, err
}

// Get downloads a small file (a checksum list, a signature, a manifest) of at most max bytes,
// retrying transient failures. It is not cached: callers verify what it returns.
func (f *Fetcher) Get(parent context.Context, url string, max int64) (_ []byte, err error) {
	ctx, d, cancel := f.budget(parent, max)
	defer cancel()
	var received int64
	defer func() { err = f.tooSlow(ctx, err, "get", url, received, max, d) }()
	backoff := f.Backoff
	for attempt := 0; ; attempt++ {
		b, err := f.get(ctx, url, max)
		received += int64(len(b))
		if err == nil {
			return b, nil
		}
		var t *transientError
		if !errors.As(err, &t) || attempt >= f.Retries || ctx.Err() != nil {
			return nil, f.explain(Artifact{Name: url}, err)
		}
		f.retry(url, attempt+1, backoff, err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(backoff):
		}
		backoff *= 2
	}
}

func (f *Fetcher) get(ctx context.Context, url string, max int64) ([]byte, error) {
	if err := CheckURL(url); err != nil {
		return nil, fmt.Errorf("get: %w", err)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("get %q: %w", redactURL(url), err)
	}
	req.Header.Set("User-Agent", "harmony")
	resp, err := f.client().Do(req)
	if err != nil {
		err = requestError(fmt.Sprintf("get %q", redactURL(url)), err)
		if errors.Is(err, ErrInsecureTransport) || noSuchHost(err) {
			return nil, err
		}
		return nil, transientWhy(err, errors.Unwrap(err).Error())
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return nil, transientWhy(fmt.Errorf("get %q: HTTP %s", redactURL(url), resp.Status), "HTTP "+resp.Status)
	default:
		return nil, fmt.Errorf("get %q: HTTP %s: %w", redactURL(url), resp.Status, ErrHTTPStatus)
	}
	// A server that sends its headers and then nothing (or stops half-way) is cut off, as in
	// Fetch: a small file must not hang harmony forever.
	b, err := io.ReadAll(io.LimitReader(newStallReader(resp.Body, f.StallTimeout, cancel), max+1))
	if err != nil {
		if cause := context.Cause(ctx); errors.Is(cause, errStalled) {
			err = cause
		}
		return b, transient(fmt.Errorf("get %q: %w", redactURL(url), err)) // b: what arrived, for the message
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("get %q: more than %d bytes: %w", redactURL(url), max, ErrTooLarge)
	}
	if resp.ContentLength >= 0 && int64(len(b)) != resp.ContentLength {
		return nil, transient(fmt.Errorf("get %q: truncated: got %d of %d bytes", redactURL(url), len(b), resp.ContentLength))
	}
	return b, nil
}
