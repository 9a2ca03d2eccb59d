package tokenbroker_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker"
	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/internal/front"
	"github.com/tokenbroker/tokenbroker/server"
)

// The lane's own CPU time per call, without the kernel: the caller and the
// vendor are in memory, so that a change of a few percent in what the lane
// does shows (under a real load, system calls and wake-ups are four fifths
// of a call and their noise hides it; `go run ./bench` measures that).

const benchKey = "bench-broker-key"

// memAddr is the address of an in-memory connection.
type memAddr struct{}

func (memAddr) Network() string { return "mem" }
func (memAddr) String() string  { return "mem" }

// memConn answers each write with reply on the next read: a vendor for
// the upstream side, a caller for the front's side (whose "reply" is its
// next request, up to left of them, then EOF).
type memConn struct {
	reply   []byte
	left    int // requests to send; <0: no limit (a vendor)
	pending bool
	written int
	closed  chan struct{}
}

func (c *memConn) Read(p []byte) (int, error) {
	if !c.pending {
		return 0, io.EOF
	}
	c.pending = false
	if c.left == 0 {
		return 0, io.EOF
	}
	if c.left > 0 {
		c.left--
	}
	return copy(p, c.reply), nil
}

func (c *memConn) Write(p []byte) (int, error) {
	c.pending = true
	c.written += len(p)
	return len(p), nil
}

func (c *memConn) Close() error {
	if c.closed != nil {
		close(c.closed)
		c.closed = nil
	}
	return nil
}

func (c *memConn) LocalAddr() net.Addr              { return memAddr{} }
func (c *memConn) RemoteAddr() net.Addr             { return memAddr{} }
func (c *memConn) SetDeadline(time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }

// memListener hands out the connections sent on conns.
type memListener struct {
	conns chan net.Conn
	done  chan struct{}
}

func (l *memListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}
func (l *memListener) Close() error   { close(l.done); return nil }
func (l *memListener) Addr() net.Addr { return memAddr{} }

// serveInMemory serves n copies of request on one in-memory connection,
// lane first, against a vendor that answers every call with the same JSON,
// and checks that the lane served them all. b, when not nil, times only
// the n calls.
func serveInMemory(t testing.TB, b *testing.B, request string, n int) {
	body := `{"id":"ap-1","name":"6c:f3:7f:c3:5d:92","model":"AP-134","status":"Up","serial":"AX0140586"}`
	vendorAnswer := []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nDate: Wed, 25 Nov 2026 12:00:00 GMT\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body)
	defer tokenbroker.SetAPIDial(func(ctx context.Context, network, addr string) (net.Conn, error) {
		return &memConn{reply: vendorAnswer, left: -1}, nil
	})()
	dir := t.TempDir()
	cfg := &config.Config{State: "sqlite:" + filepath.Join(dir, "state.db"), Profiles: map[string]*config.Profile{
		"bench": {Name: "bench", Provider: "static", APIKey: "vendor-key", BaseURL: "http://127.0.0.1:9/api"},
	}}
	st, err := tokenbroker.OpenStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	srv, err := server.New(cfg, server.Options{Store: st, APIKey: benchKey})
	if err != nil {
		t.Fatal(err)
	}
	ln := &memListener{conns: make(chan net.Conn), done: make(chan struct{})}
	served := 0
	lane := srv.Lane()
	fs := front.New(ln, func(r *front.Request) bool {
		if lane(r) {
			served++
			return true
		}
		return false
	}, &http.Server{Handler: srv.Handler()})
	go fs.Serve()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		fs.Shutdown(ctx)
	}()

	// A token in memory, and one call first: the lane's per-profile state
	// and the vendor connection are made once, not per call.
	if _, err := srv.Broker().Handout(context.Background(), "bench", tokenbroker.TokenOptions{}); err != nil {
		t.Fatal(err)
	}
	warm := &memConn{reply: []byte(request), left: 1, pending: true, closed: make(chan struct{})}
	done := warm.closed
	ln.conns <- warm
	<-done
	if served != 1 {
		t.Fatalf("the lane did not serve %q", request)
	}
	c := &memConn{reply: []byte(request), left: n, pending: true, closed: make(chan struct{})}
	done = c.closed
	if b != nil {
		b.ReportAllocs()
		b.ResetTimer()
	}
	ln.conns <- c
	<-done
	if b != nil {
		b.StopTimer()
	}
	if served != n+1 {
		t.Fatalf("the lane served %d of %d calls", served-1, n)
	}
	if per := c.written / n; per < 100 {
		t.Fatalf("%d bytes of answer per call", per)
	}
}

const (
	proxyCall = "GET /proxy/bench/item?limit=5 HTTP/1.1\r\nHost: 127.0.0.1:8420\r\nAuthorization: Bearer " + benchKey + "\r\nAccept: application/json\r\nUser-Agent: bench\r\n\r\n"
	tokenCall = "GET /v1/profiles/bench/token HTTP/1.1\r\nHost: 127.0.0.1:8420\r\nAuthorization: Bearer " + benchKey + "\r\n\r\n"
)

// The benchmarks' rig works: every call is the lane's.
func TestLaneInMemory(t *testing.T) {
	serveInMemory(t, nil, proxyCall, 10)
	serveInMemory(t, nil, tokenCall, 10)
}

func BenchmarkLaneProxy(b *testing.B) { serveInMemory(b, b, proxyCall, b.N) }

func BenchmarkLaneToken(b *testing.B) { serveInMemory(b, b, tokenCall, b.N) }
