package h1

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// counting is an upstream that counts the connections it accepted.
type counting struct {
	conns atomic.Int64
}

func server(t *testing.T, h http.HandlerFunc, tlsOn bool) (*httptest.Server, *counting) {
	t.Helper()
	c := &counting{}
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			c.conns.Add(1)
		}
	}
	if tlsOn {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return srv, c
}

func get(t *testing.T, c *Client, url string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	resp, err := c.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp.StatusCode, string(b)
}

func TestKeepAliveReuseAndBodies(t *testing.T) {
	srv, conns := server(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/chunked" {
			w.(http.Flusher).Flush() // forces chunked encoding
		}
		fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.Path, b)
	}, false)
	c := New(&tls.Config{}, 4, 5*time.Second)
	for i := range 5 {
		if code, body := get(t, c, srv.URL+"/x"); code != 200 || body != "GET /x " {
			t.Fatalf("call %d: %d %q", i, code, body)
		}
	}
	if code, body := get(t, c, srv.URL+"/chunked"); code != 200 || body != "GET /chunked " {
		t.Fatalf("chunked: %d %q", code, body)
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/post", strings.NewReader("payload"))
	resp, err := c.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "POST /post payload" {
		t.Errorf("post: %q", b)
	}
	if n := conns.conns.Load(); n != 1 {
		t.Errorf("%d connections for 7 sequential calls, want 1 kept alive", n)
	}
}

func TestUnreadBodyClosesTheConnection(t *testing.T) {
	srv, conns := server(t, func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(strings.Repeat("x", 100<<10)))
	}, false)
	c := New(&tls.Config{}, 4, 5*time.Second)
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	resp, err := c.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close() // unread: the rest of the body is still on the wire
	get(t, c, srv.URL)
	if n := conns.conns.Load(); n != 2 {
		t.Errorf("%d connections, want 2: a half-read connection must not be reused", n)
	}
}

// TestServerClosedIdleConnectionIsRetried, over plain HTTP and over TLS,
// where the close shows through the TLS layer.
func TestServerClosedIdleConnectionIsRetried(t *testing.T) {
	for _, tlsOn := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", tlsOn), func(t *testing.T) {
			srv, conns := server(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }, tlsOn)
			cfg := &tls.Config{}
			if tlsOn {
				cfg = srv.Client().Transport.(*http.Transport).TLSClientConfig
			}
			c := New(cfg, 4, 5*time.Second)
			get(t, c, srv.URL)
			srv.CloseClientConnections() // the server drops the kept-alive connection
			if code, body := get(t, c, srv.URL); code != 200 || body != "ok" {
				t.Errorf("after the server closed the idle connection: %d %q", code, body)
			}
			if n := conns.conns.Load(); n != 2 {
				t.Errorf("%d connections, want 2", n)
			}
		})
	}
}

func TestTLSAndVerification(t *testing.T) {
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "secure") }, true)
	trusted := New(srv.Client().Transport.(*http.Transport).TLSClientConfig, 4, 5*time.Second)
	if code, body := get(t, trusted, srv.URL); code != 200 || body != "secure" {
		t.Errorf("https: %d %q", code, body)
	}
	untrusted := New(&tls.Config{}, 4, 5*time.Second)
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	if _, err := untrusted.RoundTrip(req); err == nil {
		t.Error("a certificate nobody trusts was accepted")
	}
}

func TestContextCancelAndHeaderTimeout(t *testing.T) {
	release := make(chan struct{})
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}, false)
	defer close(release)
	c := New(&tls.Config{}, 4, 100*time.Millisecond)
	req, _ := http.NewRequest(http.MethodGet, srv.URL, nil)
	if _, err := c.RoundTrip(req); err == nil {
		t.Error("no error after the header timeout")
	}
	ctx, cancel := context.WithCancel(context.Background())
	c = New(&tls.Config{}, 4, time.Minute)
	req, _ = http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	done := make(chan error, 1)
	go func() { _, err := c.RoundTrip(req); done <- err }()
	cancel()
	select {
	case err := <-done:
		if err == nil {
			t.Error("no error after cancel")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a cancelled request did not return")
	}
}

// Only a connection the server closed is tried again: a call that timed
// out on a reused connection may have been acted on, and is not resent.
func TestTimeoutOnReusedConnectionIsNotRetried(t *testing.T) {
	var calls atomic.Int64
	release := make(chan struct{})
	srv, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) > 1 {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		io.WriteString(w, "ok")
	}, false)
	defer close(release)
	c := New(&tls.Config{}, 4, 200*time.Millisecond)
	get(t, c, srv.URL)
	req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader("once"))
	if _, err := c.RoundTrip(req); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("got %v, want the header timeout", err)
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("the server saw %d calls, want 2: the timed-out call was sent again", n)
	}
}

// A response head over MaxHeadBytes is an error, not unbounded memory; one
// larger than the buffer but under the cap is read.
func TestResponseHeadCap(t *testing.T) {
	srv, conns := server(t, func(w http.ResponseWriter, r *http.Request) {
		n := 2
		if r.URL.Path == "/huge" {
			n = 20
		}
		for i := range n {
			w.Header().Set(fmt.Sprintf("X-Big-%d", i), strings.Repeat("b", 60<<10))
		}
		io.WriteString(w, "ok")
	}, false)
	c := New(&tls.Config{}, 4, 5*time.Second)
	if code, body := get(t, c, srv.URL+"/big"); code != 200 || body != "ok" {
		t.Errorf("a 120 KiB head: %d %q", code, body)
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/huge", nil)
	if _, err := c.RoundTrip(req); !errors.Is(err, ErrHeadTooLarge) {
		t.Errorf("a 1.2 MiB head: got %v, want ErrHeadTooLarge", err)
	}
	if n := conns.conns.Load(); n != 1 {
		t.Errorf("%d connections, want 1: an oversized answer is not a stale connection", n)
	}
}
