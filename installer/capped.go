package installer

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// CappedTransport is an HTTP transport for code that downloads through a library harmony does
// not control (Helm's chart getters): every connection fails once it has read more than max
// bytes, and connections are never reused, so each response is bounded by max. Proxies come
// from the environment and connects, TLS handshakes and response headers have timeouts, as
// NewHTTPClient's.
func CappedTransport(max int64) *http.Transport {
	dialer := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dialer.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return &cappedConn{Conn: c, left: max, max: max}, nil
		},
		TLSHandshakeTimeout:   15 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		DisableKeepAlives:     true,
		ForceAttemptHTTP2:     false,
	}
}

// cappedConn fails reads once more than max bytes came in.
type cappedConn struct {
	net.Conn
	mu   sync.Mutex
	left int64
	max  int64
}

func (c *cappedConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	left := c.left
	c.mu.Unlock()
	if left <= 0 {
		return 0, fmt.Errorf("a response over %d MiB: %w", c.max>>20, ErrTooLarge)
	}
	if int64(len(p)) > left {
		p = p[:left+1] // one byte more than allowed tells "too large" from "exactly max"
	}
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	c.left -= int64(n)
	c.mu.Unlock()
	return n, err
}
