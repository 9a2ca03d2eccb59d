package server

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/config"
)

// What the proxy sends and answers: the caller's end-to-end fields but not
// its Authorization, cookies, forwarding or hop-by-hop fields; the vendor's
// fields but not its hop-by-hop ones; bodies both ways; a streamed answer
// as it comes; a 204 and a HEAD without a body.
func TestProxyForwardsEndToEndFieldsOnly(t *testing.T) {
	var seen http.Header
	var seenBody string
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r.Header.Clone()
		b, _ := io.ReadAll(r.Body)
		seenBody = string(b)
		switch r.URL.Path {
		case "/api/stream":
			w.Header().Set("Content-Type", "text/event-stream")
			for i := range 3 {
				fmt.Fprintf(w, "data: %d\n\n", i)
				w.(http.Flusher).Flush()
			}
			return
		case "/api/empty":
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Connection", "X-Hop")
		w.Header().Set("X-Hop", "connection only")
		w.Header().Set("X-Vendor", "v")
		fmt.Fprintf(w, "%s %s?%s %s", r.Method, r.URL.Path, r.URL.RawQuery, b)
	}))
	defer api.Close()
	cfg := &config.Config{State: "sqlite:" + filepath.Join(t.TempDir(), "state.db"), Profiles: map[string]*config.Profile{
		"rec": {Name: "rec", Provider: "static", BaseURL: api.URL + "/api", APIKey: "vendor-key"},
	}}
	_, base := serveConfig(t, cfg, nil)
	call := func(method, path, body string) (*http.Response, string) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+testKey)
		req.Header.Set("Cookie", "session=caller")
		req.Header.Set("X-Forwarded-For", "10.0.0.1")
		req.Header.Set("Forwarded", "for=10.0.0.1")
		req.Header.Set("Connection", "X-Caller-Hop")
		req.Header.Set("X-Caller-Hop", "hop")
		req.Header["X-Custom"] = []string{"a", "b"}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	resp, body := call("POST", "/proxy/rec/items?limit=5&q=a%20b", `{"name":"ap-1"}`)
	if body != `POST /api/items?limit=5&q=a%20b {"name":"ap-1"}` || seenBody != `{"name":"ap-1"}` {
		t.Errorf("answer %q, vendor got body %q", body, seenBody)
	}
	if got := seen.Get("Authorization"); got != "Bearer vendor-key" {
		t.Errorf("the vendor saw Authorization %q", got)
	}
	for _, f := range []string{"Cookie", "X-Forwarded-For", "Forwarded", "X-Caller-Hop"} {
		if seen.Get(f) != "" {
			t.Errorf("the caller's %s reached the vendor: %q", f, seen.Get(f))
		}
	}
	if strings.Join(seen["X-Custom"], ",") != "a,b" {
		t.Errorf("X-Custom %q", seen["X-Custom"])
	}
	if resp.Header.Get("X-Vendor") != "v" || resp.Header.Get("X-Hop") != "" {
		t.Errorf("answer fields %v: want X-Vendor, not the vendor's hop-by-hop X-Hop", resp.Header)
	}
	if _, body := call("GET", "/proxy/rec/stream", ""); body != "data: 0\n\ndata: 1\n\ndata: 2\n\n" {
		t.Errorf("streamed answer %q", body)
	}
	if resp, body := call("GET", "/proxy/rec/empty", ""); resp.StatusCode != http.StatusNoContent || body != "" {
		t.Errorf("204: %d %q", resp.StatusCode, body)
	}
	if resp, body := call("HEAD", "/proxy/rec/items", ""); resp.StatusCode != 200 || body != "" {
		t.Errorf("HEAD: %d %q", resp.StatusCode, body)
	}
}

// A /proxy/ name that is no profile is a 404 that makes no metric series.
func TestUnknownProxyProfileMakesNoSeries(t *testing.T) {
	r := newHostileRig(t, config.Serve{})
	name := "no-such-profile-" + strings.Repeat("x", 100)
	if code, _ := r.call(t, http.DefaultClient, "GET", "/proxy/"+name+"/x", ""); code != http.StatusNotFound {
		t.Errorf("unknown profile: %d, want 404", code)
	}
	for _, mf := range scrape(t, r.srv) {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if strings.Contains(l.GetValue(), "no-such-profile") {
					t.Errorf("%s has a series for the unknown name", mf.GetName())
				}
			}
		}
	}
}

// The token route matched before the mux answers as the mux does: the
// same JSON for a plain and an escaped path, 401 without the key, 405 for
// another method.
func TestTokenRouteAnswersAsTheMux(t *testing.T) {
	r := newHostileRig(t, config.Serve{})
	get := func(method, path, key string) (int, string) {
		code, b := send(t, method, r.url+path, key)
		return code, string(b)
	}
	code, plain := get("GET", "/v1/profiles/a/token", testKey)
	code2, escaped := get("GET", "/v1/profiles/%61/token", testKey)
	if code != 200 || code2 != 200 || plain != escaped || !strings.Contains(plain, `"access_token":"key-a"`) {
		t.Errorf("plain %d %q, escaped %d %q", code, plain, code2, escaped)
	}
	if code, _ := get("GET", "/v1/profiles/a/token", ""); code != http.StatusUnauthorized {
		t.Errorf("no key: %d", code)
	}
	if code, _ := get("GET", "/v1/profiles/a/token", "wrong-key-of-the-same-length-x"); code != http.StatusUnauthorized {
		t.Errorf("wrong key: %d", code)
	}
	if code, _ := get("DELETE", "/v1/profiles/a/token", testKey); code != http.StatusMethodNotAllowed {
		t.Errorf("DELETE: %d, want 405", code)
	}
	if code, _ := get("GET", "/v1/profiles/nobody/token", testKey); code != http.StatusNotFound {
		t.Errorf("unknown profile: %d, want 404", code)
	}
}

// A reload keeps what was counted against each vendor account: a call
// right after it still waits for the vendor's next slot.
func TestReloadKeepsTheRateLimitWindow(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer api.Close()
	cfg := &config.Config{State: "sqlite:" + filepath.Join(t.TempDir(), "state.db"), Profiles: map[string]*config.Profile{
		"p": {Name: "p", Provider: "static", BaseURL: api.URL, APIKey: "k", RateLimit: &config.RateLimit{PerSecond: 1, MaxWait: 10 * time.Millisecond}},
	}}
	srv, base := serveConfig(t, cfg, nil)
	if code, _ := send(t, "GET", base+"/proxy/p/x", testKey); code != 200 {
		t.Fatalf("first call: %d", code)
	}
	srv.Reload(cfg)
	if code, _ := send(t, "GET", base+"/proxy/p/x", testKey); code != http.StatusTooManyRequests {
		t.Errorf("the call right after a reload: %d, want tokenbroker's 429 (the vendor's 1/s window was reset)", code)
	}
}
