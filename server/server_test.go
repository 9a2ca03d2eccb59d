package server

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker"
	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/emulator"
)

const testKey = "test-broker-key-0123456789"

// loadMargin widens the rate-limit window of the rig's Aruba profile. The
// margin absorbs the delay between a call's slot and its arrival at the
// vendor; on a 2-core machine running the whole suite at once, scheduling
// alone delayed a call by more than the default 30 ms and the emulator saw
// 8 calls in one second.
const loadMargin = 150 * time.Millisecond

// rig is serve's handler over the emulators, each behind its own test
// server so a test can take one down.
// arrivals records when API calls reached the vendor.
type arrivals struct {
	mu    sync.Mutex
	times []time.Time
}

func (a *arrivals) add(t time.Time) { a.mu.Lock(); a.times = append(a.times, t); a.mu.Unlock() }

// rate is the calls per second between the first and the last arrival since
// index from, free of the edges of a measuring window.
func (a *arrivals) rate(from int) float64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	ts := a.times[from:]
	if len(ts) < 2 {
		return 0
	}
	return float64(len(ts)-1) / ts[len(ts)-1].Sub(ts[0]).Seconds()
}

func (a *arrivals) count() int { a.mu.Lock(); defer a.mu.Unlock(); return len(a.times) }

type rig struct {
	arrivals *arrivals
	set      *emulator.Set
	aruba    *httptest.Server
	srv      *Server
	api      *served
	st       interface{ Close() error }
	cancel   context.CancelFunc
	runDone  chan struct{}
}

func newRig(t *testing.T, maxWait time.Duration) *rig {
	t.Helper()
	set, err := emulator.Start("127.0.0.1", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set.Close)
	r := &rig{set: set}
	r.arrivals = &arrivals{}
	r.aruba = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/monitoring/v1/aps" {
			r.arrivals.add(time.Now())
		}
		set.Aruba.ServeHTTP(w, req)
	}))
	t.Cleanup(r.aruba.Close)
	cfg := &config.Config{State: "sqlite:" + filepath.Join(t.TempDir(), "state.db"), Profiles: map[string]*config.Profile{
		"aruba": {Provider: "aruba-central", BaseURL: r.aruba.URL, ClientID: config.Secret(set.Aruba.ClientID),
			ClientSecret: config.Secret(set.Aruba.ClientSecret), CustomerID: set.Aruba.CustomerID,
			Username: config.Secret(set.Aruba.Username), Password: config.Secret(set.Aruba.Password),
			RateLimit: &config.RateLimit{MaxWait: maxWait, Margin: loadMargin}},
		"ruckus": {Provider: "ruckus-one", BaseURL: set.URLs["ruckus-one"], TenantID: set.Ruckus.TenantID,
			ClientID: config.Secret(set.Ruckus.ClientID), ClientSecret: config.Secret(set.Ruckus.ClientSecret)},
	}}
	for n, p := range cfg.Profiles {
		p.Name = n
	}
	st, err := tokenbroker.OpenStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.st = st
	t.Cleanup(func() { st.Close() })
	r.srv, err = New(cfg, Options{Store: st, APIKey: testKey})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.srv.Broker().Import(context.Background(), "aruba", set.Aruba.IssueOfflineToken(), tokenbroker.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	r.api = serveFront(t, r.srv)
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.runDone = cancel, make(chan struct{})
	go func() { r.srv.Run(ctx); close(r.runDone) }()
	t.Cleanup(func() { cancel(); <-r.runDone })
	return r
}

// served is the local API as `serve` runs it.
type served struct {
	URL string
}

func serveFront(t *testing.T, srv *Server) *served {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs, ln := srv.HTTPServer(ln, nil)
	done := make(chan struct{})
	go func() { hs.Serve(ln); close(done) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		hs.Shutdown(ctx)
		<-done
	})
	return &served{URL: "http://" + ln.Addr().String()}
}

