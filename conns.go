package tokenbroker

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
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
// a vendor sends beyond its framing; and once a vendor has sent such
// bytes, the profile's connections are not reused at all. Pools whose connections have all gone
// idle and closed are dropped, so that thousands of mostly idle profiles do
// not keep thousands of transports.
type conns struct {
	warn func(string) // told when a vendor sends stray bytes
	// cert is a profile's client certificate, nil for none (mutual TLS):
	// the pool is the profile's own, so it is never presented for another.
	cert  func(profile string) *tls.Certificate
	mu    sync.Mutex // guards pools and swept
	pools map[string]*pool
	swept time.Time
}

type pool struct {
	rt   http.RoundTripper // httpx.Transport over tr: caps and checks
	tr   *http.Transport
	once http.RoundTripper // the same for requests with a body, over onceTr
	// onceTr never keeps a connection that carried a request body: a
	// vendor may answer before reading a body and then read the body as
	// the next request on the connection (Python's http.server does), and
	// its answer to that would reach whoever sends next. Closing it on our
	// side, rather than asking with "Connection: close", still lets the
	// vendor drain the body and answer in full.
	onceTr *http.Transport
	used   time.Time
	// sloppy is set once the vendor sent bytes beyond its answers: from
	// then on no connection of the profile is reused (see httpx's guard).
	sloppy atomic.Bool
}

// transport is the pool's RoundTripper for req.
func (p *pool) transport(req *http.Request) http.RoundTripper {
	if p.sloppy.Load() || (req.Body != nil && req.Body != http.NoBody) {
		return p.once
	}
	return p.rt
}

// strayed stops reusing the profile's connections.
func (p *pool) strayed(profile string, warn func(string)) {
	if p.sloppy.Swap(true) {
		return
	}
	p.tr.CloseIdleConnections()
	if warn != nil {
		warn(fmt.Sprintf("profile %q: the vendor sent bytes beyond its answers on a kept-alive connection; its connections are no longer reused (each call opens its own)", profile))
	}
}

// newAPITransport is a vendor connection pool: httpx's one transport
// configuration, with answers capped and plain http only to loopback.
func newAPITransport(onStray func()) (*http.Transport, http.RoundTripper) {
	tr, guarded := httpx.NewTransport(apiHeaderTimeout, 256, onStray)
	tr.IdleConnTimeout = apiIdleTimeout
	return tr, &httpx.Transport{Base: guarded, MaxBody: maxAPIBody}
}

// get returns the profile's pool, making it on first use.
func (c *conns) get(profile string, now time.Time) *pool {
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
		onStray := func() { p.strayed(profile, c.warn) }
		p.tr, p.rt = newAPITransport(onStray)
		p.onceTr, p.once = newAPITransport(onStray)
		p.onceTr.MaxIdleConnsPerHost = -1 // net/http: keep no idle connection, say nothing
		if c.cert != nil {
			if cert := c.cert(profile); cert != nil {
				p.tr.TLSClientConfig.Certificates = []tls.Certificate{*cert}
				p.onceTr.TLSClientConfig.Certificates = []tls.Certificate{*cert}
			}
		}
		c.pools[profile] = p
	}
	p.used = now
	return p
}

// sweep drops pools unused for twice the idle timeout: net/http has closed
// their idle connections by then.
func (c *conns) sweep(now time.Time) {
	c.swept = now
	for name, p := range c.pools {
		if now.Sub(p.used) > 2*apiIdleTimeout {
			p.close()
			delete(c.pools, name)
		}
	}
}

func (p *pool) close() {
	p.tr.CloseIdleConnections()
	p.onceTr.CloseIdleConnections()
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
		p.close()
		delete(c.pools, name)
	}
}
