package provider

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v3"
	"github.com/golang-jwt/jwt/v5"

	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/failure"
)

// oidcServer is an OpenID provider whose id_tokens can be told to go wrong.
type oidcServer struct {
	*httptest.Server
	key, other *rsa.PrivateKey
	mu         sync.Mutex
	nonce      string                                // the last authorization request's
	tamper     func(c jwt.MapClaims) *rsa.PrivateKey // changes the claims; the key to sign with
}

func newOIDCServer(t *testing.T) *oidcServer {
	s := &oidcServer{}
	s.key, _ = rsa.GenerateKey(rand.Reader, 2048)
	s.other, _ = rsa.GenerateKey(rand.Reader, 2048)
	mux := http.NewServeMux()
	s.Server = httptest.NewServer(mux)
	t.Cleanup(s.Close)
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"issuer": s.URL, "token_endpoint": s.URL + "/token",
			"authorization_endpoint": s.URL + "/auth", "jwks_uri": s.URL + "/jwks"})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &s.key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	})
	mux.HandleFunc("GET /auth", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		s.mu.Lock()
		s.nonce = q.Get("nonce")
		s.mu.Unlock()
		http.Redirect(w, r, q.Get("redirect_uri")+"?code=c&state="+q.Get("state"), http.StatusFound)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		claims := jwt.MapClaims{"iss": s.URL, "sub": "user-1", "aud": "rp", "exp": time.Now().Add(time.Hour).Unix(), "iat": time.Now().Unix(), "nonce": s.nonce}
		key := s.key
		if s.tamper != nil {
			key = s.tamper(claims)
		}
		s.mu.Unlock()
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
		tok.Header["kid"] = "k1"
		id, _ := tok.SignedString(key)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"access_token": "at", "token_type": "Bearer", "expires_in": 300, "id_token": id})
	})
	return s
}

// A login's id_token is verified: the server's key, its issuer, this
// client as audience, not expired, and the nonce this login sent. One that
// fails any check fails the login.
func TestLoginVerifiesTheIDToken(t *testing.T) {
	s := newOIDCServer(t)
	login := func() error {
		p, err := New(&config.Profile{Name: "oidc", Provider: "oauth2", Grant: "authorization_code", Issuer: s.URL, ClientID: "rp",
			Scopes: []string{"openid"}}, Env{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = p.(Loginer).Login(context.Background(), &headlessBrowser{done: make(chan error, 1)})
		return err
	}
	if err := login(); err != nil {
		t.Fatalf("a good id_token: %v", err)
	}
	s.mu.Lock()
	sent := s.nonce
	s.mu.Unlock()
	if len(sent) < 16 {
		t.Errorf("nonce sent: %q", sent)
	}
	for name, tamper := range map[string]func(jwt.MapClaims) *rsa.PrivateKey{
		"another key":    func(c jwt.MapClaims) *rsa.PrivateKey { return s.other },
		"another nonce":  func(c jwt.MapClaims) *rsa.PrivateKey { c["nonce"] = "replayed"; return s.key },
		"no nonce":       func(c jwt.MapClaims) *rsa.PrivateKey { delete(c, "nonce"); return s.key },
		"another client": func(c jwt.MapClaims) *rsa.PrivateKey { c["aud"] = "someone-else"; return s.key },
		"another issuer": func(c jwt.MapClaims) *rsa.PrivateKey { c["iss"] = "https://evil.example"; return s.key },
		"expired":        func(c jwt.MapClaims) *rsa.PrivateKey { c["exp"] = time.Now().Add(-time.Hour).Unix(); return s.key },
	} {
		s.mu.Lock()
		s.tamper = tamper
		s.mu.Unlock()
		if err := login(); failure.KindOf(err) != failure.Protocol || !strings.Contains(err.Error(), "id_token does not verify") {
			t.Errorf("%s: %v, want the login refused", name, err)
		}
	}
}
