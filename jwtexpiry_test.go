package tokenbroker

import (
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/emulator"
)

// Catalyst Center answers {"Token": "<jwt>"} with no expires_in; the JWT's
// exp says it lives an hour. The token is renewed before then instead of
// being handed out dead (found against an independent Catalyst stub).
func TestExpiryFromTheJWTWhenNoExpiresIn(t *testing.T) {
	clk := &clock{now: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	cat := emulator.NewCatalystCenter(clk.Now)
	hs := httptest.NewServer(cat)
	t.Cleanup(hs.Close)
	b := brokerOn(t, map[string]*config.Profile{
		"catalyst": {Name: "catalyst", Provider: "oauth2", BaseURL: hs.URL, TokenURL: hs.URL + "/dna/system/api/v1/auth/token",
			Grant: "client_credentials", AuthStyle: "basic", ClientID: config.Secret(cat.Username), ClientSecret: config.Secret(cat.Password),
			TokenField: "Token", Header: "X-Auth-Token: {token}"},
	}, Options{Now: clk.Now})
	ctx := context.Background()
	first, err := b.Token(ctx, "catalyst", TokenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := clk.Now().Add(time.Hour); !first.Expiry.Equal(want) {
		t.Fatalf("expiry %v, want the JWT's lifetime from the request: %v", first.Expiry, want)
	}
	clk.Add(61 * time.Minute)
	if cat.ValidAccessToken(first.AccessToken) {
		t.Fatal("the emulator still takes the first token: the test proves nothing")
	}
	second, err := b.Token(ctx, "catalyst", TokenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if second.AccessToken == first.AccessToken || !cat.ValidAccessToken(second.AccessToken) {
		t.Fatal("an hour later the dead token was handed out again")
	}
}
