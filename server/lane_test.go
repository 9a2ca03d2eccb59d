package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker"
	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/internal/front"
)

// seen is what the recording API received for one call.
type seen struct {
	Method, Path, Query, Body string
	Header                    http.Header
}

// recordingAPI is a vendor API that answers each path its own way and
// records what it received. /flaky/401 and /flaky/429 fail once per key
// given in the query, then answer.
type recordingAPI struct {
	srv    *httptest.Server
	tokens atomic.Int64
	mu     sync.Mutex
	seen   []seen
	failed map[string]bool
}

func newRecordingAPI(t *testing.T) *recordingAPI {
	a := &recordingAPI{failed: map[string]bool{}}
	a.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/token" {
			n := a.tokens.Add(1)
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"access_token":"tok-%d","token_type":"Bearer","expires_in":3600}`, n)
			return
		}
		b, _ := io.ReadAll(r.Body)
		a.mu.Lock()
		a.seen = append(a.seen, seen{r.Method, r.URL.Path, r.URL.RawQuery, string(b), r.Header.Clone()})
		first := !a.failed[r.URL.Path+"?"+r.URL.RawQuery]
		a.failed[r.URL.Path+"?"+r.URL.RawQuery] = true
		a.mu.Unlock()
		switch r.URL.Path {
		case "/api/flaky/401":
			if first {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
		case "/api/flaky/429":
			if first {
				w.Header().Set("Retry-After", "0")
				w.WriteHeader(http.StatusTooManyRequests)
				return
			}
		case "/api/stream":
			w.Header().Set("Content-Type", "text/event-stream")
			for i := range 3 {
				fmt.Fprintf(w, "data: %d\n\n", i)
				w.(http.Flusher).Flush() // chunked, as it comes
			}
			return
		case "/api/empty":
			w.WriteHeader(http.StatusNoContent)
			return
		case "/api/bighead": // a head larger than the lane's buffer
			w.Header().Set("X-Big", strings.Repeat("b", 64<<10))
		case "/api/hugehead": // a head over the cap of either path
			for i := range 20 {
				w.Header().Set(fmt.Sprintf("X-Huge-%d", i), strings.Repeat("h", 60<<10))
			}
		case "/api/hop":
			w.Header().Set("Connection", "X-Hop")
			w.Header().Set("X-Hop", "connection only")
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Vendor", "v")
		fmt.Fprintf(w, `{"path":%q,"bytes":%d}`, r.URL.Path, len(b))
	}))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *recordingAPI) last() seen {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.seen[len(a.seen)-1]
}

// laneRig serves one Server two ways: through the front (the lane, which
// it counts) and through net/http alone, for comparing the two.
type laneRig struct {
	api        *recordingAPI
	srv        *Server
	front      string
	plain      string
	laneServed atomic.Int64
}

func newLaneRig(t *testing.T) *laneRig {
	r := &laneRig{api: newRecordingAPI(t)}
	cfg := &config.Config{State: "sqlite:" + filepath.Join(t.TempDir(), "state.db"), Profiles: map[string]*config.Profile{
		"rec": {Name: "rec", Provider: "oauth2", TokenURL: r.api.srv.URL + "/token", BaseURL: r.api.srv.URL + "/api",
			ClientID: "id", ClientSecret: "secret"},
	}}
	st, err := tokenbroker.OpenStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if r.srv, err = New(cfg, Options{Store: st, APIKey: testKey}); err != nil {
		t.Fatal(err)
	}
	lane := r.srv.Lane()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fs := front.New(ln, func(req *front.Request) bool {
		ok := lane(req)
		if ok {
			r.laneServed.Add(1)
		}
		return ok
	}, &http.Server{Handler: r.srv.Handler()})
	go fs.Serve()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		fs.Shutdown(ctx)
	})
	plain := httptest.NewServer(r.srv.Handler())
	t.Cleanup(plain.Close)
	r.front, r.plain = "http://"+ln.Addr().String(), plain.URL
	return r
}

// answer is a response as compared between the two paths.
type answer struct {
	status int
	header http.Header
	body   string
	seen   seen
}

func (r *laneRig) call(t *testing.T, base, method, path string, body []byte, header http.Header) answer {
	t.Helper()
	req, _ := http.NewRequest(method, base+path, bytes.NewReader(body))
	if body == nil {
		req.Body = nil
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	resp.Header.Del("Date")
	return answer{resp.StatusCode, resp.Header, string(b), r.api.last()}
}

// The lane and net/http's path give the same answers and send the vendor
// the same calls: the caller's fields but not its Authorization, cookies
// or forwarding fields; the vendor's fields but not its hop-by-hop ones;
// bodies both ways, streamed answers whole.
func TestLaneMatchesNetHTTP(t *testing.T) {
	r := newLaneRig(t)
	header := http.Header{"X-Custom": {"a", "b"}, "Cookie": {"session=caller"}, "X-Forwarded-For": {"10.0.0.1"},
		"Forwarded": {"for=10.0.0.1"}, "Accept": {"application/json"}}
	for _, c := range []struct {
		method, path string
		body         []byte
	}{
		{"GET", "/proxy/rec/items?limit=5&q=a%20b", nil},
		{"POST", "/proxy/rec/items", []byte(`{"name":"ap-1"}`)},
		{"PUT", "/proxy/rec/items/1", []byte{}},
		{"DELETE", "/proxy/rec/items/1", nil},
		{"HEAD", "/proxy/rec/items", nil},
		{"GET", "/proxy/rec/stream", nil},
		{"GET", "/proxy/rec/empty", nil},
		{"GET", "/proxy/rec/hop", nil},
		{"GET", "/proxy/rec/bighead", nil},
	} {
		before := r.laneServed.Load()
		viaLane := r.call(t, r.front, c.method, c.path, c.body, header)
		if r.laneServed.Load() != before+1 {
			t.Fatalf("%s %s: the lane did not serve it", c.method, c.path)
		}
		viaHTTP := r.call(t, r.plain, c.method, c.path, c.body, header)
		name := c.method + " " + c.path
		if viaLane.status != viaHTTP.status || viaLane.body != viaHTTP.body {
			t.Errorf("%s: lane %d %q, net/http %d %q", name, viaLane.status, viaLane.body, viaHTTP.status, viaHTTP.body)
		}
		for _, h := range []string{"Content-Type", "X-Vendor", "X-Hop", "Connection", "X-Big"} {
			if viaLane.header.Get(h) != viaHTTP.header.Get(h) {
				t.Errorf("%s: answer field %s: lane %q, net/http %q", name, h, viaLane.header.Get(h), viaHTTP.header.Get(h))
			}
		}
		l, n := viaLane.seen, viaHTTP.seen
		if l.Method != n.Method || l.Path != n.Path || l.Query != n.Query || l.Body != n.Body {
			t.Errorf("%s: vendor saw %s %s?%s %q through the lane, %s %s?%s %q through net/http",
				name, l.Method, l.Path, l.Query, l.Body, n.Method, n.Path, n.Query, n.Body)
		}
		for _, h := range []string{"Authorization", "X-Custom", "Cookie", "X-Forwarded-For", "Forwarded", "Accept", "Content-Length"} {
			if strings.Join(l.Header[h], ",") != strings.Join(n.Header[h], ",") {
				t.Errorf("%s: vendor saw %s %q through the lane, %q through net/http", name, h, l.Header[h], n.Header[h])
			}
		}
		if got := l.Header.Get("Authorization"); !strings.HasPrefix(got, "Bearer tok-") {
			t.Errorf("%s: vendor saw Authorization %q, want the profile's token", name, got)
		}
		if l.Header.Get("Cookie") != "" || l.Header.Get("X-Forwarded-For") != "" {
			t.Errorf("%s: the caller's cookie or forwarding field reached the vendor: %v", name, l.Header)
		}
	}
	if got := r.call(t, r.front, "GET", "/proxy/rec/stream", nil, nil).body; got != "data: 0\n\ndata: 1\n\ndata: 2\n\n" {
		t.Errorf("streamed answer %q", got)
	}
}

// A vendor answer whose head is over h1.MaxHeadBytes is a 502 on both
// paths, and the call is not sent again.
func TestHugeVendorHeadIsRefusedOnBothPaths(t *testing.T) {
	r := newLaneRig(t)
	for _, base := range []string{r.front, r.plain} {
		r.call(t, base, "GET", "/proxy/rec/items", nil, nil) // the next call goes on a reused connection
		r.api.mu.Lock()
		calls := len(r.api.seen)
		r.api.mu.Unlock()
		a := r.call(t, base, "GET", "/proxy/rec/hugehead", nil, nil)
		if a.status != http.StatusBadGateway || !strings.Contains(a.body, "larger than 1048576 bytes") {
			t.Errorf("%s: %d %q, want 502 naming the limit", base, a.status, a.body)
		}
		r.api.mu.Lock()
		calls = len(r.api.seen) - calls
		r.api.mu.Unlock()
		if calls != 1 {
			t.Errorf("%s: the vendor saw the call %d times, want once", base, calls)
		}
	}
}

// Through the lane, a vendor 401 renews the token and retries once, and a
// vendor 429 is retried once after its Retry-After.
func TestLaneRetries(t *testing.T) {
	r := newLaneRig(t)
	a := r.call(t, r.front, "GET", "/proxy/rec/flaky/401?k=1", nil, nil)
	if a.status != http.StatusOK || r.api.tokens.Load() != 2 {
		t.Errorf("after a 401: %d %q with %d token requests, want 200 after a renewal (2)", a.status, a.body, r.api.tokens.Load())
	}
	if got := a.seen.Header.Get("Authorization"); got != "Bearer tok-2" {
		t.Errorf("the retry carried %q, want the renewed token", got)
	}
	a = r.call(t, r.front, "POST", "/proxy/rec/flaky/429?k=2", []byte("payload"), nil)
	if a.status != http.StatusOK || a.seen.Body != "payload" {
		t.Errorf("after a 429: %d %q, vendor saw body %q; want 200 and the body resent", a.status, a.body, a.seen.Body)
	}
}

// What the lane leaves alone still works, through net/http: a body larger
// than the replay limit, a chunked upload, a wrong broker key, a refused
// path, an unknown profile.
func TestLaneLeavesTheRestToNetHTTP(t *testing.T) {
	r := newLaneRig(t)
	big := bytes.Repeat([]byte("x"), tokenbroker.MaxReplayBody+10)
	if a := r.call(t, r.front, "POST", "/proxy/rec/upload", big, nil); a.status != 200 || len(a.seen.Body) != len(big) {
		t.Errorf("large upload: %d, vendor got %d bytes", a.status, len(a.seen.Body))
	}
	c, err := net.Dial("tcp", strings.TrimPrefix(r.front, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /proxy/rec/upload HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", testKey)
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil || resp.StatusCode != 200 || r.api.last().Body != "abc" {
		t.Errorf("chunked upload: %v %v, vendor got %q", resp, err, r.api.last().Body)
	}
	if r.laneServed.Load() != 0 {
		t.Errorf("the lane served %d of these", r.laneServed.Load())
	}
	for path, want := range map[string]int{"/proxy/rec/../x": 400, "/proxy/nobody/x": 404} {
		code, body := rawGet(t, r.front, path)
		var e struct{ Error string }
		if code != want || json.Unmarshal([]byte(body), &e) != nil || e.Error == "" {
			t.Errorf("%s: %d %s, want %d with a JSON error", path, code, body, want)
		}
	}
	req, _ := http.NewRequest("GET", r.front+"/proxy/rec/items", nil)
	req.Header.Set("Authorization", "Bearer wrong-key-of-the-same-len")
	resp, err = http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("wrong key: %v %v, want 401", resp, err)
	}
}

// A token request the token in memory answers takes the lane, with the
// same answer as net/http's; any other (first request, options, unknown
// profile, wrong key) is net/http's.
func TestTokenLane(t *testing.T) {
	r := newLaneRig(t)
	// A connection stays with net/http once handed to it: each request here
	// opens its own.
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	get := func(base, path, key string) (int, http.Header, string) {
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(b)
	}
	code, _, first := get(r.front, "/v1/profiles/rec/token", testKey)
	if code != 200 || r.laneServed.Load() != 0 {
		t.Fatalf("first token request: %d %s, lane served %d; want net/http to obtain it", code, first, r.laneServed.Load())
	}
	code, laneHeader, viaLane := get(r.front, "/v1/profiles/rec/token", testKey)
	if code != 200 || r.laneServed.Load() != 1 {
		t.Fatalf("second token request: %d, lane served %d; want the lane", code, r.laneServed.Load())
	}
	_, httpHeader, viaHTTP := get(r.plain, "/v1/profiles/rec/token", testKey)
	if viaLane != viaHTTP || viaLane != first {
		t.Errorf("lane answered %q, net/http %q", viaLane, viaHTTP)
	}
	for _, h := range []string{"Content-Type", "Cache-Control", "Content-Length"} {
		if laneHeader.Get(h) != httpHeader.Get(h) {
			t.Errorf("%s: lane %q, net/http %q", h, laneHeader.Get(h), httpHeader.Get(h))
		}
	}
	if _, err := http.ParseTime(laneHeader.Get("Date")); err != nil {
		t.Errorf("Date %q: %v", laneHeader.Get("Date"), err)
	}
	for path, want := range map[string]int{"/v1/profiles/rec/token?min_ttl=1m": 200, "/v1/profiles/nobody/token": 404} {
		if code, _, body := get(r.front, path, testKey); code != want {
			t.Errorf("%s: %d %s, want %d", path, code, body, want)
		}
	}
	if code, _, _ := get(r.front, "/v1/profiles/rec/token", "wrong-key-of-the-same-len"); code != http.StatusUnauthorized {
		t.Errorf("wrong key: %d, want 401", code)
	}
	if r.laneServed.Load() != 1 {
		t.Errorf("the lane served %d requests, want only the one", r.laneServed.Load())
	}
}
