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
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// Client is an http.RoundTripper. Its zero value is not usable: use New.
type Client struct {
	dialer        net.Dialer
	tls           *tls.Config
	maxIdle       int
	headerTimeout time.Duration
	idleFor       time.Duration
	mu            sync.Mutex
	idle          map[string][]*conn
}

// New returns a client keeping up to maxIdle idle connections per host,
// waiting at most headerTimeout for a response's headers.
func New(tlsConfig *tls.Config, maxIdle int, headerTimeout time.Duration) *Client {
	return &Client{dialer: net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}, tls: tlsConfig,
		maxIdle: maxIdle, headerTimeout: headerTimeout, idleFor: 90 * time.Second, idle: map[string][]*conn{}}
}

type conn struct {
	net.Conn
	br   *bufio.Reader
	bw   *bufio.Writer
	key  string
	used time.Time
}

// RoundTrip implements http.RoundTripper.
func (c *Client) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
		return nil, errors.New("h1: unsupported scheme " + req.URL.Scheme)
	}
	ctx := req.Context()
	key := req.URL.Scheme + "://" + req.URL.Host
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	for attempt := 0; ; attempt++ {
		pc, reused, err := c.get(ctx, key, req)
		if err != nil {
			return nil, err
		}
		resp, err := c.exchange(ctx, pc, req)
		if err == nil {
			return resp, nil
		}
		pc.Close()
		// A kept-alive connection the server closed meanwhile: try a new one.
		if !reused || attempt > 0 || !replayable || ctx.Err() != nil {
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
	stop := context.AfterFunc(ctx, func() { pc.SetDeadline(time.Unix(1, 0)) })
	if err := req.Write(pc.bw); err != nil {
		stop()
		return nil, err
	}
	if err := pc.bw.Flush(); err != nil {
		stop()
		return nil, err
	}
	if c.headerTimeout > 0 {
		pc.SetReadDeadline(time.Now().Add(c.headerTimeout))
	}
	resp, err := http.ReadResponse(pc.br, req)
	if err != nil {
		stop()
		return nil, err
	}
	pc.SetReadDeadline(time.Time{})
	resp.Body = &body{ReadCloser: resp.Body, c: c, pc: pc, stop: stop, keep: !resp.Close && !req.Close}
	return resp, nil
}

// get returns an idle connection to key, or dials one.
func (c *Client) get(ctx context.Context, key string, req *http.Request) (*conn, bool, error) {
	c.mu.Lock()
	for list := c.idle[key]; len(list) > 0; list = c.idle[key] {
		pc := list[len(list)-1]
		c.idle[key] = list[:len(list)-1]
		if time.Since(pc.used) < c.idleFor {
			c.mu.Unlock()
			return pc, true, nil
		}
		pc.Close()
	}
	c.mu.Unlock()
	addr := req.URL.Host
	if req.URL.Port() == "" {
		if req.URL.Scheme == "https" {
			addr += ":443"
		} else {
			addr += ":80"
		}
	}
	nc, err := c.dialer.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, false, err
	}
	if req.URL.Scheme == "https" {
		cfg := c.tls.Clone()
		cfg.ServerName = req.URL.Hostname()
		cfg.NextProtos = []string{"http/1.1"}
		tc := tls.Client(nc, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			nc.Close()
			return nil, false, err
		}
		nc = tc
	}
	return &conn{Conn: nc, br: bufio.NewReaderSize(nc, 16<<10), bw: bufio.NewWriterSize(nc, 8<<10), key: key}, false, nil
}

// put keeps a connection whose last response was read to the end.
func (c *Client) put(pc *conn) {
	pc.used = time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.idle[pc.key]) >= c.maxIdle {
		pc.Close()
		return
	}
	c.idle[pc.key] = append(c.idle[pc.key], pc)
}

// CloseIdleConnections closes every idle connection.
func (c *Client) CloseIdleConnections() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, list := range c.idle {
		for _, pc := range list {
			pc.Close()
		}
		delete(c.idle, k)
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
