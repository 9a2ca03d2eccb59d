package tokenbroker

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/config"
)

// Two profiles on one vendor host never share a connection: each remote
// address the vendor sees carries one credential only.
func TestProfilesNeverShareAVendorConnection(t *testing.T) {
	var mu sync.Mutex
	byConn := map[string]map[string]bool{} // caller address -> Authorization values seen on it
	var tokens int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.URL.Path == "/token" {
			tokens++
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"access_token":"at-%d","expires_in":3600}`, tokens)
			return
		}
		if byConn[r.RemoteAddr] == nil {
			byConn[r.RemoteAddr] = map[string]bool{}
		}
		byConn[r.RemoteAddr][r.Header.Get("Authorization")] = true
	}))
	defer srv.Close()
	cfg := &config.Config{State: "sqlite:" + filepath.Join(t.TempDir(), "state.db"), Profiles: map[string]*config.Profile{}}
	for _, n := range []string{"a", "b"} {
		cfg.Profiles[n] = &config.Profile{Name: n, Provider: "oauth2", TokenURL: srv.URL + "/token", BaseURL: srv.URL,
			ClientID: config.Secret("id-" + n), ClientSecret: "secret"}
	}
	st, err := OpenStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b := New(cfg, Options{Store: st})
	defer b.Close()
	for i := range 20 {
		name := []string{"a", "b"}[i%2]
		hc, _ := b.HTTPClient(name)
		resp, err := hc.Get(srv.URL + "/x")
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	mu.Lock()
	defer mu.Unlock()
	if len(byConn) < 2 {
		t.Fatalf("the vendor saw %d connections, want one per profile at least", len(byConn))
	}
	for addr, auths := range byConn {
		if len(auths) != 1 {
			t.Errorf("connection %s carried %d credentials: %v", addr, len(auths), auths)
		}
	}
	if n := b.conns.open(); n != 2 {
		t.Errorf("%d pools open, want 2", n)
	}
}

// A profile's pool that has not been used for twice the idle timeout is
// dropped when another is asked for.
func TestIdlePoolsAreDropped(t *testing.T) {
	var c conns
	start := time.Unix(1_700_000_000, 0)
	c.get("a", start)
	c.get("b", start.Add(apiIdleTimeout))
	c.get("b", start.Add(3*apiIdleTimeout))
	if n := c.open(); n != 1 {
		t.Errorf("%d pools open after a's idle time, want b's alone", n)
	}
	c.close()
	if n := c.open(); n != 0 {
		t.Errorf("%d pools open after close", n)
	}
}

// Transport applies the proxy's path and method rule to every call, so
// that `curl` and HTTPClient cannot send what the proxy refuses.
func TestTransportRefusesPathsAndMethodsThatTheProxyRefuses(t *testing.T) {
	api := &flakyAPI{}
	b, base := newAPIBroker(t, api, 0)
	hc, _ := b.HTTPClient("p")
	for _, c := range []struct{ method, path string }{
		{"GET", "/a/..%3b/admin"}, {"GET", "/a/%2e%2e/x"}, {"GET", "/a%5cb"}, {"GET", "//evil.example/x"},
		{"CONNECT", "/x"}, {"get", "/x"}, {"TRACE", "/x"},
	} {
		req, err := http.NewRequest(c.method, base+c.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if resp, err := hc.Do(req); err == nil {
			resp.Body.Close()
			t.Errorf("%s %s: sent (%d), want a refusal", c.method, c.path, resp.StatusCode)
		} else if !strings.Contains(err.Error(), `profile "p"`) {
			t.Errorf("%s %s: %v, want an error naming the profile", c.method, c.path, err)
		}
	}
	if api.calls.Load() != 0 || api.tokens.Load() != 0 {
		t.Errorf("the vendor saw %d calls and %d token requests, want none", api.calls.Load(), api.tokens.Load())
	}
}
