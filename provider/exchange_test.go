package provider

import (
	"context"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/failure"
	"github.com/tokenbroker/tokenbroker/token"
)

func TestTokenExchange(t *testing.T) {
	rec := &recorder{body: `{"access_token":"workspace-token","issued_token_type":"urn:ietf:params:oauth:token-type:access_token","token_type":"Bearer","expires_in":900}`}
	base := serve(t, rec)
	var asked []string
	p, err := New(&config.Profile{Name: "workspace", Provider: "oauth2", Grant: "token_exchange", TokenURL: base + "/token",
		ClientID: "ws-client", ClientSecret: "ws-secret", SubjectProfile: "msp", Audience: "workspace-42", Scopes: []string{"read"}},
		Env{Now: func() time.Time { return fixedNow }, Token: func(_ context.Context, name string) (*token.Token, error) {
			asked = append(asked, name)
			return &token.Token{AccessToken: "msp-token"}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := p.Obtain(context.Background(), nil)
	if err != nil || tok.AccessToken != "workspace-token" || tok.Grant != "token_exchange" || !tok.Expiry.Equal(fixedNow.Add(900*time.Second)) {
		t.Fatalf("token %+v %v", tok, err)
	}
	if len(asked) != 1 || asked[0] != "msp" {
		t.Errorf("the subject profile was asked %v", asked)
	}
	r := rec.last(t)
	if r.Authorization != basic("ws-client", "ws-secret") {
		t.Errorf("client auth %q", r.Authorization)
	}
	wantParams(t, "form", r.Form, map[string]string{
		"grant_type": tokenExchangeGrant, "subject_token": "msp-token", "subject_token_type": accessTokenType,
		"audience": "workspace-42", "scope": "read",
	})
	for _, bad := range []config.Profile{
		{Name: "x", Provider: "oauth2", Grant: "token_exchange", TokenURL: base, ClientID: "c"},
		{Name: "x", Provider: "oauth2", Grant: "token_exchange", TokenURL: base, ClientID: "c", SubjectProfile: "x"},
	} {
		if _, err := New(&bad, Env{}); failure.KindOf(err) != failure.Config {
			t.Errorf("%+v: %v, want a config error", bad, err)
		}
	}
}

func TestGreenLakeClientCredentialsWithBasic(t *testing.T) {
	rec := &recorder{body: `{"access_token":"gl-token","token_type":"Bearer","expires_in":900}`}
	base := serve(t, rec)
	p := newProvider(t, &config.Profile{Provider: "greenlake", BaseURL: base, ClientID: "gl-id", ClientSecret: "gl-secret"})
	tok, err := p.Obtain(context.Background(), nil)
	if err != nil || tok.AccessToken != "gl-token" || !tok.Expiry.Equal(fixedNow.Add(15*time.Minute)) {
		t.Fatalf("%+v %v", tok, err)
	}
	r := rec.last(t)
	if r.Path != "/as/token.oauth2" || r.Authorization != basic("gl-id", "gl-secret") {
		t.Errorf("request %s auth %q", r.Path, r.Authorization)
	}
	wantParams(t, "form", r.Form, map[string]string{"grant_type": "client_credentials"})
	// The real SSO host by default.
	gl := newProvider(t, &config.Profile{Provider: "greenlake", ClientID: "a", ClientSecret: "b"})
	if u := gl.(*oauthProvider).tokenURL; u != "https://sso.common.cloud.hpe.com/as/token.oauth2" {
		t.Errorf("default token URL %s", u)
	}
}

func TestJWTBearerWithAReadyAssertion(t *testing.T) {
	rec := &recorder{body: `{"access_token":"at","expires_in":60}`}
	base := serve(t, rec)
	t.Setenv("TB_ASSERTION", "header.payload.signature")
	p := newProvider(t, &config.Profile{Provider: "oauth2", Grant: "jwt_bearer", TokenURL: base + "/token", ClientID: "cid", Assertion: "env:TB_ASSERTION"})
	if _, err := p.Obtain(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	wantParams(t, "form", rec.last(t).Form, map[string]string{"grant_type": jwtBearerGrant, "assertion": "header.payload.signature", "client_id": "cid"})
}
