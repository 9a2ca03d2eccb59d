package httpx

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"os"
	"sync"
	"time"
)

// Guarding kept-alive connections against bytes a server sent beyond its
// framing.
//
// net/http's transport closes an idle HTTP/1.1 connection on which bytes
// arrive unasked ("Unsolicited response received on idle HTTP channel"),
// but it looks for them only after it has put the connection back in the
// pool: a request that takes the connection in between reads those bytes
// as its own answer. Measured here: a vendor that sends a stray answer
// after a chunked one gave it to the next caller about once in 500 runs.
//
// The guard narrows that gap without parsing anything, and closes it for
// good once a server has shown it sends such bytes:
//
//   - Settle. Under the transport's buffered reader (and under TLS), a
//     watchedConn notes when a Read is waiting on the socket: the layers
//     above it then hold no unread byte. Before a request goes out on a
//     reused connection (httptrace's GotConn, which net/http calls before it
//     counts the request as expecting an answer), the guard waits until that
//     is so. Either the reader reaches the socket with nothing buffered, or
//     it finds the stray bytes first, takes them for an unsolicited answer
//     and closes the connection; the request then goes on a new connection
//     (one with a body only if it has GetBody: nothing of it was written).
//   - Detect. Bytes that arrive on a connection net/http has put back in
//     its pool, or a connection closed under a settling request, are stray:
//     the transport's owner is told (onStray), and tokenbroker then stops
//     reusing that profile's connections at all.
//
// What no client can do is tie an HTTP/1.1 answer to its request: stray
// bytes still on the wire when the next request is written (a large
// answer, or a second write) are read as its answer. That can happen
// before the first detection, to a caller of the same profile only (each
// profile has its own connections); after it, never. HTTP/2 frames every
// answer in its stream and needs no guard.

// reuseWait bounds how long a request waits for a reused connection's
// reader; past it the connection is closed rather than trusted.
const reuseWait = 2 * time.Second

// watchedConn is a dialed connection whose reads are watched. A plain one
// carries HTTP itself (plain http, or the plaintext side of a TLS
// connection tokenbroker dialed); one under net/http's own TLS (through an
// HTTP proxy) only settles, as its raw bytes include TLS's own records.
type watchedConn struct {
	net.Conn
	w     watch
	plain bool

	mu      sync.Mutex
	waiting bool          // a Read is blocked on the socket with nothing buffered above
	closed  bool          // Close was called
	ready   chan struct{} // closed when waiting or closed becomes true
	uses    int           // requests the connection was handed to
	idle    bool          // back in net/http's pool since its last use
	lastEOF bool          // the last Read ended the stream (the server closed)
	lastAt  time.Time     // when the last Read returned data
	strayed bool          // onStray was called
	gaveUp  bool          // closed by the guard itself
}

func newWatchedConn(c net.Conn, w watch, plain bool) *watchedConn {
	return &watchedConn{Conn: c, w: w, plain: plain, ready: make(chan struct{})}
}

// watch is what a transport's connections report to and ask of it.
type watch struct {
	onStray func()               // told of stray bytes (may be nil)
	idleFor func() time.Duration // the transport's IdleConnTimeout
}

// Read takes the lock once before the read and once after it: it is on
// every answer's path.
func (c *watchedConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	c.setLocked(true)
	c.mu.Unlock()
	n, err := c.Conn.Read(p)
	c.mu.Lock()
	if n > 0 && err == nil {
		c.setLocked(false)
	}
	c.lastEOF = n == 0 && err != nil
	if n > 0 {
		c.lastAt = time.Now()
	}
	stray := n > 0 && c.idle && c.plain // bytes on a connection back in the pool
	c.mu.Unlock()
	if stray {
		c.stray()
	}
	return n, err
}

// setLocked records whether a Read is waiting on the socket; c.mu is held.
func (c *watchedConn) setLocked(waiting bool) {
	if c.waiting == waiting || c.closed {
		return
	}
	c.waiting = waiting
	if waiting {
		close(c.ready)
	} else {
		c.ready = make(chan struct{})
	}
}

// Close closes the connection. net/http closing an idle connection whose
// reader is not waiting on the socket and did not see the server close,
// soon after the last bytes came, means it found stray bytes in its buffer.
// (CloseIdleConnections finds the reader waiting; so does the idle timeout,
// long after the last bytes, even if the reader was slow to get there.)
func (c *watchedConn) Close() error {
	c.mu.Lock()
	stray := false
	if !c.closed {
		c.closed = true
		stray = c.plain && c.idle && !c.waiting && !c.lastEOF && !c.gaveUp && time.Since(c.lastAt) < c.w.idleFor()/2
		if !c.waiting {
			close(c.ready)
		}
	}
	c.mu.Unlock()
	if stray {
		c.stray()
	}
	return c.Conn.Close()
}

// stray tells the owner, once, that the server sent bytes nobody asked for.
func (c *watchedConn) stray() {
	c.mu.Lock()
	first := !c.strayed
	c.strayed = true
	c.mu.Unlock()
	if first && c.w.onStray != nil {
		// On its own goroutine: net/http calls Close holding its locks,
		// and the owner may call back into the transport.
		go c.w.onStray()
	}
}

