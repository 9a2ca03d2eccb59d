package provider

// Tests against an authorization server this project did not write: an
// in-process server built from github.com/ory/fosite (the OAuth2 library
// behind Ory Hydra) with its in-memory storage. The emulators are written by
// the same hands as the providers; fosite is not.

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v3"
	"github.com/ory/fosite"
	"github.com/ory/fosite/compose"
	fstorage "github.com/ory/fosite/storage"
	"golang.org/x/crypto/bcrypt"

	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/failure"
	"github.com/tokenbroker/tokenbroker/token"
)

// authServer is fosite behind token, revocation, introspection and discovery
// endpoints.
type authServer struct {
	*httptest.Server
	store *fstorage.MemoryStore
	deny  atomic.Bool
}

const fositeSecret = "fosite-client-secret"

// Keys of the private_key_jwt client and of the assertion issuer.
var clientKey, issuerKey = mustRSA(), mustRSA()

func mustRSA() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
}

func pemOf(k *rsa.PrivateKey) config.Secret {
	b, _ := x509.MarshalPKCS8PrivateKey(k)
	return config.Secret(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: b}))
}

func newAuthServer(t *testing.T) *authServer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	store := fstorage.NewMemoryStore()
	hash, _ := bcrypt.GenerateFromPassword([]byte(fositeSecret), bcrypt.MinCost)
	store.Clients["tb-client"] = &fosite.DefaultClient{
		ID: "tb-client", Secret: hash,
		GrantTypes:    []string{"client_credentials", "refresh_token", "authorization_code", "password"},
		ResponseTypes: []string{"code"}, Scopes: []string{"read", "write", "offline"},
		RedirectURIs: []string{"http://127.0.0.1/callback"},
	}
	store.Users["peter"] = fstorage.MemoryUserRelation{Username: "peter", Password: "secret"}
	// A client that authenticates with a signed JWT (private_key_jwt), and
	// an issuer whose signed assertions stand for a user (RFC 7523 grant).
	store.Clients["tb-pkjwt"] = &fosite.DefaultOpenIDConnectClient{
		DefaultClient:           &fosite.DefaultClient{ID: "tb-pkjwt", GrantTypes: []string{"client_credentials"}, Scopes: []string{"read"}},
		JSONWebKeys:             &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &clientKey.PublicKey, KeyID: "client-key", Algorithm: "RS256", Use: "sig"}}},
		TokenEndpointAuthMethod: "private_key_jwt",
	}
	// The same way of authenticating, for a person's login: every call to
	// the server (the code exchange, refresh, revocation, introspection)
	// must carry the assertion.
	store.Clients["tb-pkjwt-code"] = &fosite.DefaultOpenIDConnectClient{
		DefaultClient: &fosite.DefaultClient{ID: "tb-pkjwt-code", GrantTypes: []string{"authorization_code", "refresh_token"},
			ResponseTypes: []string{"code"}, Scopes: []string{"offline", "read"}, RedirectURIs: []string{"http://127.0.0.1/callback"}},
		JSONWebKeys:             &jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &clientKey.PublicKey, KeyID: "client-key", Algorithm: "RS256", Use: "sig"}}},
		TokenEndpointAuthMethod: "private_key_jwt",
	}
	store.Clients["tb-client"].(*fosite.DefaultClient).GrantTypes = append(store.Clients["tb-client"].(*fosite.DefaultClient).GrantTypes, jwtBearerGrant)
	store.IssuerPublicKeys["tb-issuer"] = fstorage.IssuerPublicKeys{Issuer: "tb-issuer", KeysBySub: map[string]fstorage.SubjectPublicKeys{
		"user-1": {Subject: "user-1", Keys: map[string]fstorage.PublicKeyScopes{
			"issuer-key": {Key: &jose.JSONWebKey{Key: &issuerKey.PublicKey, KeyID: "issuer-key", Algorithm: "RS256", Use: "sig"}, Scopes: []string{"read"}},
		}},
	}}
	as := &authServer{store: store}
	mux := http.NewServeMux()
	as.Server = httptest.NewServer(mux)
	t.Cleanup(as.Close)
	cfg := &fosite.Config{
		AccessTokenLifespan: time.Hour, RefreshTokenLifespan: 24 * time.Hour,
		GlobalSecret: []byte("tokenbroker-fosite-test-secret32"), TokenURL: as.URL + "/token",
		SendDebugMessagesToClients: true,
		EnforcePKCE:                true, // a login without PKCE (S256) is refused
	}
	op := compose.ComposeAllEnabled(cfg, store, key)
	session := func() *fosite.DefaultSession { return &fosite.DefaultSession{Subject: "tb-client"} }
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		ar, err := op.NewAccessRequest(ctx, r, session())
		if err != nil {
			op.WriteAccessError(ctx, w, ar, err)
			return
		}
		for _, s := range ar.GetRequestedScopes() {
			ar.GrantScope(s)
		}
		resp, err := op.NewAccessResponse(ctx, ar)
		if err != nil {
			op.WriteAccessError(ctx, w, ar, err)
			return
		}
		op.WriteAccessResponse(ctx, w, ar, resp)
	})
	mux.HandleFunc("GET /auth", func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		ar, err := op.NewAuthorizeRequest(ctx, r)
		if err != nil {
			op.WriteAuthorizeError(ctx, w, ar, err)
			return
		}
		if as.deny.Load() { // the person said no
			op.WriteAuthorizeError(ctx, w, ar, fosite.ErrAccessDenied)
			return
		}
		for _, s := range ar.GetRequestedScopes() {
			ar.GrantScope(s)
		}
		resp, err := op.NewAuthorizeResponse(ctx, ar, session())
		if err != nil {
			op.WriteAuthorizeError(ctx, w, ar, err)
			return
		}
		op.WriteAuthorizeResponse(ctx, w, ar, resp)
	})
	mux.HandleFunc("POST /revoke", func(w http.ResponseWriter, r *http.Request) {
		op.WriteRevocationResponse(r.Context(), w, op.NewRevocationRequest(r.Context(), r))
	})
	mux.HandleFunc("POST /introspect", func(w http.ResponseWriter, r *http.Request) {
		ir, err := op.NewIntrospectionRequest(r.Context(), r, session())
		if err != nil {
			op.WriteIntrospectionError(r.Context(), w, err)
			return
		}
		op.WriteIntrospectionResponse(r.Context(), w, ir)
	})
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{
			"issuer": as.URL, "token_endpoint": as.URL + "/token", "authorization_endpoint": as.URL + "/auth",
			"revocation_endpoint": as.URL + "/revoke", "introspection_endpoint": as.URL + "/introspect",
		})
	})
	return as
}

