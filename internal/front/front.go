// Package front accepts the local API's connections and lets a lane serve
// the plainest requests itself, reading and writing HTTP/1.1 as bytes,
// while every other request (and the rest of its connection) goes to
// net/http. The proxy's calls take the lane: net/http's server costs about
// a fifth of a proxied call's CPU time (a goroutine per request to watch
// the connection, maps and strings for every header), which decides how
// close to nginx a Go proxy gets.
package front

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenbroker/tokenbroker/internal/coarse"
	"github.com/tokenbroker/tokenbroker/internal/h1"
)

// Lane serves the requests it takes. It returns false, having read and
// written nothing, for a request net/http should serve.
type Lane func(r *Request) bool

// Request is one request the lane may take.
type Request struct {
	// Head is the request's head; its slices are valid until the lane
	// returns.
	Head h1.Head
	// W is where the lane writes the whole response.
	W *bufio.Writer
	// Close, set by the lane, closes the connection after the response
	// (when the response could not be framed for another).
	Close bool

	c        *conn
	ctx      *watchCtx
	consumed bool
	body     []byte
}

// Context ends when the caller goes away or the server's drain time is
// over. The connection is watched only from the first call to its Done
// (a call waiting in a queue), as net/http watches every request's.
func (r *Request) Context() context.Context { return r.ctx }

// Body reads the whole body (the lane takes only requests whose
// Content-Length it accepted). The slice is valid until the lane returns.
func (r *Request) Body() ([]byte, error) {
	r.consume()
	n := int(max(r.Head.ContentLength, 0))
	if cap(r.body) < n {
		r.body = make([]byte, n)
	}
	r.body = r.body[:n]
	if n > r.c.br.Buffered() {
		r.c.setDeadline(coarse.Now().Add(r.c.s.ReadTimeout))
	}
	_, err := io.ReadFull(r.c.br, r.body)
	r.Head.ContentLength = 0 // read
	return r.body, err
}

func (r *Request) consume() {
	if !r.consumed {
		r.consumed = true
		r.c.br.Discard(r.c.headLen)
	}
}

// Server serves a listener's connections, lane first.
type Server struct {
	lane Lane
	http *http.Server
	// ReadTimeout bounds reading a request's head and body; IdleTimeout
	// the wait for the next request on a kept-alive connection.
	ReadTimeout, IdleTimeout time.Duration

	ctx      context.Context
	cancel   context.CancelFunc
	ln       net.Listener
	handoff  *handoff
	draining atomic.Bool
	mu       sync.Mutex
	conns    map[*conn]struct{}
	wg       sync.WaitGroup
}

type conn struct {
	s        *Server
	nc       net.Conn
	cr       connReader
	br       *bufio.Reader
	idle     atomic.Bool
	headLen  int
	scratch  []byte
	deadline time.Time // the read deadline as last set
}

// setDeadline sets the connection's read deadline (only this goroutine and
// its watcher, never at once, set it; Shutdown sets it only to wake).
func (c *conn) setDeadline(t time.Time) {
	c.deadline = t
	c.nc.SetReadDeadline(t)
}

// connReader is what the connection's bufio.Reader reads: first the byte
// a watcher read, if any, then the connection.
type connReader struct {
	nc      net.Conn
	pending bool
	b       [1]byte
}

func (r *connReader) Read(p []byte) (int, error) {
	if r.pending && len(p) > 0 {
		r.pending = false
		p[0] = r.b[0]
		return 1, nil
	}
	return r.nc.Read(p)
}

// watchCtx is a request's context. Its first Done starts watching the
// connection: a read that ends when the caller closes it (cancelling the
// context) or sends the next request early (keeping that byte).
type watchCtx struct {
	c        *conn
	r        *Request
	mu       sync.Mutex
	done     chan struct{}
	err      error
	watching chan struct{} // closed when the watching read returned
	stop     func() bool   // stops following the server's context
	stopping atomic.Bool
	ended    bool // the request is served: never watch again
}

func (w *watchCtx) Deadline() (time.Time, bool) { return time.Time{}, false }
func (w *watchCtx) Value(key any) any           { return w.c.s.ctx.Value(key) }

func (w *watchCtx) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	return w.c.s.ctx.Err()
}

func (w *watchCtx) Done() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done != nil {
		return w.done
	}
	w.done = make(chan struct{})
	if w.ended {
		w.cancelLocked(context.Canceled) // asked after the request: it is over
		return w.done
	}
	if err := w.c.s.ctx.Err(); err != nil {
		w.cancelLocked(err)
		return w.done
	}
	w.stop = context.AfterFunc(w.c.s.ctx, func() { w.cancel(w.c.s.ctx.Err()) })
	pending := w.c.br.Buffered() // what the caller sent beyond this request's head and body
	if !w.r.consumed {
		pending -= w.c.headLen
	}
	if w.r.Head.ContentLength > 0 {
		return w.done // the body is still to be read: the connection is not ours to watch
	}
	if pending > 0 {
		return w.done // the caller already sent more: it is there
	}
	w.watching = make(chan struct{})
	w.c.setDeadline(time.Time{}) // a long wait is not an idle connection
	go func() {
		defer close(w.watching)
		cr := &w.c.cr
		n, err := cr.nc.Read(cr.b[:])
		if n == 1 {
			cr.pending = true
		}
		if err != nil && !w.stopping.Load() {
			w.cancel(context.Canceled)
		}
	}()
	return w.done
}

func (w *watchCtx) cancel(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cancelLocked(err)
}

func (w *watchCtx) cancelLocked(err error) {
	if w.err == nil {
		w.err = err
		close(w.done)
	}
}

