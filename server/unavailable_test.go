package server

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tokenbroker/tokenbroker"
	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/token"
)

// goneStore is a state that cannot be read, as a replica's PostgreSQL
// when it is cut off.
type goneStore struct{ store.Store }

func (goneStore) Get(context.Context, string) (*token.Token, error) {
	return nil, store.Unavailable(context.DeadlineExceeded)
}

// A replica whose state is gone, holding no token, answers the proxy's
// callers 503 state_unavailable (its own trouble), not 502 as if the
// vendor were unreachable; and it logs the failure once, with a count
// later, not once per call.
func TestStateUnavailableIs503AndLoggedOnce(t *testing.T) {
	var vendorCalls atomic.Int64
	vendor := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { vendorCalls.Add(1) }))
	defer vendor.Close()
	cfg := &config.Config{State: "sqlite:" + filepath.Join(t.TempDir(), "state.db"), Profiles: map[string]*config.Profile{
		"p": {Name: "p", Provider: "oauth2", TokenURL: vendor.URL + "/token", BaseURL: vendor.URL, ClientID: "id", ClientSecret: "sec"},
	}}
	st, err := tokenbroker.OpenStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var logs lockedBuffer
	srv, err := New(cfg, Options{Store: goneStore{st}, APIKey: testKey, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	url := serveFront(t, srv).URL
	for i := range 50 {
		code, body := send(t, http.MethodGet, url+"/proxy/p/items", testKey)
		if code != http.StatusServiceUnavailable || !strings.Contains(string(body), "state_unavailable") {
			t.Fatalf("call %d: %d %s, want 503 state_unavailable", i, code, body)
		}
	}
	if code, _ := send(t, http.MethodGet, url+"/v1/profiles/p/token", testKey); code != http.StatusServiceUnavailable {
		t.Errorf("token API with the state gone: %d, want 503", code)
	}
	if vendorCalls.Load() != 0 {
		t.Errorf("%d calls reached the vendor", vendorCalls.Load())
	}
	if n := strings.Count(logs.String(), "proxy request failed"); n != 1 {
		t.Errorf("%d log lines for 50 alike failures, want 1", n)
	}
}