func fositeProvider(t *testing.T, as *authServer, p config.Profile) Provider {
	t.Helper()
	p.Name, p.Provider = "idp", "oauth2"
	if p.ClientID == "" {
		p.ClientID = "tb-client"
	}
	if p.ClientSecret == "" {
		p.ClientSecret = fositeSecret
	}
	pr, err := New(&p, Env{})
	if err != nil {
		t.Fatal(err)
	}
	return pr
}

func TestFositeClientCredentialsBasicAndBody(t *testing.T) {
	as := newAuthServer(t)
	for _, style := range []string{"basic", "body"} {
		p := fositeProvider(t, as, config.Profile{TokenURL: as.URL + "/token", AuthStyle: style, Scopes: []string{"read"}})
		tok, err := p.Obtain(context.Background(), nil)
		if err != nil {
			t.Fatalf("%s: %v", style, err)
		}
		if tok.AccessToken == "" || tok.Expiry.IsZero() || tok.Scope != "read" {
			t.Errorf("%s: token %+v", style, tok)
		}
	}
	bad := fositeProvider(t, as, config.Profile{TokenURL: as.URL + "/token", ClientSecret: "wrong"})
	if _, err := bad.Obtain(context.Background(), nil); failure.KindOf(err) != failure.Rejected {
		t.Errorf("wrong secret: %v, want Rejected", err)
	}
}

