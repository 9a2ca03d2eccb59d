package tokenbroker

import (
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/tokenbroker/tokenbroker/internal/httpx"
)

// apiHeaderTimeout bounds the wait for a vendor API's response headers.
const apiHeaderTimeout = 60 * time.Second

// apiIdleTimeout is how long an idle vendor connection is kept; a pool
// unused for twice as long is dropped whole.
const apiIdleTimeout = 90 * time.Second

// conns holds one net/http connection pool per profile, made on first use.
// A connection is never shared between two profiles, so no caller can ever
// read an answer on a connection that carried another credential, whatever
// a vendor sends beyond its framing. Pools whose connections have all gone
// idle and closed are dropped, so that thousands of mostly idle profiles do
// not keep thousands of transports.
type conns struct {
	mu    sync.Mutex // guards pools and swept
	pools map[string]*pool
	swept time.Time
}

type pool struct {
	rt   http.RoundTripper // httpx.Transport over tr: caps and checks
	tr   *http.Transport
	used time.Time
}

// newAPITransport is the one configuration of a vendor connection pool:
// net/http's transport (HTTP/2 where the vendor offers it, an HTTP proxy
// from the environment), TLS verification on, bounded waits, capped
// answers, plain http only to loopback.
func newAPITransport() (*http.Transport, http.RoundTripper) {
	tr := &http.Transport{
		Proxy:                  http.ProxyFromEnvironment,
		DialContext:            (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:    10 * time.Second,
		ResponseHeaderTimeout:  apiHeaderTimeout,
		ExpectContinueTimeout:  time.Second,
		IdleConnTimeout:        apiIdleTimeout,
		MaxIdleConns:           512,
		MaxIdleConnsPerHost:    256,
		MaxResponseHeaderBytes: maxAPIHead,
		ForceAttemptHTTP2:      true,
	}
	return tr, &httpx.Transport{Base: tr, MaxBody: maxAPIBody}
}

// maxAPIHead caps a vendor API answer's head.
const maxAPIHead = 1 << 20

// get returns the profile's pool, making it on first use.
func (c *conns) get(profile string, now time.Time) http.RoundTripper {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pools == nil {
		c.pools = map[string]*pool{}
	}
	if now.Sub(c.swept) > apiIdleTimeout {
		c.sweep(now)
	}
	p := c.pools[profile]
	if p == nil {
		p = &pool{}
		p.tr, p.rt = newAPITransport()
		c.pools[profile] = p
	}
	p.used = now
	return p.rt
}

// sweep drops pools unused for twice the idle timeout: net/http has closed
// their idle connections by then.
func (c *conns) sweep(now time.Time) {
	c.swept = now
	for name, p := range c.pools {
		if now.Sub(p.used) > 2*apiIdleTimeout {
			p.tr.CloseIdleConnections()
			delete(c.pools, name)
		}
	}
}

// open reports how many pools are held, for tests.
func (c *conns) open() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.pools)
}

// close closes every idle connection of every pool.
func (c *conns) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, p := range c.pools {
		p.tr.CloseIdleConnections()
		delete(c.pools, name)
	}
}
