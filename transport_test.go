package tokenbroker

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/ratelimit"
)

// flakyAPI is a vendor: a token endpoint and an API that can be told to
// answer 401 or 429 once. The API echoes the body it received.
type flakyAPI struct {
	tokens   atomic.Int64
	calls    atomic.Int64
	fail401  atomic.Bool
	fail429  atomic.Bool
	lastAuth atomic.Value
}

func (f *flakyAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/token" {
		n := f.tokens.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"at-%d","expires_in":3600}`, n)
		return
	}
	f.calls.Add(1)
	f.lastAuth.Store(r.Header.Get("Authorization"))
	if f.fail401.CompareAndSwap(true, false) {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if f.fail429.CompareAndSwap(true, false) {
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(http.StatusTooManyRequests)
		return
	}
	b, _ := io.ReadAll(r.Body)
	fmt.Fprintf(w, "%s %s %s", r.Method, r.URL.Path, b)
}

func newAPIBroker(t *testing.T, api *flakyAPI, perSecond float64) (*Broker, string) {
	t.Helper()
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	cfg := &config.Config{State: "sqlite:" + filepath.Join(t.TempDir(), "state.db"), Profiles: map[string]*config.Profile{
		"p": {Name: "p", Provider: "oauth2", TokenURL: srv.URL + "/token", BaseURL: srv.URL, ClientID: "id", ClientSecret: "secret",
			RateLimit: &config.RateLimit{PerSecond: perSecond}},
	}}
	st, err := OpenStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b := New(cfg, Options{Store: st})
	t.Cleanup(func() { b.Close() })
	return b, srv.URL
}

func TestHTTPClientRenewsOnceAndReplaysTheBodyOn401(t *testing.T) {
	api := &flakyAPI{}
	b, base := newAPIBroker(t, api, 0)
	hc, err := b.HTTPClient("p")
	if err != nil {
		t.Fatal(err)
	}
	api.fail401.Store(true)
	req, _ := http.NewRequest(http.MethodPost, base+"/things", strings.NewReader(`{"name":"x"}`))
	req.Header.Set("Authorization", "Bearer caller-secret")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(body) != `POST /things {"name":"x"}` {
		t.Fatalf("got %d %q, want the replayed POST to succeed", resp.StatusCode, body)
	}
	if api.tokens.Load() != 2 || api.calls.Load() != 2 || api.lastAuth.Load() != "Bearer at-2" {
		t.Errorf("tokens %d calls %d auth %v: want one renewal and one retry with the new token", api.tokens.Load(), api.calls.Load(), api.lastAuth.Load())
	}
}

func TestHTTPClientRetriesOnceAfter429(t *testing.T) {
	api := &flakyAPI{}
	b, base := newAPIBroker(t, api, 0)
	hc, _ := b.HTTPClient("p")
	api.fail429.Store(true)
	resp, err := hc.Get(base + "/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || api.calls.Load() != 2 {
		t.Fatalf("status %d after %d calls, want 200 after 2", resp.StatusCode, api.calls.Load())
	}
}

func TestHTTPClientReachesOnlyTheProfilesAPI(t *testing.T) {
	api := &flakyAPI{}
	b, _ := newAPIBroker(t, api, 0)
	hc, _ := b.HTTPClient("p")
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("the client reached another host")
	}))
	defer other.Close()
	if _, err := hc.Get(other.URL + "/steal"); err == nil || !strings.Contains(err.Error(), "outside the profile's API") {
		t.Fatalf("err %v", err)
	}
	if api.tokens.Load() != 0 {
		t.Error("a token was fetched for a refused request")
	}
}

func TestHTTPClientAnswers429WhenTheQueueIsFull(t *testing.T) {
	api := &flakyAPI{}
	b, base := newAPIBroker(t, api, 1)
	b.cfg.Profiles["p"].RateLimit.MaxWait = 1 // 1 ns: no queueing at all
	hc, _ := b.HTTPClient("p")
	first, err := hc.Get(base + "/a")
	if err != nil {
		t.Fatal(err)
	}
	first.Body.Close()
	second, err := hc.Get(base + "/b")
	if err != nil {
		t.Fatal(err)
	}
	second.Body.Close()
	if first.StatusCode != 200 || second.StatusCode != http.StatusTooManyRequests || second.Header.Get(RefusedHeader) == "" || second.Header.Get("Retry-After") == "" {
		t.Fatalf("got %d then %d %v; want the second refused by tokenbroker with Retry-After", first.StatusCode, second.StatusCode, second.Header)
	}
	if api.calls.Load() != 1 {
		t.Errorf("%d calls reached the API, want 1", api.calls.Load())
	}
}

func TestTokenSource(t *testing.T) {
	api := &flakyAPI{}
	b, _ := newAPIBroker(t, api, 0)
	ts := b.TokenSource("p")
	t1, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	t2, _ := ts.Token()
	if t1.AccessToken != "at-1" || t2.AccessToken != "at-1" || t1.Expiry.IsZero() || api.tokens.Load() != 1 {
		t.Fatalf("tokens %q %q expiry %v after %d requests", t1.AccessToken, t2.AccessToken, t1.Expiry, api.tokens.Load())
	}
	if _, err := b.TokenSource("nope").Token(); err == nil {
		t.Error("an unknown profile gave a token")
	}
}

// A path that always answers 401 does not make every call a token
// request: a 401 renews the token at most once per renew_on_401_every,
// however many calls see it, and the renewed token's 401 is passed on.
func TestAlways401RenewsAtMostOncePerInterval(t *testing.T) {
	api := &flakyAPI{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/token" {
			api.ServeHTTP(w, r)
			return
		}
		api.calls.Add(1)
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer srv.Close()
	cfg := &config.Config{State: "sqlite:" + filepath.Join(t.TempDir(), "state.db"), Profiles: map[string]*config.Profile{
		"p": {Name: "p", Provider: "oauth2", TokenURL: srv.URL + "/token", BaseURL: srv.URL, ClientID: "id", ClientSecret: "secret"},
	}}
	st, err := OpenStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{now: time.Now()}
	b := New(cfg, Options{Store: st, Now: clk.Now})
	defer b.Close()
	hc, _ := b.HTTPClient("p")
	calls := func(n int) {
		for range n {
			resp, err := hc.Get(srv.URL + "/always401")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d, want the vendor's 401 passed on", resp.StatusCode)
			}
		}
	}
	calls(20)
	if n := api.tokens.Load(); n != 2 {
		t.Errorf("20 calls made %d token requests, want 2 (the first token and one renewal)", n)
	}
	clk.Add(DefaultRenewOn401Every / 2)
	calls(5)
	if n := api.tokens.Load(); n != 2 {
		t.Errorf("within the interval: %d token requests, want still 2", n)
	}
	clk.Add(DefaultRenewOn401Every)
	calls(20)
	if n := api.tokens.Load(); n != 3 {
		t.Errorf("20 more calls after the interval made %d token requests in all, want 3", n)
	}
}

// A caller of HTTPClient cannot send the profile's credential under
// another Host or with an unchecked opaque path.
func TestHTTPClientRefusesAnotherHostHeaderOrAnOpaquePath(t *testing.T) {
	api := &flakyAPI{}
	b, base := newAPIBroker(t, api, 0)
	hc, _ := b.HTTPClient("p")
	req, _ := http.NewRequest("GET", base+"/x", nil)
	req.Host = "other.example"
	if resp, err := hc.Do(req); err == nil {
		resp.Body.Close()
		t.Error("sent with another Host")
	}
	req, _ = http.NewRequest("GET", base+"/x", nil)
	req.URL.Opaque = "//other.example/../admin"
	if resp, err := hc.Do(req); err == nil {
		resp.Body.Close()
		t.Error("sent with an opaque path")
	}
	if api.calls.Load() != 0 {
		t.Errorf("the vendor saw %d calls", api.calls.Load())
	}
}

func TestRetryAfterBeyondAnyWaitIsNotRetried(t *testing.T) {
	if d := retryAfter("9999999999999"); d < 24*time.Hour {
		t.Errorf("retryAfter = %s, want beyond any wait", d)
	}
}

// Brokers that share Accounts share each vendor account's window: a
// broker made by a reload does not start the vendor's count from zero.
func TestAccountsOutliveTheBroker(t *testing.T) {
	api := &flakyAPI{}
	srv := httptest.NewServer(api)
	defer srv.Close()
	cfg := &config.Config{State: "sqlite:" + filepath.Join(t.TempDir(), "state.db"), Profiles: map[string]*config.Profile{
		"p": {Name: "p", Provider: "oauth2", TokenURL: srv.URL + "/token", BaseURL: srv.URL, ClientID: "id", ClientSecret: "secret",
			RateLimit: &config.RateLimit{PerSecond: 1, MaxWait: 10 * time.Millisecond}},
	}}
	st, err := OpenStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	call := func(b *Broker) int {
		hc, _ := b.HTTPClient("p")
		resp, err := hc.Get(srv.URL + "/x")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	accounts := NewAccounts()
	if code := call(New(cfg, Options{Store: st, Accounts: accounts})); code != 200 {
		t.Fatalf("first call: %d", code)
	}
	if code := call(New(cfg, Options{Store: st, Accounts: accounts})); code != http.StatusTooManyRequests {
		t.Errorf("a second broker on the same accounts sent within the second (%d): the window was reset", code)
	}
	if code := call(New(cfg, Options{Store: st})); code != 200 {
		t.Errorf("a broker with accounts of its own: %d", code)
	}
}

// The daily quota is checked and recorded on the broker's clock: a test
// that moves it past midnight GMT sees calls go out again.
func TestDailyQuotaFollowsTheBrokersClock(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.Header().Set("X-RateLimit-Limit-day", "1000")
		w.Header().Set("X-RateLimit-Remaining-day", "0")
	}))
	defer srv.Close()
	cfg := &config.Config{Profiles: map[string]*config.Profile{
		"k": {Name: "k", Provider: "static", BaseURL: srv.URL, APIKey: "key"},
	}}
	clk := &clock{now: time.Date(2031, 6, 1, 23, 0, 0, 0, time.UTC)} // far from the wall clock
	b := New(cfg, Options{Now: clk.Now})
	hc, _ := b.HTTPClient("k")
	status := func() int {
		resp, err := hc.Get(srv.URL + "/x")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := status(); got != 200 {
		t.Fatalf("first call: %d", got)
	}
	if got := status(); got != http.StatusTooManyRequests || calls.Load() != 1 {
		t.Errorf("with the quota spent: %d after %d calls, want tokenbroker's 429 and no second call", got, calls.Load())
	}
	clk.Add(2 * time.Hour) // past midnight GMT
	if got := status(); got != 200 || calls.Load() != 2 {
		t.Errorf("after the reset on the broker's clock: %d after %d calls, want the call sent", got, calls.Load())
	}
}

// steppingClock moves its time forward by what it is asked to sleep.
type steppingClock struct {
	clock
	slept atomic.Int64
}

func (c *steppingClock) Sleep(ctx context.Context, d time.Duration) error {
	c.slept.Add(int64(d))
	c.Add(d)
	return ctx.Err()
}
func (c *steppingClock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.Add(d)
	ch <- c.Now()
	return ch
}

// One clock: the broker's Options.Clock paces the rate limit too, so a
// test that steps it sees the limit's wait without waiting.
func TestOneClockPacesTheRateLimit(t *testing.T) {
	api := &flakyAPI{}
	srv := httptest.NewServer(api)
	defer srv.Close()
	cfg := &config.Config{Profiles: map[string]*config.Profile{
		"k": {Name: "k", Provider: "static", BaseURL: srv.URL, APIKey: "key", RateLimit: &config.RateLimit{PerSecond: 1, MaxWait: time.Hour}},
	}}
	clk := &steppingClock{clock: clock{now: time.Date(2031, 6, 1, 12, 0, 0, 0, time.UTC)}}
	b := New(cfg, Options{Clock: clk})
	hc, _ := b.HTTPClient("k")
	start := time.Now()
	for range 3 {
		resp, err := hc.Get(srv.URL + "/x")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	if real := time.Since(start); real > 900*time.Millisecond {
		t.Errorf("three calls at 1/s took %s of real time: the limit waited on the wall clock", real)
	}
	if slept := time.Duration(clk.slept.Load()); slept < 2*time.Second {
		t.Errorf("the limit slept %s on the broker's clock, want about 2 s for three calls at 1/s", slept)
	}
}

// overSleeper is a clock on which every sleep ends late: a machine too
// busy to wake a call on its turn.
type overSleeper struct {
	clock
	by time.Duration
}

func (c *overSleeper) Sleep(_ context.Context, d time.Duration) error {
	c.Add(max(d, 0) + c.by)
	return nil
}
func (c *overSleeper) After(time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	ch <- c.Now()
	return ch
}

// A call woken well after its turn takes a new turn, and after three it
// is refused with tokenbroker's 429 rather than sent late, where it could
// squeeze one more call into the vendor's window. Woken on time, it goes.
func TestACallWokenLateIsNotSentLate(t *testing.T) {
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/token" {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"access_token":"at","token_type":"Bearer","expires_in":3600}`))
			return
		}
		calls.Add(1)
	}))
	defer srv.Close()
	for _, c := range []struct {
		late time.Duration
		want int
	}{{0, http.StatusOK}, {ratelimit.DefaultMargin, http.StatusTooManyRequests}} {
		cfg := &config.Config{State: "sqlite:" + filepath.Join(t.TempDir(), "state.db"), Profiles: map[string]*config.Profile{
			"p": {Name: "p", Provider: "oauth2", TokenURL: srv.URL + "/token", BaseURL: srv.URL, ClientID: "id", ClientSecret: "secret",
				RateLimit: &config.RateLimit{PerSecond: 7}},
		}}
		st, err := OpenStore(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		b := New(cfg, Options{Store: st, Clock: &overSleeper{clock: clock{now: time.Now()}, by: c.late}})
		hc, _ := b.HTTPClient("p")
		before := calls.Load()
		resp, err := hc.Get(srv.URL + "/x")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		sent := calls.Load() - before
		if resp.StatusCode != c.want || (c.want == http.StatusOK) != (sent == 1) {
			t.Errorf("woken %s late: %d with %d calls sent, want %d", c.late, resp.StatusCode, sent, c.want)
		}
		if c.want == http.StatusTooManyRequests && !strings.Contains(resp.Header.Get(RefusedHeader), "too busy") {
			t.Errorf("the refusal says %q", resp.Header.Get(RefusedHeader))
		}
		b.Close()
	}
}