// TestFositeRefreshRotation: each refresh returns a new refresh token, and
// fosite revokes the whole chain when an old one is presented again — which
// a client that refreshes twice with the same token (two jobs at once)
// would trigger. tokenbroker presents each refresh token once.
func TestFositeRefreshRotation(t *testing.T) {
	as := newAuthServer(t)
	ctx := context.Background()
	// A first refresh token, as a person's login would have given (here by
	// the password grant, which tokenbroker itself does not offer).
	req, _ := http.NewRequest(http.MethodPost, as.URL+"/token", strings.NewReader("grant_type=password&username=peter&password=secret&scope=offline+read"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("tb-client", fositeSecret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var seed struct {
		RefreshToken string `json:"refresh_token"`
	}
	json.NewDecoder(resp.Body).Decode(&seed)
	resp.Body.Close()
	if seed.RefreshToken == "" {
		t.Fatalf("no refresh token from fosite (%d)", resp.StatusCode)
	}
	p := fositeProvider(t, as, config.Profile{TokenURL: as.URL + "/token", Grant: "refresh_token", RefreshToken: config.Secret(seed.RefreshToken)})
	t1, err := p.Obtain(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	t2, err := p.Obtain(ctx, t1)
	if err != nil {
		t.Fatal(err)
	}
	if t2.RefreshToken == t1.RefreshToken || t2.PrevRefreshToken != t1.RefreshToken {
		t.Fatalf("rotation not kept: %+v", t2)
	}
	// A double use of an old refresh token is refused...
	if _, err := p.Obtain(ctx, t1); failure.KindOf(err) != failure.Rejected {
		t.Fatalf("reusing a rotated refresh token: %v, want Rejected", err)
	}
	// ... and fosite then revokes the chain: the newest is dead too.
	if _, err := p.Obtain(ctx, t2); err == nil {
		t.Error("fosite did not revoke the chain after the reuse")
	}
}

func TestFositeDiscoveryRevocationIntrospection(t *testing.T) {
	as := newAuthServer(t)
	ctx := context.Background()
	p := fositeProvider(t, as, config.Profile{Issuer: as.URL, Scopes: []string{"read"}})
	tok, err := p.Obtain(ctx, nil)
	if err != nil {
		t.Fatalf("with discovery: %v", err)
	}
	info, err := p.(Introspector).Introspect(ctx, tok)
	if err != nil || info["active"] != true || info["client_id"] != "tb-client" {
		t.Fatalf("introspection: %v %v", info, err)
	}
	if err := p.(Revoker).Revoke(ctx, tok, nil); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	info, err = p.(Introspector).Introspect(ctx, tok)
	if err != nil || info["active"] != false {
		t.Fatalf("after revocation the token is %v (%v), want inactive", info, err)
	}
}

func TestDiscoveryFromAnotherIssuerIsRefused(t *testing.T) {
	as := newAuthServer(t)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"issuer": as.URL, "token_endpoint": as.URL + "/token"})
	}))
	defer other.Close()
	p := fositeProvider(t, as, config.Profile{Issuer: other.URL})
	_, err := p.Obtain(context.Background(), nil)
	if failure.KindOf(err) != failure.Config || !strings.Contains(err.Error(), "another issuer") {
		t.Fatalf("err %v", err)
	}
}

// headlessBrowser is the person at the browser: it follows the
// authorization URL (fosite approves at once) back to the loopback redirect.
type headlessBrowser struct {
	tamper func(*url.URL) // changes the URL before it is opened, if set
	done   chan error
	page   chan string // the page the redirect answered, if set
}

func (h *headlessBrowser) Prompt(string, bool) (string, error) { return "", errors.New("no prompts") }

func (h *headlessBrowser) OpenURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	if h.tamper != nil {
		h.tamper(u)
	}
	go func() {
		resp, err := http.Get(u.String())
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if h.page != nil {
				h.page <- string(b)
			}
		}
		h.done <- err
	}()
	return nil
}

func TestFositeAuthorizationCodeWithPKCE(t *testing.T) {
	as := newAuthServer(t)
	ctx := context.Background()
	login := func(b *headlessBrowser) (*token.Token, error) {
		p := fositeProvider(t, as, config.Profile{Issuer: as.URL, Grant: "authorization_code", Scopes: []string{"offline", "read"}})
		return p.(Loginer).Login(ctx, b)
	}
	b := &headlessBrowser{done: make(chan error, 1)}
	tok, err := login(b)
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	if tok.AccessToken == "" || tok.RefreshToken == "" || tok.Grant != "authorization_code" {
		t.Fatalf("token %+v", tok)
	}
	// The refresh token keeps the grant alive without the person.
	p := fositeProvider(t, as, config.Profile{Issuer: as.URL, Grant: "authorization_code"})
	next, err := p.Obtain(ctx, tok)
	if err != nil || next.RefreshToken == tok.RefreshToken {
		t.Fatalf("refresh after login: %+v %v", next, err)
	}
	// Without a stored token, only a person can help.
	if _, err := p.Obtain(ctx, nil); failure.KindOf(err) != failure.Rejected {
		t.Errorf("no token: %v, want Rejected", err)
	}

	// A redirect with another state is refused.
	b = &headlessBrowser{done: make(chan error, 1), tamper: func(u *url.URL) {
		q := u.Query()
		q.Set("state", "forged-state-0123456789")
		u.RawQuery = q.Encode()
	}}
	if _, err := login(b); failure.KindOf(err) != failure.Rejected || !strings.Contains(err.Error(), "wrong state") {
		t.Errorf("forged state: %v", err)
	}
	// A denied consent is a clear rejection.
	as.deny.Store(true)
	b = &headlessBrowser{done: make(chan error, 1)}
	if _, err := login(b); failure.KindOf(err) != failure.Rejected || !strings.Contains(err.Error(), "access_denied") {
		t.Errorf("denied consent: %v", err)
	}
}

