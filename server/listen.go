package server

import (
	"log"
	"net"
	"net/http"
	"sync"

	tokenbroker "github.com/tokenbroker/tokenbroker"
	"github.com/tokenbroker/tokenbroker/proxy"
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

// ProxyListener is a proxy_listen address and what it serves: one
// profile's (or one tenant's) vendor paths at the root, for SDKs that
// keep only a host, with the same keys, client rules, limits and 401
// handling as /proxy/{profile}/.
type ProxyListener struct {
	Addr    string
	Name    string // PROFILE or PROFILE/TENANT-ID
	Handler http.Handler
}

// ProxyListeners lists the configuration's proxy_listen addresses.
func (s *Server) ProxyListeners() []ProxyListener {
	var out []ProxyListener
	cfg := s.Broker().Config()
	for _, name := range cfg.Names() {
		p := cfg.Profiles[name]
		if p.ProxyListen != "" {
			out = append(out, ProxyListener{Addr: p.ProxyListen, Name: name, Handler: s.rootProxy(name, "")})
		}
		for _, t := range p.Tenants.List {
			if t.ProxyListen != "" {
				out = append(out, ProxyListener{Addr: t.ProxyListen, Name: name + "/" + t.ID, Handler: s.rootProxy(name, t.ID)})
			}
		}
	}
	return out
}

// rootProxy serves the profile's vendor paths at the root: /x is the
// proxy's /proxy/{profile}/x, and a tenant's listener names its tenant.
func (s *Server) rootProxy(profile, tenant string) http.Handler {
	h := s.Handler()
	prefix := proxy.Prefix + profile
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		out := new(http.Request)
		*out = *r
		u := *r.URL
		u.Path = prefix + r.URL.Path
		if r.URL.RawPath != "" {
			u.RawPath = prefix + r.URL.RawPath
		}
		out.URL = &u
		if tenant != "" {
			out.Header = r.Header.Clone()
			out.Header.Set(tokenbroker.TenantHeader, tenant)
		}
		h.ServeHTTP(w, out)
	})
}

// HTTPServerFor is HTTPServer for another handler (a proxy_listen's).
func (s *Server) HTTPServerFor(h http.Handler, ln net.Listener, errLog *log.Logger) (*http.Server, net.Listener) {
	hs, ln := s.HTTPServer(ln, errLog)
	hs.Handler = h
	return hs, ln
}
