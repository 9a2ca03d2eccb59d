// Package h1 is a small synchronous HTTP/1.1 client for the proxy's upstream
// hop: each exchange runs on the caller's goroutine over a pooled keep-alive
// connection, instead of being handed between the read and write goroutines
// that net/http.Transport keeps per connection. It speaks only HTTP/1.1
// (with TLS when the URL is https), which every vendor API accepts.
package h1

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tokenbroker/tokenbroker/internal/coarse"
)

// Client is an http.RoundTripper. Its zero value is not usable: use New.
type Client struct {
	dialer        net.Dialer
	tls           *tls.Config
	maxIdle       int
	headerTimeout time.Duration
	idleFor       time.Duration
	mu            sync.Mutex
	origins       map[string]*Origin
	dial          func(ctx context.Context, network, addr string) (net.Conn, error)
}

// SetDial replaces how the client dials, for tests and benchmarks that
// serve the upstream in memory; nil puts the real dialer back. Set it
// while no exchange is under way.
func (c *Client) SetDial(dial func(ctx context.Context, network, addr string) (net.Conn, error)) {
	if dial == nil {
		dial = c.dialer.DialContext
	}
	c.dial = dial
}

// New returns a client keeping up to maxIdle idle connections per host,
// waiting at most headerTimeout for a response's headers.
func New(tlsConfig *tls.Config, maxIdle int, headerTimeout time.Duration) *Client {
	c := &Client{dialer: net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}, tls: tlsConfig,
		maxIdle: maxIdle, headerTimeout: headerTimeout, idleFor: 90 * time.Second, origins: map[string]*Origin{}}
	c.dial = c.dialer.DialContext
	return c
}

// MaxHeadBytes is the largest response head either upstream path reads, as
// net/http's server caps a request's head: a vendor cannot make a call
// hold unbounded memory with endless header lines.
const MaxHeadBytes = 1 << 20

// ErrHeadTooLarge is the answer to a response head over MaxHeadBytes.
var ErrHeadTooLarge = fmt.Errorf("h1: the response head is larger than %d bytes", MaxHeadBytes)

type conn struct {
	net.Conn
	capped   capReader // what br reads: the connection, capped while a head is read
	br       *bufio.Reader
	bw       *bufio.Writer
	o        *Origin
	used     time.Time
	deadline time.Time // as last set; zero: none
}

// RoundTrip implements http.RoundTripper.
func (c *Client) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		return nil, errors.New("h1: unsupported scheme " + req.URL.Scheme)
	}
	ctx := req.Context()
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	for attempt := 0; ; attempt++ {
		pc, reused, err := c.get(ctx, c.Origin(req.URL.Scheme, req.URL.Host))
		if err != nil {
			return nil, err
		}
		resp, err := c.exchange(ctx, pc, req)
		if err == nil {
			return resp, nil
		}
		pc.Close()
		// A kept-alive connection the server closed meanwhile: try a new one.
		if !reused || attempt > 0 || !replayable || ctx.Err() != nil || !Stale(err) {
			return nil, err
		}
		if req.GetBody != nil {
			if req.Body, err = req.GetBody(); err != nil {
				return nil, err
			}
		}
	}
}

func (c *Client) exchange(ctx context.Context, pc *conn, req *http.Request) (*http.Response, error) {
	// A connection comes from the pool with whatever deadline its last
	// exchange left: this one's bounds writing and the response's head.
	if c.headerTimeout > 0 {
		pc.deadline = coarse.Now().Add(c.headerTimeout)
		pc.SetDeadline(pc.deadline)
	} else {
		pc.unbound()
	}
	stop := context.AfterFunc(ctx, func() { pc.SetDeadline(time.Unix(1, 0)) })
	if err := req.Write(pc.bw); err != nil {
		stop()
		return nil, err
	}
	if err := pc.bw.Flush(); err != nil {
		stop()
		return nil, err
	}
	// The server's closing of an idle connection shows as nothing at all
	// (io.EOF, not the unexpected EOF that ReadResponse makes of it).
	if _, err := pc.br.Peek(1); err != nil {
		stop()
		return nil, err
	}
	pc.capped.left = MaxHeadBytes - int64(pc.br.Buffered())
	resp, err := http.ReadResponse(pc.br, req)
	pc.capped.left = uncapped
	if err != nil {
		stop()
		return nil, err
	}
	pc.unbound()
	resp.Body = &body{ReadCloser: resp.Body, c: c, pc: pc, stop: stop, keep: !resp.Close && !req.Close}
	return resp, nil
}

// Origin is where connections go, scheme://host[:port], with its pool of
// idle connections.
type Origin struct {
	c            *Client
	scheme, host string
	mu           sync.Mutex
	idle         []*conn
}

// Origin returns the client's origin for scheme://host.
func (c *Client) Origin(scheme, host string) *Origin {
	key := scheme + "://" + host
	c.mu.Lock()
	defer c.mu.Unlock()
	o := c.origins[key]
	if o == nil {
		o = &Origin{c: c, scheme: scheme, host: host}
		c.origins[key] = o
	}
	return o
}

