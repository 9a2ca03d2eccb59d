package provider

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/emulator"
	"github.com/tokenbroker/tokenbroker/failure"
)

// prompts answers a provider's questions, as a person at a terminal would.
type prompts map[string]string

func (p prompts) Prompt(label string, _ bool) (string, error) {
	if v, ok := p[label]; ok {
		return v, nil
	}
	return "", errors.New("unexpected prompt " + label)
}

func TestArubaLoginPromptsForMissingCredentials(t *testing.T) {
	a := emulator.NewAruba(nil)
	srv := httptest.NewServer(a)
	defer srv.Close()
	p := newProvider(t, &config.Profile{Name: "aruba", Provider: "aruba-central", BaseURL: srv.URL,
		ClientID: config.Secret(a.ClientID), ClientSecret: config.Secret(a.ClientSecret), CustomerID: a.CustomerID})
	in := prompts{"Aruba Central username": a.Username, "Aruba Central password": a.Password}
	tok, err := p.(Loginer).Login(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if !a.ValidAccessToken(tok.AccessToken) || !a.ValidRefreshToken(tok.RefreshToken) || tok.Grant != "authorization_code" {
		t.Fatalf("login token %+v not valid at the emulator", tok)
	}
	// Without a terminal, a missing password is a config error naming the field.
	if _, err := p.(Loginer).Login(context.Background(), nil); failure.KindOf(err) != failure.Config {
		t.Fatalf("no prompter: %v", err)
	}
	// A wrong password is the vendor's "Auth failure", exit code 3.
	in["Aruba Central password"] = "wrong"
	if _, err := p.(Loginer).Login(context.Background(), in); failure.KindOf(err) != failure.Rejected {
		t.Fatalf("wrong password: %v", err)
	}
}

func TestArubaRefreshKeepsNewestTokenAndOldOneDiesAfterUse(t *testing.T) {
	a := emulator.NewAruba(nil)
	srv := httptest.NewServer(a)
	defer srv.Close()
	p := newProvider(t, &config.Profile{Name: "aruba", Provider: "aruba-central", BaseURL: srv.URL,
		ClientID: config.Secret(a.ClientID), ClientSecret: config.Secret(a.ClientSecret)})
	tok, err := p.(Importer).Import(a.IssueOfflineToken())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		next, err := p.Obtain(context.Background(), tok)
		if err != nil {
			t.Fatalf("refresh %d: %v", i, err)
		}
		if next.RefreshToken == tok.RefreshToken || next.PrevRefreshToken != tok.RefreshToken {
			t.Fatalf("refresh %d: rotation not recorded", i)
		}
		if !a.ValidRefreshToken(next.RefreshToken) {
			t.Fatalf("refresh %d: the newest refresh token is not valid", i)
		}
		tok = next
	}
}

func TestGenericRefreshTokenGrant(t *testing.T) {
	ws := emulator.NewWorkspaceOne(nil)
	srv := httptest.NewServer(ws)
	defer srv.Close()
	// Get a refresh token the way a person would have, then seed a generic profile with it.
	seed, err := newProvider(t, &config.Profile{Provider: "workspace-one", BaseURL: srv.URL,
		ClientID: config.Secret(ws.ClientID), ClientSecret: config.Secret(ws.ClientSecret)}).Obtain(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	p := newProvider(t, &config.Profile{Provider: "oauth2", Grant: "refresh_token", TokenURL: srv.URL + "/SAAS/auth/oauthtoken",
		ClientID: config.Secret(ws.ClientID), ClientSecret: config.Secret(ws.ClientSecret), RefreshToken: config.Secret(seed.RefreshToken)})
	before := ws.Counts()["refresh_token"]
	tok, err := p.Obtain(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !ws.ValidAccessToken(tok.AccessToken) || tok.Grant != "refresh_token" || ws.Counts()["refresh_token"] != before+1 {
		t.Fatalf("token %+v, counts %v", tok, ws.Counts())
	}
	if ws.Counts()["client_credentials"] != 1 {
		t.Errorf("the generic refresh_token profile fell back to client_credentials: %v", ws.Counts())
	}
}

// A 404 on Aruba's delete call is about the delete call and revocation_url,
// not the token endpoint.
func TestArubaDelete404NamesRevocationURL(t *testing.T) {
	a := emulator.NewAruba(nil)
	srv := httptest.NewServer(a)
	defer srv.Close()
	p := newProvider(t, &config.Profile{Name: "aruba", Provider: "aruba-central", BaseURL: srv.URL, CustomerID: a.CustomerID,
		ClientID: config.Secret(a.ClientID), ClientSecret: config.Secret(a.ClientSecret),
		Username: config.Secret(a.Username), Password: config.Secret(a.Password), RevocationURL: srv.URL + "/no/such/path"})
	tok, err := p.(Loginer).Login(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	err = p.(Revoker).Revoke(context.Background(), tok, nil)
	if failure.KindOf(err) != failure.Config || !strings.Contains(err.Error(), "revocation_url") || strings.Contains(err.Error(), "token endpoint") {
		t.Fatalf("a 404 on the delete call: %v", err)
	}
}
