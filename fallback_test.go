package tokenbroker

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/failure"
	"github.com/tokenbroker/tokenbroker/store"
)

// A server with refresh-token reuse detection (Hydra) refuses the newest
// refresh token after revoking its chain. tokenbroker then sends nothing
// more: presenting the one before it would be a second reuse. It says at
// once that a login is needed (status "needs login"), and hands out the
// access token until it expires. Only a profile that allows it
// (refresh_fallback: true, or a vendor whose rules make it safe) tries the
// previous refresh token.
func TestRefreshRejectedNeedsLoginWithoutFallback(t *testing.T) {
	for _, c := range []struct {
		name     string
		fallback *bool
		requests int64
	}{{"generic", nil, 1}, {"refresh_fallback: true", ptr(true), 2}} {
		t.Run(c.name, func(t *testing.T) {
			var refreshes atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				r.ParseForm()
				if r.Form.Get("grant_type") == "refresh_token" {
					refreshes.Add(1)
				}
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusBadRequest)
				json.NewEncoder(w).Encode(map[string]string{"error": "invalid_grant", "error_description": "The refresh token was already used; the chain is revoked."})
			}))
			defer srv.Close()
			cfg := &config.Config{State: "sqlite:" + filepath.Join(t.TempDir(), "state.db"), Profiles: map[string]*config.Profile{
				"idp": {Name: "idp", Provider: "oauth2", Grant: "authorization_code", TokenURL: srv.URL + "/token",
					AuthorizationURL: srv.URL + "/auth", ClientID: "id", ClientSecret: "sec", RefreshFallback: c.fallback},
			}}
			st, err := OpenStore(cfg)
			if err != nil {
				t.Fatal(err)
			}
			clk := &clock{now: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
			b := New(cfg, Options{Store: st, Now: clk.Now})
			defer b.Close()
			ctx := context.Background()
			// A login's token, renewed once: the refresh token rotated.
			tok := &Token{AccessToken: "at-2", TokenType: "Bearer", RefreshToken: "rt-2", PrevRefreshToken: "rt-1",
				ObtainedAt: clk.Now(), Expiry: clk.Now().Add(time.Hour), Grant: "refresh_token"}
			if err := store.WithLease(ctx, st, "idp", "test", time.Minute, func(l *store.Leased) error { return l.Put(ctx, tok, 0) }); err != nil {
				t.Fatal(err)
			}
			clk.Add(50 * time.Minute) // past the refresh point, still valid
			_, err = b.Token(ctx, "idp", TokenOptions{Force: true})
			if failure.KindOf(err) != failure.Rejected || !strings.Contains(err.Error(), "refresh token rejected: re-login needed") ||
				strings.Contains(err.Error(), "client_secret") {
				t.Fatalf("refused refresh: %v", err)
			}
			if got := refreshes.Load(); got != c.requests {
				t.Errorf("%d refresh requests, want %d", got, c.requests)
			}
			// The refusal is in the state, for every process (and
			// `status`, which says "needs login" from it).
			if stored, err := b.Stored(ctx, "idp"); err != nil || stored.RefreshRejected.IsZero() {
				t.Fatalf("stored after the refusal: %+v %v, want the refusal marked", stored, err)
			}
			if got, err := b.Token(ctx, "idp", TokenOptions{}); err != nil || got.AccessToken != "at-2" {
				t.Errorf("the still-valid access token: %v, %v", got, err)
			}
			// No process sends the refused refresh token again: not a
			// forced renewal (a 401), not another replica, not after a
			// restart. It says so at once.
			sent := refreshes.Load()
			clk.Add(5 * time.Minute)
			if _, err := b.Token(ctx, "idp", TokenOptions{Force: true}); !strings.Contains(fmt.Sprint(err), "nothing was sent") {
				t.Errorf("a forced renewal after the refusal: %v", err)
			}
			restarted := New(cfg, Options{Store: st, Now: clk.Now})
			defer restarted.Close()
			if stored, _ := restarted.Stored(ctx, "idp"); stored == nil || stored.RefreshRejected.IsZero() || !strings.Contains(RefreshRejected("idp", stored).Error(), "re-login needed") {
				t.Errorf("after a restart: %+v", stored)
			}
			if got, err := restarted.Token(ctx, "idp", TokenOptions{}); err != nil || got.AccessToken != "at-2" {
				t.Errorf("after a restart, the still-valid access token: %v, %v", got, err)
			}
			if _, err := restarted.Token(ctx, "idp", TokenOptions{Force: true}); failure.KindOf(err) != failure.Rejected {
				t.Errorf("after a restart, a forced renewal: %v", err)
			}
			if got := refreshes.Load(); got != sent {
				t.Errorf("%d more refresh requests after the vendor refused the refresh token", got-sent)
			}
			// A login stores a new token: it is refreshed again.
			fresh := &Token{AccessToken: "at-3", TokenType: "Bearer", RefreshToken: "rt-3", ObtainedAt: clk.Now(), Expiry: clk.Now().Add(time.Hour), Grant: "authorization_code"}
			cur, _ := st.Get(ctx, "idp")
			if err := store.WithLease(ctx, st, "idp", "test", time.Minute, func(l *store.Leased) error { return l.Put(ctx, fresh, cur.Generation) }); err != nil {
				t.Fatal(err)
			}
			restarted.Token(ctx, "idp", TokenOptions{Force: true})
			if got := refreshes.Load(); got != sent+1 {
				t.Errorf("after a login, %d refresh requests, want 1", got-sent)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }
