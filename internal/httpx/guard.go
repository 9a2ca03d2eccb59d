package httpx

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptrace"
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
// The guard closes that gap without parsing anything. Under the transport's
// buffered reader (and under TLS), a watchedConn notes when a Read is
// waiting on the socket: the layers above it then hold no unread byte.
// Before a request goes out on a reused connection (httptrace's GotConn,
// which net/http calls before it counts the request as expecting an
// answer), the guard waits until that is so. Either the transport's reader
// reaches the socket with nothing buffered, and the connection is clean, or
// it finds the stray bytes first, takes them for an unsolicited answer and
// closes the connection; the request then goes on a new connection (one
// with a body only if it has GetBody: nothing of it was written).
// HTTP/2 frames every answer in its stream and needs no guard.

// reuseWait bounds how long a request waits for a reused connection's
// reader; past it the connection is closed rather than trusted.
const reuseWait = 2 * time.Second

// watchedConn is a dialed connection whose reads are watched.
type watchedConn struct {
	net.Conn
	mu      sync.Mutex
	waiting bool          // a Read is blocked on the socket with nothing buffered above
	closed  bool          // Close was called
	ready   chan struct{} // closed when waiting or closed becomes true
}

func newWatchedConn(c net.Conn) *watchedConn {
	return &watchedConn{Conn: c, ready: make(chan struct{})}
}

func (c *watchedConn) Read(p []byte) (int, error) {
	c.set(true)
	n, err := c.Conn.Read(p)
	if n > 0 && err == nil {
		c.set(false)
	}
	return n, err
}

// set records whether a Read is waiting on the socket.
func (c *watchedConn) set(waiting bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
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

func (c *watchedConn) Close() error {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		if !c.waiting {
			close(c.ready)
		}
	}
	c.mu.Unlock()
	return c.Conn.Close()
}

// settle waits until the connection's reader holds nothing unread (or the
// connection is closed). It closes a connection that does not settle.
func (c *watchedConn) settle() {
	c.mu.Lock()
	ready := c.ready
	c.mu.Unlock()
	t := time.NewTimer(reuseWait)
	defer t.Stop()
	select {
	case <-ready:
	case <-t.C:
		c.Close()
	}
}

// watched finds the watchedConn under a connection net/http reports.
func watched(c net.Conn) *watchedConn {
	if tc, ok := c.(*tls.Conn); ok {
		if tc.ConnectionState().NegotiatedProtocol == "h2" {
			return nil
		}
		c = tc.NetConn()
	}
	w, _ := c.(*watchedConn)
	return w
}

// guardTrace is shared by every request: it keeps no state of its own.
var guardTrace = &httptrace.ClientTrace{
	GotConn: func(info httptrace.GotConnInfo) {
		if !info.Reused {
			return
		}
		if w := watched(info.Conn); w != nil {
			w.settle()
		}
	},
}

// guardedDial wraps dial so that every connection is watched.
func guardedDial(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return newWatchedConn(c), nil
	}
}

// guarded is a RoundTripper over a transport whose connections are
// watched: each request waits for a reused connection to settle.
type guarded struct{ base *http.Transport }

func (g guarded) RoundTrip(req *http.Request) (*http.Response, error) {
	return g.base.RoundTrip(req.WithContext(httptrace.WithClientTrace(req.Context(), guardTrace)))
}

// NewTransport is the one net/http transport configuration of tokenbroker's
// outbound calls: TLS verification on (TLS 1.2 at least), bounded dial,
// handshake and header waits, HTTP/2 where the server offers it, an HTTP
// proxy from the environment, kept-alive connections guarded against a
// server's stray bytes. It returns the transport (to close its idle
// connections) and the RoundTripper to send through.
func NewTransport(headerTimeout time.Duration, idlePerHost int) (*http.Transport, http.RoundTripper) {
	tr := &http.Transport{
		Proxy:                  http.ProxyFromEnvironment,
		DialContext:            guardedDial((&net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}).DialContext),
		TLSClientConfig:        &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:    tlsHandshakeMax,
		ResponseHeaderTimeout:  headerTimeout,
		ExpectContinueTimeout:  time.Second,
		IdleConnTimeout:        90 * time.Second,
		MaxIdleConns:           2 * idlePerHost,
		MaxIdleConnsPerHost:    idlePerHost,
		MaxResponseHeaderBytes: MaxHead,
		ForceAttemptHTTP2:      true,
		// A proxy passes the caller's Accept-Encoding on and the vendor's
		// encoding back, rather than decoding answers in between.
		DisableCompression: true,
	}
	return tr, guarded{tr}
}

// MaxHead caps a response's head.
const MaxHead = 1 << 20
