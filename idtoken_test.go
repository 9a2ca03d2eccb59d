package tokenbroker

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/failure"
)

// The id_token an OpenID server sends with a token is kept and handed out
// when asked for; a refresh answer without one keeps the last; Keycloak's
// refresh_expires_in is read as the refresh token's lifetime.
func TestIDTokenKeptAndHandedOutOnRequest(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		i := n.Add(1)
		if r.Form.Get("grant_type") == "refresh_token" {
			fmt.Fprintf(w, `{"access_token":"at-%d","token_type":"Bearer","expires_in":300,"refresh_token":"rt-%d","refresh_expires_in":1800}`, i, i)
			return
		}
		fmt.Fprintf(w, `{"access_token":"at-%d","token_type":"Bearer","expires_in":300,"refresh_token":"rt-%d","refresh_expires_in":1800,"id_token":"id-%d"}`, i, i, i)
	}))
	defer srv.Close()
	cfg := &config.Config{State: "sqlite:" + filepath.Join(t.TempDir(), "state.db"), Profiles: map[string]*config.Profile{
		"kc": {Name: "kc", Provider: "oauth2", TokenURL: srv.URL + "/token", ClientID: "id", ClientSecret: "sec", Scopes: []string{"openid"}},
	}}
	st, err := OpenStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{now: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	b := New(cfg, Options{Store: st, Now: clk.Now})
	t.Cleanup(func() { b.Close() })
	ctx := context.Background()
	h, err := b.Handout(ctx, "kc", TokenOptions{IDToken: true})
	if err != nil || h.IDToken != "id-1" || h.AccessToken != "at-1" {
		t.Fatalf("handout with the id_token: %+v, %v", h, err)
	}
	if plain, _ := b.Handout(ctx, "kc", TokenOptions{}); plain.IDToken != "" {
		t.Error("the id_token was handed out unasked")
	}
	tok, _ := b.Stored(ctx, "kc")
	if want := tok.ObtainedAt.Add(30 * time.Minute); !tok.RefreshExpiry.Equal(want) {
		t.Errorf("refresh expiry %v, want %v (refresh_expires_in)", tok.RefreshExpiry, want)
	}
	if _, err := b.Token(ctx, "kc", TokenOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	h, err = b.Handout(ctx, "kc", TokenOptions{IDToken: true})
	if err != nil || h.AccessToken != "at-2" || h.IDToken != "id-1" {
		t.Fatalf("after a refresh without an id_token: %+v, %v; want the last one kept", h, err)
	}

	// A server that sends none: a clear error, not an empty line.
	cfg.Profiles["plain"] = &config.Profile{Name: "plain", Provider: "oauth2", TokenURL: srv.URL + "/token", ClientID: "id", ClientSecret: "sec", Grant: "refresh_token", RefreshToken: "seed"}
	b2 := New(cfg, Options{Store: st, Now: clk.Now})
	t.Cleanup(func() { b2.Close() })
	if _, err := b2.TakeSeed(ctx, "plain"); err != nil {
		t.Fatal(err)
	}
	if _, err := b2.Handout(ctx, "plain", TokenOptions{IDToken: true}); failure.KindOf(err) != failure.Config {
		t.Errorf("no id_token sent: %v, want a config error", err)
	}
}
