package server

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/tokenbroker/tokenbroker/config"
)

// sloppyVendor is a keep-alive HTTP/1.1 server on a raw socket that can be
// told, per path, to break its framing the ways real servers do. Every
// answer it means for a caller echoes the caller's Authorization and path;
// every stray answer says STRAY. It records the requests it read.
type sloppyVendor struct {
	ln   net.Listener
	url  string
	mu   sync.Mutex
	seen []string // "METHOD PATH AUTH"
	// handlers that finished writing (or failed to): for the write-timeout test
	written chan error
}

const stray = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\r\nSTRAY"

func newSloppyVendor(t *testing.T) *sloppyVendor {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	v := &sloppyVendor{ln: ln, url: "http://" + ln.Addr().String(), written: make(chan error, 16)}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go v.serve(c)
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return v
}

func (v *sloppyVendor) calls(prefix string) int {
	v.mu.Lock()
	defer v.mu.Unlock()
	n := 0
	for _, s := range v.seen {
		if strings.HasPrefix(s, prefix) {
			n++
		}
	}
	return n
}

func (v *sloppyVendor) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		v.mu.Lock()
		v.seen = append(v.seen, req.Method+" "+req.URL.Path+" "+req.Header.Get("Authorization"))
		v.mu.Unlock()
		echo := "echo:" + req.Header.Get("Authorization") + ":" + req.URL.Path
		framed := fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s", len(echo), echo)
		switch req.URL.Path {
		case "/ignore":
			// Answers without reading the body, as Python's http.server
			// does for a request it ignores: the body is read as the next
			// request on the connection.
			io.WriteString(c, framed)
			continue
		case "/vanish":
			// Reads the call, then closes without an answer.
			io.Copy(io.Discard, req.Body)
			return
		}
		io.Copy(io.Discard, req.Body)
		route := req.URL.Path
		if strings.HasPrefix(route, "/big/") {
			route = "/big" // the rest names the call
		}
		switch route {
		case "/double":
			io.WriteString(c, framed+stray)
		case "/nocontent":
			io.WriteString(c, "HTTP/1.1 204 No Content\r\n\r\n"+stray)
		case "/notmodified":
			io.WriteString(c, "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n"+stray)
		case "/switch":
			io.WriteString(c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n"+stray)
		case "/chunked":
			io.WriteString(c, fmt.Sprintf("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(echo), echo)+stray)
		case "/big":
			// 48 KiB, more than the socket's buffers take at once, then a
			// stray answer: it is still on the wire when the next request
			// goes out.
			body := echo + "." + strings.Repeat("x", 48<<10)
			fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
			io.WriteString(c, stray)
		case "/huge":
			// 64 MiB in one answer, for a caller that never reads it.
			head := fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", 64<<20)
			_, err := io.WriteString(c, head)
			chunk := bytes.Repeat([]byte("x"), 1<<20)
			for i := 0; i < 64 && err == nil; i++ {
				_, err = c.Write(chunk)
			}
			v.written <- err
			return
		default:
			io.WriteString(c, framed)
		}
	}
}

// hostileRig is serve (its real http.Server) with two static profiles on
// one sloppy vendor, each with its own key.
type hostileRig struct {
	vendor *sloppyVendor
	srv    *Server
	url    string
	log    *lockedBuffer
}

// lockedBuffer is a log that tests read while the server writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

func newHostileRig(t *testing.T, lim config.Serve) *hostileRig {
	t.Helper()
	v := newSloppyVendor(t)
	cfg := &config.Config{State: "sqlite:" + filepath.Join(t.TempDir(), "state.db"), Serve: lim, Profiles: map[string]*config.Profile{
		"a": {Name: "a", Provider: "static", BaseURL: v.url, APIKey: "key-a"},
		"b": {Name: "b", Provider: "static", BaseURL: v.url, APIKey: "key-b"},
	}}
	log := &lockedBuffer{}
	srv, url := serveConfig(t, cfg, slog.New(slog.NewTextHandler(log, nil)))
	return &hostileRig{vendor: v, srv: srv, url: url, log: log}
}

// call sends one request through the proxy on a connection of its own
// caller, and returns the status and body.
func (r *hostileRig) call(t *testing.T, hc *http.Client, method, path string, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, r.url+path, strings.NewReader(body))
	if body == "" {
		req.Body = nil
	}
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// A vendor that sends bytes beyond its framing (a second answer, bytes
// after a 204, 304, 101 or a chunked answer, or the answer to a request
// smuggled in a body it did not read) never gets them to a caller: each
// caller's next answer is its own, with its own profile's credential.
func TestSloppyVendorNeverCrossesCallers(t *testing.T) {
	r := newHostileRig(t, config.Serve{})
	callerA := &http.Client{Transport: &http.Transport{}}
	callerB := &http.Client{Transport: &http.Transport{}}
	smuggled := "GET /smuggled HTTP/1.1\r\nHost: v\r\n\r\n"
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/ignore", smuggled},
		{"GET", "/double", ""},
		{"GET", "/nocontent", ""},
		{"GET", "/notmodified", ""},
		{"GET", "/switch", ""},
		{"GET", "/chunked", ""},
	} {
		// Warm both profiles' connections, so the next calls could reuse them.
		r.call(t, callerA, "GET", "/proxy/a/echo", "")
		r.call(t, callerB, "GET", "/proxy/b/echo", "")
		code, body := r.call(t, callerA, c.method, "/proxy/a"+c.path, c.body)
		if strings.Contains(body, "STRAY") || strings.Contains(body, "key-b") {
			t.Errorf("%s %s: A got %d %q", c.method, c.path, code, body)
		}
		for i := range 3 {
			if _, got := r.call(t, callerB, "GET", "/proxy/b/echo", ""); got != "echo:Bearer key-b:/echo" {
				t.Errorf("after A's %s %s, B's call %d got %q, want its own answer", c.method, c.path, i, got)
			}
			if _, got := r.call(t, callerA, "GET", "/proxy/a/echo", ""); got != "echo:Bearer key-a:/echo" {
				t.Errorf("after A's %s %s, A's next call %d got %q, want its own answer", c.method, c.path, i, got)
			}
		}
	}
}

