package pgtest

import (
	"net"
	"net/url"
	"sync"
	"testing"
)

// Relay is a TCP relay between clients and PostgreSQL that a test can
// blackhole (connections stay open and bytes stop moving, as when a
// network swallows packets), cut (connections are closed and new ones
// refused) and restore (the held bytes then flow on, as TCP retransmits
// them; new connections are relayed again).
type Relay struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	open   *sync.Cond // signalled when the relay is restored
	held   bool
	cut    bool
	conns  map[net.Conn]bool // open client connections, closed by Cut
}

// NewRelay relays to the host and port of dsn, and returns the relay and
// dsn pointed at it.
func NewRelay(t testing.TB, dsn string) (*Relay, string) {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &Relay{ln: ln, target: u.Host, conns: map[net.Conn]bool{}}
	r.open = sync.NewCond(&r.mu)
	t.Cleanup(func() { ln.Close(); r.Restore() })
	go r.serve()
	u.Host = ln.Addr().String()
	return r, u.String()
}

// Blackhole stops every byte in both directions until Restore.
func (r *Relay) Blackhole() { r.mu.Lock(); r.held = true; r.mu.Unlock() }

// Cut closes every relayed connection and refuses new ones until Restore.
func (r *Relay) Cut() {
	r.mu.Lock()
	r.cut = true
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
}

// Restore lets the held bytes and new ones flow.
func (r *Relay) Restore() {
	r.mu.Lock()
	r.held, r.cut = false, false
	r.mu.Unlock()
	r.open.Broadcast()
}

func (r *Relay) serve() {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.mu.Lock()
		if r.cut {
			r.mu.Unlock()
			c.Close()
			continue
		}
		r.conns[c] = true
		r.mu.Unlock()
		go func() {
			defer func() { r.mu.Lock(); delete(r.conns, c); r.mu.Unlock() }()
			s, err := net.Dial("tcp", r.target)
			if err != nil {
				c.Close()
				return
			}
			go r.pipe(s, c)
			r.pipe(c, s)
		}()
	}
}

// pipe copies src to dst, holding each chunk while the relay is held.
func (r *Relay) pipe(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			r.mu.Lock()
			for r.held {
				r.open.Wait()
			}
			r.mu.Unlock()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // EOF or a closed connection: close the other side too
		}
	}
}