// serveConfig runs serve for cfg, on a store of its own, as `serve` runs
// it; it returns the server and its URL. log may be nil.
func serveConfig(t *testing.T, cfg *config.Config, log *slog.Logger) (*Server, string) {
	t.Helper()
	st, err := tokenbroker.OpenStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	srv, err := New(cfg, Options{Store: st, APIKey: testKey, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	return srv, serveFront(t, srv).URL
}

func (r *rig) get(t *testing.T, path, key string) (int, []byte) {
	t.Helper()
	return send(t, http.MethodGet, r.api.URL+path, key)
}

// send makes one call with the broker key (none when key is "").
func send(t *testing.T, method, url, key string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestBrokerKeyIsRequired(t *testing.T) {
	r := newRig(t, time.Second)
	for _, path := range []string{"/v1/profiles", "/v1/profiles/ruckus/token", "/proxy/ruckus/venues", "/metrics", "/readyz"} {
		for _, key := range []string{"", "wrong-key", testKey + "x"} {
			if code, _ := r.get(t, path, key); code != http.StatusUnauthorized {
				t.Errorf("%s with key %q: %d, want 401", path, key, code)
			}
		}
	}
	if code, _ := r.get(t, "/healthz", ""); code != http.StatusOK {
		t.Errorf("/healthz: %d, want 200 without a key", code)
	}
	if n := r.set.Ruckus.Counts()["api"]; n != 0 {
		t.Errorf("unauthenticated requests reached the vendor API %d times", n)
	}
}

func TestTokenAPIAndProfiles(t *testing.T) {
	r := newRig(t, time.Second)
	code, body := r.get(t, "/v1/profiles/ruckus/token", testKey)
	var h tokenbroker.Handout
	if code != 200 || json.Unmarshal(body, &h) != nil || h.AccessToken == "" || h.ExpiresAt == "" || h.Headers["Authorization"] != "Bearer "+h.AccessToken {
		t.Fatalf("token: %d %s", code, body)
	}
	if _, err := time.Parse(time.RFC3339, h.ExpiresAt); err != nil {
		t.Errorf("expires_at %q is not RFC 3339", h.ExpiresAt)
	}
	code, body = r.get(t, "/v1/profiles", testKey)
	if code != 200 || !strings.Contains(string(body), `"profile":"aruba"`) {
		t.Fatalf("profiles: %d %s", code, body)
	}
	for _, secret := range []string{r.set.Aruba.ClientSecret, r.set.Ruckus.ClientSecret, h.AccessToken} {
		if strings.Contains(string(body), secret) {
			t.Errorf("/v1/profiles shows a secret")
		}
	}
	if code, body := r.get(t, "/v1/profiles/nope/token", testKey); code != http.StatusNotFound || !strings.Contains(string(body), "unknown profile") {
		t.Errorf("unknown profile: %d %s", code, body)
	}
	req, _ := http.NewRequest(http.MethodPost, r.api.URL+"/v1/profiles/ruckus/refresh", nil)
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var h2 tokenbroker.Handout
	json.NewDecoder(resp.Body).Decode(&h2)
	resp.Body.Close()
	if resp.StatusCode != 200 || h2.AccessToken == h.AccessToken {
		t.Errorf("refresh: %d, new token %v", resp.StatusCode, h2.AccessToken != h.AccessToken)
	}
}

// rawGet sends a request line exactly as written, so no client cleans the path.
func rawGet(t *testing.T, base, path string) (int, string) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nConnection: close\r\n\r\n", path, testKey)
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestProxyRefusesToLeaveTheProfilesAPI(t *testing.T) {
	r := newRig(t, time.Second)
	if code, body := rawGet(t, r.api.URL, "/proxy/ruckus/venues"); code != 200 {
		t.Fatalf("a good path: %d %s", code, body)
	}
	before := r.set.Ruckus.Counts()["api"]
	for _, path := range []string{
		"/proxy/ruckus/../aruba/monitoring/v1/aps", "/proxy/ruckus/%2e%2e/%2e%2e/admin", "/proxy/ruckus//evil.example/x",
		"/proxy/ruckus/venues%2f..%2f..%2fadmin", "/proxy/ruckus/http://evil.example/", "/proxy/ruckus/a%5c..%5cb",
		"/proxy/ruckus/./venues", "/proxy/ruckus/%252e%252e/x", "/proxy/ruckus/venues/%2e%2e/%2e%2e",
	} {
		code, body := rawGet(t, r.api.URL, path)
		if code == 200 || code/100 == 5 {
			t.Errorf("%s: %d %s, want a refusal", path, code, body)
		}
	}
	if after := r.set.Ruckus.Counts()["api"]; after != before {
		t.Errorf("refused paths reached the vendor %d times", after-before)
	}
}

func TestVendorDown(t *testing.T) {
	r := newRig(t, time.Second)
	code, body := r.get(t, "/v1/profiles/aruba/token", testKey)
	if code != 200 {
		t.Fatalf("token: %d %s", code, body)
	}
	var cached tokenbroker.Handout
	json.Unmarshal(body, &cached)
	r.aruba.Close() // the vendor is gone
	code, body = r.get(t, "/v1/profiles/aruba/token", testKey)
	var again tokenbroker.Handout
	json.Unmarshal(body, &again)
	if code != 200 || again.AccessToken != cached.AccessToken {
		t.Errorf("token while the vendor is down: %d %s, want the cached token", code, body)
	}
	code, body = r.get(t, "/proxy/aruba/monitoring/v1/aps", testKey)
	if code != http.StatusBadGateway || !strings.Contains(string(body), "could not be reached") || !strings.Contains(string(body), `profile \"aruba\"`) {
		t.Errorf("proxy while the vendor is down: %d %s, want 502 with a clear body", code, body)
	}
}

// TestLoadThroughProxyKeepsArubasLimit is the issue's load test: 200
// concurrent clients at a demand of 50 req/s for 10 s through the proxy to
// Aruba (7 calls/s per customer). The emulator never answers 429, the rate
// it accepts is within 5% of 7/s, revoking the access tokens mid-run costs no
// client an error, and afterwards the goroutines return to their baseline.
func TestLoadThroughProxyKeepsArubasLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("10 s load test")
	}
	r := newRig(t, time.Minute)
	baseline := runtime.NumGoroutine()
	const clients, demand, duration = 200, 50, 10 * time.Second
	ctx, stop := context.WithTimeout(context.Background(), duration)
	defer stop()
	acceptedBefore, _ := r.set.Aruba.APIStats()
	arrivedBefore := r.arrivals.count()
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}}
	var ok, failed, cut atomic.Int64
	var firstErr atomic.Value
	tickets := make(chan struct{})
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range tickets {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.api.URL+"/proxy/aruba/monitoring/v1/aps", nil)
				req.Header.Set("Authorization", "Bearer "+testKey)
				resp, err := hc.Do(req)
				switch {
				case ctx.Err() != nil:
					cut.Add(1) // the run ended while this call queued
				case err != nil:
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
				default:
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					if resp.StatusCode == 200 {
						ok.Add(1)
					} else {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, fmt.Sprintf("%d %s", resp.StatusCode, b))
					}
				}
			}
		}()
	}
	start := time.Now()
	ticker := time.NewTicker(time.Second / demand)
	revoked := false
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-ticker.C:
			if !revoked && time.Since(start) > duration/2 {
				r.set.Aruba.RevokeAccessTokens()
				revoked = true
			}
			select {
			case tickets <- struct{}{}:
			default: // every client is busy: the demand exceeds what the limit lets through
			}
		}
	}
	ticker.Stop()
	close(tickets)
	wg.Wait()
	elapsed := time.Since(start)
	accepted, limited := r.set.Aruba.APIStats()
	accepted -= acceptedBefore
	// The rate the limiter let through (the call the revoke turned into a
	// 401 included), between the first and the last arrival at the vendor.
	rate := r.arrivals.rate(arrivedBefore)
	t.Logf("%d ok, %d failed, %d cut at the end; emulator accepted %d in %s = %.2f/s, answered 429 %d times",
		ok.Load(), failed.Load(), cut.Load(), accepted, elapsed.Round(time.Millisecond), rate, limited)
	if limited != 0 {
		t.Errorf("the emulator answered 429 %d times", limited)
	}
	if failed.Load() != 0 {
		t.Errorf("%d client errors, first: %v", failed.Load(), firstErr.Load())
	}
	want := 7 / (1 + loadMargin.Seconds())
	if rate < want*0.95 || rate > want*1.05 {
		t.Errorf("achieved %.2f/s, want within 5%% of %.2f/s (7 per %s)", rate, want, time.Second+loadMargin)
	}
	if c := r.set.Aruba.Counts()["refresh_token"]; c != 1 {
		t.Errorf("%d refreshes after the revoke, want exactly 1", c)
	}
	hc.CloseIdleConnections()
	r.cancel()
	<-r.runDone
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > baseline+10 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond) // connections wind down asynchronously
	}
	if n := runtime.NumGoroutine(); n > baseline+10 {
		t.Errorf("%d goroutines after the load, baseline %d", n, baseline)
	}
}