// Stray bytes still on the wire when the next request goes out (after a
// 48 KiB answer) cannot be told from its answer by any HTTP/1.1 client: a
// caller of the same profile may get one before they are detected. They
// are detected, the log says so, and from then on the profile's
// connections are not reused: no caller gets another's answer again, and
// the other profile was never touched.
func TestVendorThatStraysLosesKeepAlive(t *testing.T) {
	r := newHostileRig(t, config.Serve{})
	var wg sync.WaitGroup
	hammer := func(n int) (wrong int) {
		var mu sync.Mutex
		for g := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				hc := &http.Client{Transport: &http.Transport{}}
				for i := range n / 8 {
					path := fmt.Sprintf("/big/c%d-%d", g, i)
					_, body := r.call(t, hc, "GET", "/proxy/a"+path, "")
					if !strings.HasPrefix(body, "echo:Bearer key-a:"+path+".") {
						mu.Lock()
						wrong++
						mu.Unlock()
					}
				}
			}()
		}
		wg.Wait()
		return wrong
	}
	const notice = "no longer reused"
	for range 20 {
		hammer(200)
		if strings.Contains(r.log.String(), notice) {
			break
		}
	}
	if !strings.Contains(r.log.String(), notice) {
		t.Fatalf("4,000 calls to a vendor that strays after every answer, and no notice:\n%s", r.log.String())
	}
	if wrong := hammer(400); wrong != 0 {
		t.Errorf("%d of 400 calls got another caller's answer after the vendor was found to stray", wrong)
	}
	if _, got := r.call(t, http.DefaultClient, "GET", "/proxy/b/echo", ""); got != "echo:Bearer key-b:/echo" {
		t.Errorf("the other profile got %q", got)
	}
}

// A POST on a reused vendor connection that the vendor closes without an
// answer is not sent again: the vendor may have acted on it.
func TestPostIsNeverSentTwice(t *testing.T) {
	r := newHostileRig(t, config.Serve{})
	hc := &http.Client{Transport: &http.Transport{}}
	r.call(t, hc, "GET", "/proxy/a/echo", "") // the POST goes on this connection
	code, body := r.call(t, hc, "POST", "/proxy/a/vanish", `{"reboot":"ap-1"}`)
	if code != http.StatusBadGateway {
		t.Errorf("POST to a vendor that closed: %d %q, want 502", code, body)
	}
	if n := r.vendor.calls("POST /vanish"); n != 1 {
		t.Errorf("the vendor read the POST %d times, want once", n)
	}
}

// CONNECT, TRACE (which would echo the vendor credential back) and
// methods in lower case are not forwarded.
func TestOnlyStandardMethodsAreForwarded(t *testing.T) {
	r := newHostileRig(t, config.Serve{})
	for _, m := range []string{"TRACE", "get", "PROPFIND"} {
		code, body := r.call(t, http.DefaultClient, m, "/proxy/a/echo", "")
		if code != http.StatusMethodNotAllowed || !strings.Contains(body, "method_not_allowed") {
			t.Errorf("%s: %d %q, want 405", m, code, body)
		}
	}
	c, err := net.Dial("tcp", strings.TrimPrefix(r.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "CONNECT /proxy/a/echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", testKey)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode < 400 {
		t.Errorf("CONNECT: %d, want a refusal", resp.StatusCode)
	}
	if n := r.vendor.calls(""); n != 0 {
		t.Errorf("the vendor saw %d calls", n)
	}
}

// Beyond max_connections a new connection is closed at once and counted,
// and serve keeps answering once the others go.
func TestConnectionCap(t *testing.T) {
	r := newHostileRig(t, config.Serve{MaxConnections: 4})
	addr := strings.TrimPrefix(r.url, "http://")
	var silent []net.Conn
	for range 4 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		silent = append(silent, c)
	}
	// The fifth connection is accepted only to be closed: its read ends.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF && !isReset(err) {
		t.Errorf("the connection over the cap: %v, want it closed", err)
	}
	c.Close()
	if got := counterValue(t, r.srv, "tokenbroker_connections_refused_total"); got < 1 {
		t.Errorf("refused connections counted %v, want at least 1", got)
	}
	for _, c := range silent {
		c.Close()
	}
	// Slots come back as the server sees the silent connections close.
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(10 * time.Second)
	for {
		req, _ := http.NewRequest("GET", r.url+"/healthz", nil)
		resp, err := hc.Do(req)
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not answer after the silent connections closed: %v", err)
		}
		runtimeYield()
	}
}