// take is GotConn: a reused connection settles first. It returns the use's
// number, for putBack.
func (c *watchedConn) take(reused bool) int {
	if reused {
		c.mu.Lock()
		ready := c.ready
		settled := c.waiting || c.closed
		c.mu.Unlock()
		if !settled {
			t := time.NewTimer(reuseWait)
			select {
			case <-ready:
			case <-t.C:
				c.mu.Lock()
				c.gaveUp = true
				c.mu.Unlock()
				c.Close()
			}
			t.Stop()
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.idle = false
	c.uses++
	return c.uses
}

// putBack is PutIdleConn for use n: the connection is idle unless another
// request has taken it meanwhile.
func (c *watchedConn) putBack(n int) {
	c.mu.Lock()
	if c.uses == n {
		c.idle = true
	}
	c.mu.Unlock()
}

// watched finds the watchedConn under a connection net/http reports,
// through any TLS layers (a TLS proxy, then the server).
func watched(c net.Conn) *watchedConn {
	for {
		tc, ok := c.(*tls.Conn)
		if !ok {
			break
		}
		if tc.ConnectionState().NegotiatedProtocol == "h2" {
			return nil
		}
		c = tc.NetConn()
	}
	w, _ := c.(*watchedConn)
	return w
}

type dialFunc = func(ctx context.Context, network, addr string) (net.Conn, error)

// guardedDial wraps dial so that every connection is watched. A connection
// to an HTTP proxy may carry TLS that net/http adds, so only one to the
// server itself is plain.
func guardedDial(dial dialFunc, w watch, viaProxy func(addr string) bool) dialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return newWatchedConn(c, w, !viaProxy(addr)), nil
	}
}

// guardedDialTLS dials TLS itself, so that an HTTP/1.1 connection is
// watched on its plaintext side: there a byte is HTTP, not one of TLS's
// own records (a session ticket, a close_notify). An HTTP/2 connection is
// returned as the *tls.Conn net/http needs to speak HTTP/2 on it.
func guardedDialTLS(dial dialFunc, base *tls.Config, w watch) dialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		raw, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		cfg := base.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName, _, _ = net.SplitHostPort(addr)
		}
		cfg.NextProtos = []string{"h2", "http/1.1"}
		tc := tls.Client(raw, cfg)
		hctx, cancel := context.WithTimeout(ctx, tlsHandshakeMax)
		defer cancel()
		if err := tc.HandshakeContext(hctx); err != nil {
			raw.Close()
			return nil, err
		}
		if tc.ConnectionState().NegotiatedProtocol == "h2" {
			return tc, nil
		}
		return newWatchedConn(tc, w, true), nil
	}
}

// guarded is a RoundTripper over a transport whose connections are
// watched.
type guarded struct{ base *http.Transport }

func (g guarded) RoundTrip(req *http.Request) (*http.Response, error) {
	var conn *watchedConn
	var use int
	trace := &httptrace.ClientTrace{
		GotConn: func(info httptrace.GotConnInfo) {
			if conn = watched(info.Conn); conn != nil {
				use = conn.take(info.Reused)
			}
		},
		PutIdleConn: func(err error) {
			if err == nil && conn != nil {
				conn.putBack(use)
			}
		},
	}
	return g.base.RoundTrip(req.WithContext(httptrace.WithClientTrace(req.Context(), trace)))
}

// NewTransport is the one net/http transport configuration of tokenbroker's
// outbound calls: TLS verification on (TLS 1.2 at least), bounded dial,
// handshake and header waits, HTTP/2 where the server offers it, an HTTP
// proxy from the environment, kept-alive connections guarded against a
// server's stray bytes. It returns the transport (to close its idle
// connections) and the RoundTripper to send through.
//
// onStray (may be nil) is told, once per connection, that the server sent
// bytes beyond its answers: its connections should no longer be reused.
func NewTransport(headerTimeout time.Duration, idlePerHost int, onStray func()) (*http.Transport, http.RoundTripper) {
	dial := (&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12}
	tr := &http.Transport{
		Proxy:                  http.ProxyFromEnvironment,
		TLSClientConfig:        tlsConfig, // for TLS through an HTTP proxy
		ForceAttemptHTTP2:      true,
		TLSHandshakeTimeout:    tlsHandshakeMax,
		ResponseHeaderTimeout:  headerTimeout,
		ExpectContinueTimeout:  time.Second,
		IdleConnTimeout:        90 * time.Second,
		MaxIdleConns:           2 * idlePerHost,
		MaxIdleConnsPerHost:    idlePerHost,
		MaxResponseHeaderBytes: MaxHead,
		// A proxy passes the caller's Accept-Encoding on and the vendor's
		// encoding back, rather than decoding answers in between.
		DisableCompression: true,
	}
	w := watch{onStray: onStray, idleFor: func() time.Duration { return tr.IdleConnTimeout }}
	tr.DialContext = guardedDial(dial, w, proxyAddr)
	// (guardedDialTLS dials with tr.TLSClientConfig itself: a client
	// certificate set there afterwards is presented.)
	tr.DialTLSContext = guardedDialTLS(dial, tlsConfig, w)
	return tr, guarded{tr}
}

// proxyAddr reports whether addr is an HTTP proxy's, as the environment
// names them (net/http dials the proxy, not the server, then).
func proxyAddr(addr string) bool {
	for _, v := range []string{"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"} {
		if p := os.Getenv(v); p != "" {
			if u, err := url.Parse(p); err == nil && u.Host != "" && canonicalAddr(u) == addr {
				return true
			}
		}
	}
	return false
}

func canonicalAddr(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	port := "80"
	if u.Scheme == "https" {
		port = "443"
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// MaxHead caps a response's head.
const MaxHead = 1 << 20
