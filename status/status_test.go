package status_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker"
	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/status"
	"github.com/tokenbroker/tokenbroker/store"
	_ "github.com/tokenbroker/tokenbroker/store/sqlite"
)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// row returns the status of one profile.
func row(t *testing.T, b *tokenbroker.Broker, name string) status.Row {
	t.Helper()
	rows, err := status.Of(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		if r.Profile == name {
			return r
		}
	}
	t.Fatalf("no row for %s in %+v", name, rows)
	return status.Row{}
}

// TestStatesFollowTheToken walks a client-credentials profile and an
// interactive one through their states on an injected clock, checking
// the state, the times shown and what to do next.
func TestStatesFollowTheToken(t *testing.T) {
	var mu sync.Mutex
	refuse := false
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if refuse {
			w.WriteHeader(http.StatusUnauthorized)
			json.NewEncoder(w).Encode(map[string]string{"error": "invalid_client"})
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"access_token": "at", "token_type": "Bearer", "expires_in": 3600})
	}))
	defer srv.Close()
	cfg := &config.Config{Path: "/etc/tb.yaml", State: "sqlite:" + filepath.Join(t.TempDir(), "state.db"), Profiles: map[string]*config.Profile{
		"cc": {Name: "cc", Provider: "oauth2", TokenURL: srv.URL + "/token", ClientID: "id", ClientSecret: "secret"},
		"idp": {Name: "idp", Provider: "oauth2", Grant: "authorization_code", TokenURL: srv.URL + "/token",
			AuthorizationURL: srv.URL + "/auth", ClientID: "id", ClientSecret: "secret"},
		"bad": {Name: "bad", Provider: "no-such-vendor"},
	}}
	st, err := tokenbroker.OpenStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clk := &fakeClock{now: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	b := tokenbroker.New(cfg, tokenbroker.Options{Store: st, Now: clk.Now})
	defer b.Close()
	ctx := context.Background()

	if r := row(t, b, "cc"); r.State != status.None || r.NextAction != "run `tokenbroker token cc`" || r.ExpiresAt != nil {
		t.Errorf("before any token: %+v", r)
	}
	if r := row(t, b, "idp"); r.State != status.NeedsLogin || !strings.Contains(r.NextAction, "tokenbroker login idp") {
		t.Errorf("interactive, before any token: %+v", r)
	}
	if r := row(t, b, "bad"); r.State != status.Error || !strings.Contains(r.NextAction, "/etc/tb.yaml") || r.LastError == "" {
		t.Errorf("a broken profile: %+v", r)
	}

	if _, err := b.Token(ctx, "cc", tokenbroker.TokenOptions{}); err != nil {
		t.Fatal(err)
	}
	r := row(t, b, "cc")
	if r.State != status.Valid || r.ExpiresAt == nil || !r.ExpiresAt.Equal(clk.Now().Add(time.Hour)) || r.LastRefresh == nil || r.NextAction != "" {
		t.Errorf("after a token: %+v", r)
	}
	clk.Add(59 * time.Minute) // past the refresh point, still valid
	if r := row(t, b, "cc"); r.State != status.Expiring || !strings.Contains(r.NextAction, "refresh cc") {
		t.Errorf("past the refresh point: %+v", r)
	}
	clk.Add(2 * time.Minute)
	if r := row(t, b, "cc"); r.State != status.Expired {
		t.Errorf("past the expiry: %+v", r)
	}
	mu.Lock()
	refuse = true
	mu.Unlock()
	if _, err := b.Token(ctx, "cc", tokenbroker.TokenOptions{}); err == nil {
		t.Fatal("want the vendor's refusal")
	}
	if r := row(t, b, "cc"); r.State != status.NeedsLogin || r.LastErrorClass != "rejected" || !strings.Contains(r.NextAction, "credentials") {
		t.Errorf("credentials refused: %+v", r)
	}

	// An interactive profile whose refresh token the vendor refused needs
	// a person, even while its access token is valid.
	tok := &tokenbroker.Token{AccessToken: "a", TokenType: "Bearer", RefreshToken: "r", ObtainedAt: clk.Now(),
		Expiry: clk.Now().Add(time.Hour), RefreshRejected: clk.Now()}
	if err := store.WithLease(ctx, st, "idp", "test", time.Minute, func(l *store.Leased) error { return l.Put(ctx, tok, 0) }); err != nil {
		t.Fatal(err)
	}
	if r := row(t, b, "idp"); r.State != status.NeedsLogin || !strings.Contains(r.LastError, "re-login needed") || !strings.Contains(r.NextAction, "login idp") {
		t.Errorf("refresh token refused: %+v", r)
	}
}
