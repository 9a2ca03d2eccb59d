package provider

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tokenbroker/tokenbroker/config"
)

// Client assertions as other authorization servers expect them: an HMAC
// keyed by the secret (client_secret_jwt), PS256 and EdDSA signatures,
// Entra's x5t#S256 certificate thumbprint, and an audience of the server's
// choosing. Each is read back and verified as a server would.
func TestClientAssertions(t *testing.T) {
	rec := &recorder{body: `{"access_token":"a","expires_in":60}`}
	base := serve(t, rec)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	edDER, _ := x509.MarshalPKCS8PrivateKey(edKey)
	edPEM := config.Secret(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: edDER}))
	certDER, certPEM := selfSigned(t, clientKey)

	cases := []struct {
		name   string
		prof   config.Profile
		alg    string
		verify any // the key a server verifies with
		aud    string
		x5t    string
	}{
		{"client_secret_jwt", config.Profile{AuthStyle: "client_secret_jwt", ClientSecret: "a-shared-secret-of-32-bytes-long"},
			"HS256", []byte("a-shared-secret-of-32-bytes-long"), base + "/token", ""},
		{"private_key_jwt PS256", config.Profile{AuthStyle: "private_key_jwt", PrivateKey: pemOf(clientKey), AssertionClaims: &config.AssertionClaims{Algorithm: "PS256"}},
			"PS256", &clientKey.PublicKey, base + "/token", ""},
		{"private_key_jwt EdDSA", config.Profile{AuthStyle: "private_key_jwt", PrivateKey: edPEM},
			"EdDSA", edKey.Public(), base + "/token", ""},
		{"certificate credential, issuer audience", config.Profile{AuthStyle: "private_key_jwt", PrivateKey: pemOf(clientKey),
			AssertionClaims: &config.AssertionClaims{Certificate: certPEM, Audience: "https://login.example/tenant/v2.0"}},
			"RS256", &clientKey.PublicKey, "https://login.example/tenant/v2.0", thumb(certDER)},
	}
	for _, c := range cases {
		prof := c.prof
		prof.Name, prof.Provider, prof.TokenURL, prof.ClientID = "ca", "oauth2", base+"/token", "client-1"
		if _, err := newProvider(t, &prof).Obtain(context.Background(), nil); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		f := rec.last(t).Form
		if f.Get("client_assertion_type") != clientAssertionType || f.Get("client_secret") != "" {
			t.Errorf("%s: form %v", c.name, f)
		}
		var claims jwt.RegisteredClaims
		tok, err := jwt.ParseWithClaims(f.Get("client_assertion"), &claims, func(tk *jwt.Token) (any, error) { return c.verify, nil },
			jwt.WithValidMethods([]string{c.alg}), jwt.WithTimeFunc(func() time.Time { return fixedNow }), jwt.WithAudience(c.aud), jwt.WithIssuer("client-1"), jwt.WithSubject("client-1"))
		if err != nil {
			t.Errorf("%s: the assertion does not verify: %v", c.name, err)
			continue
		}
		if got, _ := tok.Header["x5t#S256"].(string); got != c.x5t {
			t.Errorf("%s: x5t#S256 %q, want %q", c.name, got, c.x5t)
		}
		if claims.ID == "" || claims.ExpiresAt == nil {
			t.Errorf("%s: no jti or exp", c.name)
		}
	}
	// An algorithm that does not fit the key is a config error.
	bad := &config.Profile{Name: "ca", Provider: "oauth2", TokenURL: base + "/token", ClientID: "c", AuthStyle: "private_key_jwt",
		PrivateKey: pemOf(clientKey), AssertionClaims: &config.AssertionClaims{Algorithm: "ES256"}}
	if _, err := newProvider(t, bad).Obtain(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "RS256 or PS256") {
		t.Errorf("ES256 with an RSA key: %v", err)
	}
}

// authorization_params go into the login's authorization request; the
// parameters tokenbroker sets itself cannot be overridden.
func TestAuthorizationParams(t *testing.T) {
	as := newAuthServer(t)
	var seen url.Values
	p := fositeProvider(t, as, config.Profile{Issuer: as.URL, Grant: "authorization_code", Scopes: []string{"offline"},
		AuthorizationParams: map[string]string{"prompt": "login", "login_hint": "netops@example.com"}})
	b := &headlessBrowser{done: make(chan error, 1), tamper: func(u *url.URL) { seen = u.Query() }}
	if _, err := p.(Loginer).Login(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if seen.Get("prompt") != "login" || seen.Get("login_hint") != "netops@example.com" || seen.Get("code_challenge_method") != "S256" {
		t.Errorf("authorization request %v", seen)
	}
	if _, err := New(&config.Profile{Name: "x", Provider: "oauth2", Grant: "authorization_code", TokenURL: as.URL + "/token", ClientID: "c",
		AuthorizationParams: map[string]string{"redirect_uri": "https://evil.example/"}}, Env{}); err == nil {
		t.Error("authorization_params may override redirect_uri")
	}
}

func selfSigned(t *testing.T, key *rsa.PrivateKey) ([]byte, config.Secret) {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "tokenbroker-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return der, config.Secret(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func thumb(der []byte) string {
	sum := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// token_field: id_token is honoured on login as on refresh: the login's
// token is the id_token the exchange answered.
func TestLoginHonoursTokenField(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /auth", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		http.Redirect(w, r, q.Get("redirect_uri")+"?code=the-code&state="+url.QueryEscape(q.Get("state")), http.StatusFound)
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		if r.Form.Get("code") != "the-code" || r.Form.Get("code_verifier") == "" {
			w.WriteHeader(400)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"opaque","id_token":"eyJ.id.token","token_type":"Bearer","expires_in":60}`)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	p, err := New(&config.Profile{Name: "oidc", Provider: "oauth2", Grant: "authorization_code", TokenURL: srv.URL + "/token",
		AuthorizationURL: srv.URL + "/auth", ClientID: "c", TokenField: "id_token"}, Env{})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := p.(Loginer).Login(context.Background(), &headlessBrowser{done: make(chan error, 1)})
	if err != nil || tok.AccessToken != "eyJ.id.token" {
		t.Fatalf("login with token_field id_token: %+v, %v", tok, err)
	}
}