// A connection that sends nothing is closed after read_header_timeout.
func TestSilentConnectionIsClosed(t *testing.T) {
	r := newHostileRig(t, config.Serve{ReadHeaderTimeout: 200 * time.Millisecond})
	c, err := net.Dial("tcp", strings.TrimPrefix(r.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /healthz HTTP/1.1\r\n") // half a head, then silence
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = io.ReadAll(c)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("serve held the silent connection for 10 s")
	}
}

// A caller that never reads its answer is let go after write_timeout, and
// with it the vendor connection: nothing stays pinned.
func TestCallerThatNeverReadsIsLetGo(t *testing.T) {
	r := newHostileRig(t, config.Serve{WriteTimeout: 300 * time.Millisecond})
	c, err := net.Dial("tcp", strings.TrimPrefix(r.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetReadBuffer(4 << 10)
	}
	fmt.Fprintf(c, "GET /proxy/a/huge HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", testKey)
	select {
	case err := <-r.vendor.written:
		if err == nil {
			t.Error("the vendor wrote 64 MiB to a caller that reads nothing")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the vendor connection was still pinned after 20 s")
	}
}

// A caller that stops sending its body is let go after write_timeout,
// and nothing reaches the vendor.
func TestCallerThatStopsSendingIsLetGo(t *testing.T) {
	r := newHostileRig(t, config.Serve{WriteTimeout: 300 * time.Millisecond})
	c, err := net.Dial("tcp", strings.TrimPrefix(r.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /proxy/a/echo HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Length: 100\r\n\r\n0123456789", testKey)
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, err = io.ReadAll(c) // an error answer, then the close
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("serve held the connection for 20 s")
	}
	if _, err := c.Read(make([]byte, 1)); err == nil {
		t.Error("the connection is still open")
	}
	if n := r.vendor.calls("POST"); n != 0 {
		t.Errorf("the vendor saw %d calls", n)
	}
}

// Callers without the key that announce a body and never send it cannot
// fill max_connections: a refused call closes its connection, and a body
// on a route that takes one (webhooks) must come within the header's time.
func TestUnauthenticatedSlowBodiesDoNotHoldConnections(t *testing.T) {
	r := newHostileRig(t, config.Serve{MaxConnections: 4, ReadHeaderTimeout: 300 * time.Millisecond})
	addr := strings.TrimPrefix(r.url, "http://")
	var slow []net.Conn
	for i := range 4 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		path := []string{"/proxy/a/echo", "/v1/profiles", "/webhooks/a", "/nowhere"}[i]
		fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nx", path)
		slow = append(slow, c)
	}
	for i, c := range slow {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadAll(c); err != nil {
			t.Errorf("slow caller %d: %v, want its connection closed", i, err)
		}
	}
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	resp, err := hc.Get(r.url + "/healthz")
	if err != nil {
		t.Fatalf("serve refuses everyone after the slow callers: %v", err)
	}
	resp.Body.Close()
}

// A vendor that cuts a streamed answer short: the caller sees the answer
// cut (a reset), not a complete-looking 200.
func TestCutStreamIsCutForTheCaller(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				http.ReadRequest(bufio.NewReader(c))
				io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n[1,2,3\r\n")
			}()
		}
	}()
	cfg := &config.Config{State: "sqlite:" + filepath.Join(t.TempDir(), "s.db"), Profiles: map[string]*config.Profile{
		"a": {Name: "a", Provider: "static", BaseURL: "http://" + ln.Addr().String(), APIKey: "key-a"}}}
	_, base := serveConfig(t, cfg, nil)
	req, _ := http.NewRequest("GET", base+"/proxy/a/list", nil)
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err == nil {
		t.Errorf("the caller got %d %q and no error: the cut is invisible", resp.StatusCode, b)
	}
}

func isReset(err error) bool {
	return err != nil && strings.Contains(err.Error(), "connection reset")
}

// runtimeYield lets the server's goroutines run between polls.
func runtimeYield() { time.Sleep(10 * time.Millisecond) }

// counterValue reads a counter without labels from the server's registry.
func counterValue(t *testing.T, s *Server, name string) float64 {
	t.Helper()
	var sum float64
	if mf := scrape(t, s)[name]; mf != nil {
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// scrape reads /metrics as Prometheus would, with its own text parser, so a
// series the format does not allow fails the test.
func scrape(t *testing.T, s *Server) map[string]*dto.MetricFamily {
	t.Helper()
	rec := httptest.NewRecorder()
	s.metrics.handler(rec, httptest.NewRequest("GET", "/metrics", nil))
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return mfs
}
