package tokenbroker

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/failure"
)

// A configured refresh_token seed is single-use at servers with reuse
// detection: a fresh state (a second machine, a wiped state) presenting it
// again would revoke the chain the working state depends on. So it is
// never presented silently: `import --refresh-token` takes it in, once per
// state; `token` before that says what to run and sends nothing.
func TestRefreshTokenSeedIsTakenInOnce(t *testing.T) {
	var mu sync.Mutex
	var presented []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		mu.Lock()
		presented = append(presented, r.Form.Get("refresh_token"))
		n := len(presented)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"at-%d","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-%d","refresh_token_expires_in":86400}`, n, n)
	}))
	defer srv.Close()
	sent := func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), presented...) }
	cfg := &config.Config{State: "sqlite:" + filepath.Join(t.TempDir(), "state.db"), Profiles: map[string]*config.Profile{
		"idp": {Name: "idp", Provider: "oauth2", Grant: "refresh_token", TokenURL: srv.URL + "/token", ClientID: "id", ClientSecret: "sec", RefreshToken: "the-seed"},
	}}
	st, err := OpenStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{now: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	b := New(cfg, Options{Store: st, Now: clk.Now})
	t.Cleanup(func() { b.Close() })
	ctx := context.Background()

	_, err = b.Token(ctx, "idp", TokenOptions{})
	if failure.KindOf(err) != failure.Rejected || !strings.Contains(err.Error(), "tokenbroker import idp --refresh-token") || len(sent()) != 0 {
		t.Fatalf("token before the seed is taken in: %v (sent %q)", err, sent())
	}
	tok, err := b.TakeSeed(ctx, "idp")
	if err != nil || tok.AccessToken != "at-1" {
		t.Fatalf("take in: %v, %v", tok, err)
	}
	if _, err := b.TakeSeed(ctx, "idp"); failure.KindOf(err) != failure.Config || !strings.Contains(err.Error(), "already") {
		t.Fatalf("taking the same seed in again: %v, want a refusal", err)
	}
	// Renewals go on with the rotated refresh token, never the seed.
	clk.Add(59 * time.Minute)
	if got, err := b.Token(ctx, "idp", TokenOptions{}); err != nil || got.AccessToken != "at-2" {
		t.Fatalf("renewal: %v, %v", got, err)
	}
	if got := sent(); len(got) != 2 || got[0] != "the-seed" || got[1] != "rt-1" {
		t.Fatalf("refresh tokens presented: %q, want the seed once, then rt-1", got)
	}
	// Once the stored refresh token is dead, the used seed is not tried.
	clk.Add(48 * time.Hour)
	_, err = b.Token(ctx, "idp", TokenOptions{})
	if failure.KindOf(err) != failure.Rejected || !strings.Contains(err.Error(), "taken in on 2026-12-01T09:00:00Z already") || len(sent()) != 2 {
		t.Fatalf("after the refresh token died: %v (sent %q)", err, sent())
	}
}