func TestFositePrivateKeyJWTClientAuth(t *testing.T) {
	as := newAuthServer(t)
	p := fositeProvider(t, as, config.Profile{TokenURL: as.URL + "/token", ClientID: "tb-pkjwt", ClientSecret: "none",
		AuthStyle: "private_key_jwt", PrivateKey: pemOf(clientKey), Scopes: []string{"read"}})
	tok, err := p.Obtain(context.Background(), nil)
	if err != nil || tok.AccessToken == "" {
		t.Fatalf("private_key_jwt: %+v %v", tok, err)
	}
	// A key the server does not know is refused.
	p = fositeProvider(t, as, config.Profile{TokenURL: as.URL + "/token", ClientID: "tb-pkjwt", ClientSecret: "none",
		AuthStyle: "private_key_jwt", PrivateKey: pemOf(issuerKey)})
	if _, err := p.Obtain(context.Background(), nil); failure.KindOf(err) != failure.Rejected {
		t.Errorf("unknown client key: %v, want Rejected", err)
	}
}

func TestFositeJWTBearerGrant(t *testing.T) {
	as := newAuthServer(t)
	claims := &config.AssertionClaims{Issuer: "tb-issuer", Subject: "user-1", KeyID: "issuer-key"}
	p := fositeProvider(t, as, config.Profile{TokenURL: as.URL + "/token", Grant: "jwt_bearer", PrivateKey: pemOf(issuerKey),
		AssertionClaims: claims, Scopes: []string{"read"}})
	tok, err := p.Obtain(context.Background(), nil)
	if err != nil || tok.AccessToken == "" || tok.Grant != "jwt_bearer" {
		t.Fatalf("jwt_bearer: %+v %v", tok, err)
	}
	// A subject the issuer may not speak for is refused.
	p = fositeProvider(t, as, config.Profile{TokenURL: as.URL + "/token", Grant: "jwt_bearer", PrivateKey: pemOf(issuerKey),
		AssertionClaims: &config.AssertionClaims{Issuer: "tb-issuer", Subject: "someone-else", KeyID: "issuer-key"}})
	if _, err := p.Obtain(context.Background(), nil); failure.KindOf(err) != failure.Rejected {
		t.Errorf("foreign subject: %v, want Rejected", err)
	}
	// A key that does not parse is a config error naming the field.
	p = fositeProvider(t, as, config.Profile{TokenURL: as.URL + "/token", Grant: "jwt_bearer", PrivateKey: "not a key", AssertionClaims: claims})
	if _, err := p.Obtain(context.Background(), nil); failure.KindOf(err) != failure.Config || !strings.Contains(err.Error(), "private_key") {
		t.Errorf("bad key: %v", err)
	}
}

// A private_key_jwt client that logs a person in authenticates with its
// assertion on the code exchange, the refresh and the revocation, as on the client-credentials grant (Hydra answered the
// exchange 401 invalid_client when only the first grant carried one).
func TestFositePrivateKeyJWTOnEveryCall(t *testing.T) {
	as := newAuthServer(t)
	ctx := context.Background()
	p := fositeProvider(t, as, config.Profile{Issuer: as.URL, Grant: "authorization_code", ClientID: "tb-pkjwt-code", ClientSecret: "none",
		AuthStyle: "private_key_jwt", PrivateKey: pemOf(clientKey), Scopes: []string{"offline", "read"}})
	tok, err := p.(Loginer).Login(ctx, &headlessBrowser{done: make(chan error, 1)})
	if err != nil || tok.AccessToken == "" || tok.RefreshToken == "" {
		t.Fatalf("login (code exchange): %+v %v", tok, err)
	}
	next, err := p.Obtain(ctx, tok)
	if err != nil || next.AccessToken == tok.AccessToken {
		t.Fatalf("refresh: %+v %v", next, err)
	}
	// (fosite's introspection takes only Basic or a bearer token, so it is
	// not tried here; revocation authenticates the client as the token
	// endpoint does.)
	if err := p.(Revoker).Revoke(ctx, next, nil); err != nil {
		t.Fatalf("revocation: %v", err)
	}
	if _, err := p.Obtain(ctx, next); failure.KindOf(err) != failure.Rejected {
		t.Errorf("refresh after revocation: %v, want Rejected", err)
	}
}

// The login page says "logged in" only once the code was exchanged: a
// refused exchange (here a wrong client secret) says the login failed.
func TestLoginPageWaitsForTheExchange(t *testing.T) {
	as := newAuthServer(t)
	for _, c := range []struct {
		secret string
		page   string
	}{{fositeSecret, "logged in"}, {"wrong-secret", "login failed"}} {
		p := fositeProvider(t, as, config.Profile{Issuer: as.URL, Grant: "authorization_code", ClientSecret: config.Secret(c.secret), Scopes: []string{"offline"}})
		b := &headlessBrowser{done: make(chan error, 1), page: make(chan string, 1)}
		_, err := p.(Loginer).Login(context.Background(), b)
		if page := <-b.page; !strings.Contains(page, c.page) {
			t.Errorf("secret %q: the page says %q (login: %v), want %q", c.secret, page, err, c.page)
		}
	}
}
