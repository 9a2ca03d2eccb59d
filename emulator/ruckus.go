package emulator

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Ruckus emulates RUCKUS One: POST /oauth2/token/{tenantId} with a client_credentials form body
// (client id and secret in the body, never HTTP Basic) returning a JWT with no refresh token,
// and the protected API GET /venues with optional MSP delegation via x-rks-tenantid.
//
// Choices where VENDORS.md is silent: an unknown tenant in the path is 404 {"error":
// "invalid_request"}; an Authorization header on the token request is 401 invalid_client,
// because the vendor wants the body; parameters in the query string are not read (form body
// only), so a client that puts them there gets 400 invalid_request.
type Ruckus struct {
	base

	// ClientID and ClientSecret are the Application Token's client id and shared secret.
	ClientID, ClientSecret string
	// TenantID is the tenant in the token URL.
	TenantID string
	// DelegatedTenants are the tenants an MSP may address with the x-rks-tenantid header.
	DelegatedTenants []string
	// TokenTTL is the access token lifetime (expires_in).
	TokenTTL time.Duration
	// Now is the emulator's clock.
	Now Clock

	mux    *http.ServeMux
	tokens expiringTokens
}

// NewRuckus returns a RUCKUS One emulator with the default test credentials, on clock now
// (time.Now when nil).
func NewRuckus(now Clock) *Ruckus {
	if now == nil {
		now = time.Now
	}
	s := &Ruckus{
		ClientID:         "ruckus-client-id",
		ClientSecret:     "ruckus-client-secret",
		TenantID:         "0a1b2c3d4e5f",
		DelegatedTenants: delegatedTenants(ruckusMSPCustomers),
		TokenTTL:         7199 * time.Second,
		Now:              now,
		tokens:           make(expiringTokens),
	}
	mux := newRouter()
	route(mux, "/oauth2/token/{tenantId}", methods{http.MethodPost: s.token})
	route(mux, "/venues", methods{http.MethodGet: s.venues})
	s.mux = mux
	return s
}

// ServeHTTP implements http.Handler.
func (s *Ruckus) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.serve(w, r, s.mux) }

// RevokeAll invalidates every access token issued so far.
func (s *Ruckus) RevokeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens = make(expiringTokens)
}

// ValidAccessToken reports whether at would be accepted by the API now.
func (s *Ruckus) ValidAccessToken(at string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokens.check(at, s.Now()) == tokenValid
}

func (s *Ruckus) token(w http.ResponseWriter, r *http.Request) {
	form, err := readForm(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	grant := form.Get("grant_type")
	s.countToken(grant, "client_credentials")
	// The seed documents the form body, which the provider sends; the
	// service also takes HTTP Basic, which requests-oauthlib, authlib and
	// third-party RUCKUS clients send by default.
	id, secret := form.Get("client_id"), form.Get("client_secret")
	if bid, bsecret, ok := r.BasicAuth(); ok && id == "" && secret == "" {
		id, secret = bid, bsecret
	}
	switch {
	case r.Header.Get("Authorization") != "" && !strings.HasPrefix(strings.ToLower(r.Header.Get("Authorization")), "basic "):
		oauthError(w, http.StatusUnauthorized, "invalid_client", "client authentication must be the form body or HTTP Basic")
		return
	case r.PathValue("tenantId") != s.TenantID:
		oauthError(w, http.StatusNotFound, "invalid_request", "unknown tenant "+r.PathValue("tenantId"))
		return
	case err != nil:
		oauthError(w, http.StatusUnsupportedMediaType, "invalid_request", "Content-Type must be application/x-www-form-urlencoded")
		return
	case grant == "" && r.URL.Query().Get("grant_type") != "":
		oauthError(w, http.StatusBadRequest, "invalid_request", "parameters must be sent in the form body, not in the query string")
		return
	case grant == "":
		oauthError(w, http.StatusBadRequest, "invalid_request", "grant_type is required")
		return
	case grant != "client_credentials":
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "only client_credentials is supported")
		return
	case id == "" || secret == "":
		oauthError(w, http.StatusBadRequest, "invalid_request", "client_id and client_secret are required")
		return
	case id != s.ClientID || secret != s.ClientSecret:
		oauthError(w, http.StatusUnauthorized, "invalid_client", "bad client credentials")
		return
	}
	now := s.Now()
	claims := jwtClaims("https://ruckus.cloud", s.ClientID, now, s.TokenTTL)
	claims["tenant_id"] = s.TenantID
	claims["client_id"] = s.ClientID
	at := mintJWT(claims)
	s.tokens.put(at, now.Add(s.TokenTTL), now)
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": at,
		"token_type":   "Bearer",
		"expires_in":   seconds(s.TokenTTL),
	})
}

// ruckusMSPCustomers is how many tenants are delegated to the emulated MSP.
const ruckusMSPCustomers = 300

// delegatedTenants names n delegated tenants: delegated-0001, ...
func delegatedTenants(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("delegated-%04d", i+1)
	}
	return out
}

// venues serves GET /venues. The tenant's own id is also accepted in x-rks-tenantid.
func (s *Ruckus) venues(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.count("api")
	if st := s.tokens.check(bearer(r), s.Now()); st != tokenValid {
		bearerError(w, st)
		return
	}
	tenant := s.TenantID
	if d := r.Header.Get("x-rks-tenantid"); d != "" {
		if d != s.TenantID && !slices.Contains(s.DelegatedTenants, d) {
			writeJSON(w, http.StatusForbidden, map[string]any{
				"error":   "forbidden",
				"message": "tenant " + d + " is not delegated to " + s.TenantID,
			})
			return
		}
		tenant = d
	}
	writeJSON(w, http.StatusOK, []any{
		map[string]any{"id": "venue-" + tenant + "-1", "name": "Headquarters", "tenantId": tenant},
		map[string]any{"id": "venue-" + tenant + "-2", "name": "Branch Office", "tenantId": tenant},
	})
}