// get returns an idle connection to the origin, or dials one.
func (c *Client) get(ctx context.Context, o *Origin) (*conn, bool, error) {
	scheme, host := o.scheme, o.host
	o.mu.Lock()
	for len(o.idle) > 0 {
		pc := o.idle[len(o.idle)-1]
		o.idle = o.idle[:len(o.idle)-1]
		if coarse.Now().Sub(pc.used) < c.idleFor {
			o.mu.Unlock()
			return pc, true, nil
		}
		pc.Close()
	}
	o.mu.Unlock()
	addr := host
	if _, _, err := net.SplitHostPort(host); err != nil {
		if scheme == "https" {
			addr = net.JoinHostPort(strings.Trim(host, "[]"), "443")
		} else {
			addr = net.JoinHostPort(strings.Trim(host, "[]"), "80")
		}
	}
	nc, err := c.dial(ctx, "tcp", addr)
	if err != nil {
		return nil, false, err
	}
	if scheme == "https" {
		cfg := c.tls.Clone()
		name := host
		if h, _, err := net.SplitHostPort(host); err == nil {
			name = h
		}
		cfg.ServerName = strings.Trim(name, "[]")
		cfg.NextProtos = []string{"http/1.1"}
		tc := tls.Client(nc, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, false, err
		}
		nc = tc
	}
	pc := &conn{Conn: nc, capped: capReader{r: nc, left: uncapped}, bw: bufio.NewWriterSize(nc, 8<<10), o: o}
	pc.br = bufio.NewReaderSize(&pc.capped, 16<<10)
	return pc, false, nil
}

// capReader reads from r until left runs out, then fails with
// ErrHeadTooLarge; left is uncapped but while a head is read.
type capReader struct {
	r    io.Reader
	left int64
}

const uncapped = math.MaxInt64

func (c *capReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, ErrHeadTooLarge
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.r.Read(p)
	if c.left != uncapped {
		c.left -= int64(n)
	}
	return n, err
}

// Stale reports whether an exchange on a reused connection failed because
// the server had closed it meanwhile (nothing of a response came back), so
// that the call may be sent again on a new one. A timeout, a partial or
// oversized response are not stale: the server may have acted on the call.
func Stale(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// ReadHead consumes a response head too large for R's buffer (PeekHead's
// bufio.ErrBufferFull), up to MaxHeadBytes, and returns it in a new slice.
func (cn Conn) ReadHead() ([]byte, error) {
	pc := cn.pc
	pc.capped.left = MaxHeadBytes - int64(pc.br.Buffered())
	defer func() { pc.capped.left = uncapped }()
	var head []byte
	for start := 0; ; {
		piece, err := pc.br.ReadSlice('\n')
		if len(head)+len(piece) > MaxHeadBytes {
			return nil, ErrHeadTooLarge
		}
		head = append(head, piece...)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue // a line longer than the buffer
		}
		if err != nil {
			return nil, err
		}
		if line := head[start:]; len(line) <= 2 && (string(line) == "\r\n" || string(line) == "\n") {
			return head, nil
		}
		start = len(head)
	}
}

// Conn is a pooled connection for callers that write and read messages
// themselves: write a request to W, read the response from R.
type Conn struct {
	pc *conn
	R  *bufio.Reader
	W  *bufio.Writer
}

// Acquire returns an idle connection to the origin, or dials one; reused
// reports an idle one (which the server may have closed meanwhile).
func (c *Client) Acquire(ctx context.Context, o *Origin) (cn Conn, reused bool, err error) {
	pc, reused, err := c.get(ctx, o)
	if err != nil {
		return Conn{}, false, err
	}
	return Conn{pc: pc, R: pc.br, W: pc.bw}, reused, nil
}

// Release returns a connection to the pool when its last exchange was
// read whole and may be followed by another, and closes it otherwise.
func (c *Client) Release(cn Conn, reusable bool) {
	if reusable {
		c.put(cn.pc)
	} else {
		cn.pc.Close()
	}
}

// Bound bounds the connection's reads and writes to between d/2 and d
// from now: the deadline is moved only once half of it is used, as moving
// it costs more than the rest of a small exchange.
func (cn Conn) Bound(now time.Time, d time.Duration) { cn.pc.bound(now, d) }

// Unbound lifts the deadline, for a body that may take its time.
func (cn Conn) Unbound() { cn.pc.unbound() }

func (pc *conn) bound(now time.Time, d time.Duration) {
	if pc.deadline.IsZero() || pc.deadline.Sub(now) < d/2 {
		pc.deadline = now.Add(d)
		pc.SetDeadline(pc.deadline)
	}
}

func (pc *conn) unbound() {
	if !pc.deadline.IsZero() {
		pc.deadline = time.Time{}
		pc.SetDeadline(pc.deadline)
	}
}

// put keeps a connection whose last response was read to the end.
func (c *Client) put(pc *conn) {
	pc.used = coarse.Now()
	o := pc.o
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.idle) >= c.maxIdle {
		pc.Close()
		return
	}
	o.idle = append(o.idle, pc)
}

// CloseIdleConnections closes every idle connection.
func (c *Client) CloseIdleConnections() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, o := range c.origins {
		o.mu.Lock()
		for _, pc := range o.idle {
			pc.Close()
		}
		o.idle = nil
		o.mu.Unlock()
	}
}

// body returns the connection to the pool once the response is read whole,
// and closes it otherwise.
type body struct {
	io.ReadCloser
	c    *Client
	pc   *conn
	stop func() bool
	keep bool
	done bool
}

func (b *body) Read(p []byte) (int, error) {
	if b.done {
		return 0, io.EOF
	}
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.finish(true)
	} else if err != nil {
		b.finish(false)
	}
	return n, err
}

func (b *body) Close() error {
	if !b.done {
		b.finish(false) // not read to the end: the connection cannot carry another exchange
	}
	return nil
}

func (b *body) finish(whole bool) {
	b.done = true
	// A cancelled context may have poisoned the connection's deadline.
	if stopped := b.stop(); whole && b.keep && stopped {
		b.c.put(b.pc)
		return
	}
	b.pc.Close()
}