func TestDailyQuotaAndMetrics(t *testing.T) {
	r := newRig(t, time.Second)
	r.set.Aruba.DailyQuota = 3
	for i := range 3 {
		if code, body := r.get(t, "/proxy/aruba/monitoring/v1/aps", testKey); code != 200 {
			t.Fatalf("call %d: %d %s", i, code, body)
		}
	}
	req, _ := http.NewRequest(http.MethodGet, r.api.URL+"/proxy/aruba/monitoring/v1/aps", nil)
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get(tokenbroker.RefusedHeader) == "" || !strings.Contains(string(body), "daily quota") {
		t.Fatalf("after the quota: %d %v %s, want tokenbroker's own 429", resp.StatusCode, resp.Header, body)
	}
	if accepted, limited := r.set.Aruba.APIStats(); accepted != 3 || limited != 0 {
		t.Errorf("the emulator saw %d accepted and %d refused calls, want 3 and 0: a spent quota must not be called", accepted, limited)
	}
	code, metrics := r.get(t, "/metrics", testKey)
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	for _, want := range []string{
		`tokenbroker_quota_remaining{profile="aruba"} 0`,
		`tokenbroker_quota_limit{profile="aruba"} 3`,
		`tokenbroker_proxy_requests_total{client="admin",code="200",profile="aruba"} 3`,
		`tokenbroker_proxy_requests_total{client="admin",code="429",profile="aruba"} 1`,
		`tokenbroker_ratelimit_refusals_total{profile="aruba"} 1`,
		`tokenbroker_tokens{state="valid"}`,
		`tokenbroker_token_expiry_seconds{profile="aruba"}`,
	} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(string(metrics), r.set.Aruba.ClientSecret) {
		t.Error("/metrics shows a secret")
	}
}

// ?id_token=true asks for the OpenID id_token too: a profile whose server
// sent none says so (400, naming the scope to ask for), and a value that is
// no boolean is a bad request.
func TestTokenRouteIDToken(t *testing.T) {
	r := newRig(t, time.Second)
	if code, body := r.get(t, "/v1/profiles/ruckus/token?id_token=true", testKey); code != http.StatusBadRequest || !strings.Contains(string(body), "id_token") {
		t.Errorf("no id_token sent: %d %s", code, body)
	}
	if code, body := r.get(t, "/v1/profiles/ruckus/token?id_token=maybe", testKey); code != http.StatusBadRequest {
		t.Errorf("id_token=maybe: %d %s", code, body)
	}
	if code, body := r.get(t, "/v1/profiles/ruckus/token?id_token=false", testKey); code != http.StatusOK || strings.Contains(string(body), `"id_token"`) {
		t.Errorf("id_token=false: %d %s", code, body)
	}
}