// end stops watching, once the request is served.
func (w *watchCtx) end() {
	w.mu.Lock()
	w.ended = true
	watching, stop := w.watching, w.stop
	w.mu.Unlock()
	if stop != nil {
		stop()
	}
	if watching != nil {
		w.stopping.Store(true)
		w.c.setDeadline(time.Unix(1, 0))
		<-watching
	}
}

// New returns a server for ln: lane first, hs for every request the lane
// does not take. hs's ReadHeaderTimeout and IdleTimeout apply to the lane's
// connections too.
func New(ln net.Listener, lane Lane, hs *http.Server) *Server {
	s := &Server{lane: lane, http: hs, ln: ln, conns: map[*conn]struct{}{},
		ReadTimeout: hs.ReadHeaderTimeout, IdleTimeout: hs.IdleTimeout,
		handoff: &handoff{addr: ln.Addr(), conns: make(chan net.Conn), done: make(chan struct{})}}
	if s.ReadTimeout <= 0 {
		s.ReadTimeout = time.Minute
	}
	if s.IdleTimeout <= 0 {
		s.IdleTimeout = 2 * time.Minute
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s
}

// Serve accepts connections until the listener is closed or Shutdown is
// called; it returns http.ErrServerClosed after Shutdown.
func (s *Server) Serve() error {
	ln := s.ln
	defer coarse.Start()()
	httpDone := make(chan error, 1)
	go func() { httpDone <- s.http.Serve(s.handoff) }()
	var err error
	for pause := time.Duration(0); ; {
		var nc net.Conn
		if nc, err = ln.Accept(); err != nil {
			if errors.Is(err, net.ErrClosed) || s.draining.Load() {
				break
			}
			// Out of file descriptors and the like: wait and try again, as
			// net/http does, rather than stop serving.
			pause = min(max(2*pause, 5*time.Millisecond), time.Second)
			time.Sleep(pause)
			continue
		}
		pause = 0
		c := &conn{s: s, nc: nc}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go c.serve()
	}
	if s.draining.Load() {
		return http.ErrServerClosed
	}
	s.handoff.close()
	<-httpDone
	return err
}

// Shutdown stops accepting, closes idle connections, lets requests in
// flight finish (on both paths) until ctx ends, then closes what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	s.draining.Store(true)
	s.ln.Close()
	s.handoff.close()
	s.mu.Lock()
	for c := range s.conns {
		if c.idle.Load() {
			c.nc.SetReadDeadline(time.Unix(1, 0)) // wakes it; it sees the drain and closes
		}
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	httpErr := s.http.Shutdown(ctx)
	select {
	case <-done:
	case <-ctx.Done():
	}
	s.cancel()
	s.mu.Lock()
	for c := range s.conns {
		c.nc.Close()
	}
	s.mu.Unlock()
	if httpErr != nil {
		return httpErr
	}
	return ctx.Err()
}

func (c *conn) serve() {
	s := c.s
	handed := false
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		if !handed {
			c.nc.Close()
		}
		s.wg.Done()
	}()
	c.cr.nc = c.nc
	c.br = bufio.NewReaderSize(&c.cr, 4<<10)
	r := &Request{c: c, W: bufio.NewWriterSize(c.nc, 4<<10)}
	for {
		// The idle timeout holds to within half of it: moving a deadline
		// costs more than the rest of serving a small call.
		if now := coarse.Now(); c.deadline.Sub(now) < s.IdleTimeout/2 {
			c.setDeadline(now.Add(s.IdleTimeout))
		}
		c.idle.Store(true)
		if s.draining.Load() {
			return
		}
		if _, err := c.br.Peek(1); err != nil {
			return
		}
		c.idle.Store(false)
		var head []byte
		var err error
		b, _ := c.br.Peek(c.br.Buffered())
		if n := h1.HeadLen(b); n >= 0 {
			head = b[:n] // the usual case: it came whole
		} else {
			c.setDeadline(coarse.Now().Add(s.ReadTimeout)) // the head is still arriving
			head, err = h1.PeekHead(c.br)
		}
		if err != nil && !errors.Is(err, bufio.ErrBufferFull) && !errors.Is(err, h1.ErrLoneLF) {
			return
		}
		if err == nil {
			c.headLen = len(head)
			c.scratch = append(c.scratch[:0], head...)
			r.consumed, r.Close, r.ctx = false, false, &watchCtx{c: c, r: r}
			err = h1.ParseRequest(c.scratch, &r.Head)
		}
		if err != nil || s.lane == nil || !s.lane(r) {
			handed = s.handoff.give(&bufConn{Conn: c.nc, r: c.br})
			return
		}
		r.ctx.end()
		r.consume()
		if r.Head.ContentLength > 0 {
			if _, err := c.br.Discard(int(r.Head.ContentLength)); err != nil {
				return
			}
		}
		if r.W.Flush() != nil || r.Close || r.Head.Close {
			return
		}
		if cap(r.body) > 64<<10 {
			r.body = nil // a large body's buffer is not kept for the connection's life
		}
	}
}

// handoff is the listener net/http serves: the connections the lane gave
// up, with what was already read from them.
type handoff struct {
	addr  net.Addr
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
}

func (h *handoff) give(c net.Conn) bool {
	select {
	case h.conns <- c:
		return true
	case <-h.done:
		return false
	}
}

func (h *handoff) Accept() (net.Conn, error) {
	select {
	case c := <-h.conns:
		return c, nil
	case <-h.done:
		return nil, net.ErrClosed
	}
}

func (h *handoff) close()         { h.once.Do(func() { close(h.done) }) }
func (h *handoff) Close() error   { h.close(); return nil }
func (h *handoff) Addr() net.Addr { return h.addr }

// bufConn reads first what the front already buffered.
type bufConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufConn) Read(p []byte) (int, error) { return b.r.Read(p) }
