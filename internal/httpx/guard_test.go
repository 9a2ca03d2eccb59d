package httpx

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// strayServer answers each request with a chunked answer that echoes the
// request's X-Id, followed by a stray second answer, on a kept-alive
// connection.
func strayServer(t testing.TB) string {
	return rawServer(t, nil, answerWith(func(id string) string {
		return fmt.Sprintf("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(id), id) +
			"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nSTRAY"
	}))
}

// Many callers on a few kept-alive connections to a server that sends a
// stray answer after each one: every caller reads its own answer. Without
// the guard, net/http hands a stray answer to the request that takes the
// connection before its reader has looked at it.
func TestStrayBytesNeverReachTheNextRequest(t *testing.T) {
	url := strayServer(t)
	_, rt := NewTransport(DefaultTimeout, 4, nil)
	hc := &http.Client{Transport: rt}
	var wrong, failed atomic.Int64
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 300 {
				id := fmt.Sprintf("g%d-%d", g, i)
				req, _ := http.NewRequest("GET", url+"/x", nil)
				req.Header.Set("X-Id", id)
				resp, err := hc.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(b) != id {
					if wrong.Add(1) == 1 {
						t.Errorf("request %s got %q", id, b)
					}
				}
			}
		}()
	}
	wg.Wait()
	if wrong.Load() > 0 {
		t.Errorf("%d of %d requests got another answer", wrong.Load(), 16*300)
	}
	// A request whose connection closed under it is sent again on a new
	// one (it had written nothing): none fails.
	if f := failed.Load(); f > 0 {
		t.Errorf("%d requests failed", f)
	}
}

// rawServer serves each accepted connection with serve, on loopback; with
// tlsConfig, over TLS.
func rawServer(t testing.TB, tlsConfig *tls.Config, serve func(c net.Conn)) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			if tlsConfig != nil {
				c = tls.Server(c, tlsConfig)
			}
			go func() { defer c.Close(); serve(c) }()
		}
	}()
	scheme := "http"
	if tlsConfig != nil {
		scheme = "https"
	}
	return scheme + "://" + ln.Addr().String()
}

// answerWith answers each request with answer(id) (the request's X-Id).
func answerWith(answer func(id string) string) func(c net.Conn) {
	return func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			io.Copy(io.Discard, req.Body)
			io.WriteString(c, answer(req.Header.Get("X-Id")))
		}
	}
}

// testTLS is a server certificate for 127.0.0.1 and a client config that
// trusts it.
func testTLS(t testing.TB) (server, client *tls.Config) {
	srv := httptest.NewUnstartedServer(http.NotFoundHandler())
	srv.StartTLS()
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return srv.TLS.Clone(), &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}

// hammer sends n requests from 16 goroutines and counts the answers that
// were not their own.
func hammer(t *testing.T, hc *http.Client, url string, n int) (wrong int64) {
	var bad atomic.Int64
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n / 16 {
				id := fmt.Sprintf("g%d-%d", g, i)
				req, _ := http.NewRequest("GET", url+"/x", nil)
				req.Header.Set("X-Id", id)
				resp, err := hc.Do(req)
				if err != nil {
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if !strings.HasPrefix(string(b), id+".") && string(b) != id {
					bad.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return bad.Load()
}

// A stray answer still on the wire when the next request goes out (after
// an answer larger than the socket's buffers) cannot be told from that
// request's answer; it is detected, in plain HTTP and over TLS alike, so
// that the owner stops reusing connections.
func TestStrayBytesAreDetected(t *testing.T) {
	srvTLS, cliTLS := testTLS(t)
	big := func(id string) string {
		body := id + "." + strings.Repeat("x", 48<<10)
		return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body) +
			"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nSTRAY"
	}
	for name, tc := range map[string]*tls.Config{"plain": nil, "TLS": srvTLS} {
		url := rawServer(t, tc, answerWith(big))
		detected := make(chan struct{}, 1)
		onStray := func() {
			select {
			case detected <- struct{}{}:
			default:
			}
		}
		tr, rt := NewTransport(DefaultTimeout, 4, onStray)
		if tc != nil {
			tr.TLSClientConfig = cliTLS
			tr.DialTLSContext = guardedDialTLS((&net.Dialer{}).DialContext, cliTLS, watch{onStray, func() time.Duration { return tr.IdleConnTimeout }})
		}
		hammer(t, &http.Client{Transport: rt}, url, 320)
		tr.CloseIdleConnections()
		select {
		case <-detected:
		case <-time.After(10 * time.Second):
			t.Errorf("%s: a server sending a stray answer after every one was never detected", name)
		}
	}
}

// Servers that close idle connections, plainly or with TLS's close_notify,
// and connections closed for their idle time, are not stray bytes.
func TestOrdinaryClosesAreNotStray(t *testing.T) {
	srvTLS, cliTLS := testTLS(t)
	closeAfterOne := func(c net.Conn) {
		br := bufio.NewReader(c)
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		id := req.Header.Get("X-Id")
		fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(id), id)
		time.Sleep(100 * time.Millisecond) // idle on the client's side (and timed out there), then closed (close_notify over TLS)
	}
	for name, tc := range map[string]*tls.Config{"plain": nil, "TLS": srvTLS} {
		url := rawServer(t, tc, closeAfterOne)
		var strays atomic.Int64
		tr, rt := NewTransport(DefaultTimeout, 4, func() { strays.Add(1) })
		tr.IdleConnTimeout = 50 * time.Millisecond
		if tc != nil {
			tr.DialTLSContext = guardedDialTLS((&net.Dialer{}).DialContext, cliTLS, watch{func() { strays.Add(1) }, func() time.Duration { return tr.IdleConnTimeout }})
		}
		if wrong := hammer(t, &http.Client{Transport: rt}, url, 64); wrong != 0 {
			t.Errorf("%s: %d wrong answers", name, wrong)
		}
		tr.CloseIdleConnections()
		if n := strays.Load(); n != 0 {
			t.Errorf("%s: %d ordinary closes were taken for stray bytes", name, n)
		}
	}
}
