package server

import (
	"log"
	"net"
	"net/http"
	"sync"
)

// HTTPServer is the one http.Server of `serve`, with the limits of the
// config's `serve:` block (as the server was made: a reload does not
// change them), and ln wrapped so that no more than MaxConnections callers
// hold a connection at once. errLog receives net/http's own complaints
// (nil: the standard logger).
func (s *Server) HTTPServer(ln net.Listener, errLog *log.Logger) (*http.Server, net.Listener) {
	lim := s.limits
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: lim.ReadHeaderTimeout,
		IdleTimeout:       lim.IdleTimeout,
		WriteTimeout:      lim.WriteTimeout,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          errLog,
	}
	return hs, LimitListener(ln, lim.MaxConnections, s.metrics.connRefused)
}

// LimitListener accepts at most max connections open at once. A connection
// beyond that is closed as soon as it is accepted, and refused is called:
// a flood of idle connections costs a counter, not the process's file
// descriptors. (x/net's netutil.LimitListener instead stops accepting,
// which leaves the flood queued in the kernel and every newcomer waiting.)
func LimitListener(ln net.Listener, max int, refused func()) net.Listener {
	return &limitListener{Listener: ln, slots: make(chan struct{}, max), refused: refused}
}

type limitListener struct {
	net.Listener
	slots   chan struct{} // one token per open connection
	refused func()
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.slots <- struct{}{}:
			return &limitConn{Conn: c, free: func() { <-l.slots }}, nil
		default:
			if l.refused != nil {
				l.refused() // counted before the caller can see the close
			}
			c.Close()
		}
	}
}

// limitConn gives its slot back once, on its first Close.
type limitConn struct {
	net.Conn
	once sync.Once
	free func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.free)
	return err
}
