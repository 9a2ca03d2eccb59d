package emulator

import (
	"net/http"
	"time"
)

// CatalystCenter emulates Cisco Catalyst Center (DNA Center), the target of tokenbroker's
// generic oauth2 provider: POST /dna/system/api/v1/auth/token with HTTP Basic returns
// {"Token": "<jwt>"} valid for an hour, sent back as the X-Auth-Token header on
// GET /dna/intent/api/v1/network-device.
//
// The request body of the token call is ignored, as the vendor does: a generic OAuth2 client
// that posts grant_type=client_credentials with Basic auth still gets a token. A token sent as
// "Authorization: Bearer" is not accepted: Catalyst only reads X-Auth-Token.
type CatalystCenter struct {
	base

	// Username and Password are the HTTP Basic credentials of the token call.
	Username, Password string
	// TokenTTL is the token lifetime (1 h at the vendor).
	TokenTTL time.Duration
	// Now is the emulator's clock.
	Now Clock

	mux    *http.ServeMux
	tokens expiringTokens
}

// NewCatalystCenter returns a Catalyst Center emulator with the default test credentials, on
// clock now (time.Now when nil).
func NewCatalystCenter(now Clock) *CatalystCenter {
	if now == nil {
		now = time.Now
	}
	s := &CatalystCenter{
		Username: "admin",
		Password: "catalyst-password",
		TokenTTL: time.Hour,
		Now:      now,
		tokens:   make(expiringTokens),
	}
	mux := newRouter()
	route(mux, "/dna/system/api/v1/auth/token", methods{http.MethodPost: s.token})
	route(mux, "/dna/intent/api/v1/network-device", methods{http.MethodGet: s.devices})
	s.mux = mux
	return s
}

// ServeHTTP implements http.Handler.
func (s *CatalystCenter) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.serve(w, r, s.mux) }

// RevokeAll invalidates every token issued so far.
func (s *CatalystCenter) RevokeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tokens = make(expiringTokens)
}

// ValidAccessToken reports whether tok would be accepted by the API now.
func (s *CatalystCenter) ValidAccessToken(tok string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokens.check(tok, s.Now()) == tokenValid
}

func (s *CatalystCenter) token(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.countToken("token", "token")
	if _, ok := basicClient(r, s.Username, s.Password); !ok {
		w.Header().Set("WWW-Authenticate", `Basic realm="Catalyst Center"`)
		writeJSON(w, http.StatusUnauthorized, map[string]any{
			"error": "Authentication has failed. Please provide valid credentials.",
		})
		return
	}
	now := s.Now()
	claims := jwtClaims("catalyst-center", s.Username, now, s.TokenTTL)
	claims["username"] = s.Username
	claims["roles"] = []string{"SUPER-ADMIN-ROLE"}
	claims["authSource"] = "internal"
	tok := mintJWT(claims)
	s.tokens.put(tok, now.Add(s.TokenTTL), now)
	writeJSON(w, http.StatusOK, map[string]any{"Token": tok})
}

func (s *CatalystCenter) devices(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.count("api")
	if st := s.tokens.check(r.Header.Get("X-Auth-Token"), s.Now()); st != tokenValid {
		msg := "Missing or invalid X-Auth-Token"
		if st == tokenExpired {
			msg = "X-Auth-Token has expired"
		}
		writeJSON(w, http.StatusUnauthorized, map[string]any{
			"response": map[string]any{"errorCode": "Unauthorized", "message": msg},
			"version":  "1.0",
		})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"response": []any{map[string]any{
			"id":                  "6a49c827-9b28-490b-8df0-8b6c3b582d8a",
			"hostname":            "cat9k-core-1.example.com",
			"managementIpAddress": "10.10.20.51",
			"platformId":          "C9300-24U",
			"softwareVersion":     "17.9.4",
			"reachabilityStatus":  "Reachable",
		}},
		"version": "1.0",
	})
}
