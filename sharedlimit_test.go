package tokenbroker

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/ratelimit"
	"github.com/tokenbroker/tokenbroker/store"
)

// sharedLimits is a store whose shared rate limit can be cut off, as a
// replica is from PostgreSQL in a partition.
type sharedLimits struct {
	store.Store
	down     atomic.Bool
	reserves atomic.Int64
}

func (s *sharedLimits) Reserve(ctx context.Context, key string, n int, window, maxWait time.Duration) (time.Duration, error) {
	s.reserves.Add(1)
	if s.down.Load() {
		return 0, errors.New("the PostgreSQL state is unavailable")
	}
	return 0, nil
}
func (s *sharedLimits) SpendQuota(context.Context, string, time.Time) error { return nil }
func (s *sharedLimits) QuotaSpent(context.Context, string) (time.Time, error) {
	return time.Time{}, nil
}

// A replica cut off from the shared limit does not fall back to a full
// limit of its own, which doubled the vendor's calls in a partition (the
// other replicas still share the whole limit): it sends nothing to the
// account, its callers get tokenbroker's 429 at once, the store is tried
// once a second rather than by every call, and the change is said once
// each way, not per call.
func TestCutOffFromTheSharedLimitSendsNothing(t *testing.T) {
	api := &flakyAPI{}
	srv := httptest.NewServer(api)
	defer srv.Close()
	cfg := &config.Config{State: "sqlite:" + filepath.Join(t.TempDir(), "state.db"), Profiles: map[string]*config.Profile{
		"p": {Name: "p", Provider: "oauth2", TokenURL: srv.URL + "/token", BaseURL: srv.URL, ClientID: "id", ClientSecret: "secret",
			RateLimit: &config.RateLimit{PerSecond: 7}},
	}}
	st, err := OpenStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	shared := &sharedLimits{Store: st}
	clk := &clock{now: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	var mu sync.Mutex
	var warned []string
	b := New(cfg, Options{Store: shared, Now: clk.Now, Warn: func(s string) { mu.Lock(); warned = append(warned, s); mu.Unlock() }})
	defer b.Close()
	hc, err := b.HTTPClient("p")
	if err != nil {
		t.Fatal(err)
	}
	call := func() int {
		resp, err := hc.Get(srv.URL + "/x")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := call(); code != 200 {
		t.Fatalf("before the cut: %d", code)
	}
	shared.down.Store(true)
	before, tried := api.calls.Load(), shared.reserves.Load()
	for i := range 20 {
		if code := call(); code != http.StatusTooManyRequests {
			t.Fatalf("call %d while cut off: %d, want tokenbroker's 429", i, code)
		}
	}
	if got := api.calls.Load() - before; got != 0 {
		t.Errorf("%d calls reached the vendor while the shared limit was unavailable", got)
	}
	if got := shared.reserves.Load() - tried; got != 1 {
		t.Errorf("the store was tried %d times by 20 calls within a second, want once", got)
	}
	clk.Add(ratelimit.StoreRetry)
	shared.down.Store(false)
	if code := call(); code != 200 {
		t.Errorf("after the store answers again: %d", code)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(warned) != 2 || !strings.Contains(warned[0], "unavailable") || !strings.Contains(warned[1], "available again") {
		t.Errorf("warnings %q, want one when cut off and one when back", warned)
	}
}

// leasingStore is a store whose replicas lease shares: each gets all.
type leasingStore struct{ sharedLimits }

func (s *leasingStore) LeaseShares(_ context.Context, asks []ratelimit.ShareAsk) ([]ratelimit.ShareGrant, error) {
	out := make([]ratelimit.ShareGrant, len(asks))
	for i, a := range asks {
		out[i] = ratelimit.ShareGrant{Slots: a.N, Target: a.N, Members: 1}
	}
	return out, nil
}

// `tokenbroker status` (or anything that only looks) takes no share of a
// vendor's limit from the replicas; a call to the vendor does.
func TestLookingTakesNoShare(t *testing.T) {
	api := &flakyAPI{}
	srv := httptest.NewServer(api)
	defer srv.Close()
	cfg := &config.Config{State: "sqlite:" + filepath.Join(t.TempDir(), "state.db"), Profiles: map[string]*config.Profile{
		"p": {Name: "p", Provider: "oauth2", TokenURL: srv.URL + "/token", BaseURL: srv.URL, ClientID: "id", ClientSecret: "secret",
			RateLimit: &config.RateLimit{PerSecond: 7}},
	}}
	st, err := OpenStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ls := &leasingStore{sharedLimits: sharedLimits{Store: st}}
	acc := NewAccounts()
	defer acc.Close()
	b := New(cfg, Options{Store: ls, Accounts: acc})
	// What `status` asks of the broker (package status).
	if _, err := b.Provider("p"); err != nil {
		t.Fatal(err)
	}
	b.Tenants(context.Background(), "p")
	b.Quota("p")
	if n := len(acc.Shares()); n != 0 {
		t.Fatalf("status took %d shares", n)
	}
	hc, _ := b.HTTPClient("p")
	if resp, err := hc.Get(srv.URL + "/x"); err == nil {
		resp.Body.Close()
	}
	if n := len(acc.Shares()); n != 1 {
		t.Errorf("a call to the vendor took %d shares, want 1", n)
	}
}
