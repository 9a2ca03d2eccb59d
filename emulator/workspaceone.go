package emulator

import (
	"net/http"
	"time"
)

// WorkspaceOne emulates Workspace ONE Access: POST /SAAS/auth/oauthtoken with HTTP Basic client
// authentication, the client_credentials and refresh_token grants, JWT access tokens, and the
// SCIM API GET /SAAS/jersey/manager/api/scim/Users.
//
// Choices where VENDORS.md is silent: grant_type is read from the form body, else the query
// string (some clients put it there); every other parameter only from the form body. A refresh
// issues a new access token and returns the same refresh token (no rotation); refresh tokens
// live until RevokeAll. Errors are plain OAuth JSON: 401 invalid_client, 400 invalid_grant,
// invalid_request or unsupported_grant_type, 415 for a non-form body.
type WorkspaceOne struct {
	base

	// ClientID and ClientSecret are the service client's credentials, sent with HTTP Basic.
	ClientID, ClientSecret string
	// IssueRefreshTokens mirrors the per-client "issue refresh token" setting.
	IssueRefreshTokens bool
	// TokenTTL is the access token lifetime (3 h by default, per client at the vendor).
	TokenTTL time.Duration
	// Now is the emulator's clock.
	Now Clock

	mux     *http.ServeMux
	access  expiringTokens
	refresh map[string]string // refresh token -> client id
}

// NewWorkspaceOne returns a Workspace ONE Access emulator with the default test credentials,
// on clock now (time.Now when nil).
func NewWorkspaceOne(now Clock) *WorkspaceOne {
	if now == nil {
		now = time.Now
	}
	s := &WorkspaceOne{
		ClientID:           "ws1-client-id",
		ClientSecret:       "ws1-client-secret",
		IssueRefreshTokens: true,
		TokenTTL:           3 * time.Hour,
		Now:                now,
		access:             make(expiringTokens),
		refresh:            make(map[string]string),
	}
	mux := newRouter()
	route(mux, "/SAAS/auth/oauthtoken", methods{http.MethodPost: s.token})
	route(mux, "/SAAS/jersey/manager/api/scim/Users", methods{http.MethodGet: s.users})
	s.mux = mux
	return s
}

// ServeHTTP implements http.Handler.
func (s *WorkspaceOne) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.serve(w, r, s.mux) }

// RevokeAll invalidates every access and refresh token issued so far.
func (s *WorkspaceOne) RevokeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.access = make(expiringTokens)
	s.refresh = make(map[string]string)
}

// ValidAccessToken reports whether at would be accepted by the API now.
func (s *WorkspaceOne) ValidAccessToken(at string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.access.check(at, s.Now()) == tokenValid
}

func (s *WorkspaceOne) token(w http.ResponseWriter, r *http.Request) {
	form, err := readForm(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	grant := form.Get("grant_type")
	if grant == "" {
		grant = r.URL.Query().Get("grant_type")
	}
	s.countToken(grant, "client_credentials", "refresh_token")
	if _, ok := basicClient(r, s.ClientID, s.ClientSecret); !ok {
		w.Header().Set("WWW-Authenticate", `Basic realm="oauth"`)
		oauthError(w, http.StatusUnauthorized, "invalid_client", "HTTP Basic client authentication failed")
		return
	}
	if err != nil {
		oauthError(w, http.StatusUnsupportedMediaType, "invalid_request", "Content-Type must be application/x-www-form-urlencoded")
		return
	}
	now := s.Now()
	switch grant {
	case "client_credentials":
		rt := ""
		if s.IssueRefreshTokens {
			rt = randomToken(32)
			s.refresh[rt] = s.ClientID
		}
		s.issue(w, rt, now)
	case "refresh_token":
		rt := form.Get("refresh_token")
		switch {
		case rt == "" && r.URL.Query().Get("refresh_token") != "":
			oauthError(w, http.StatusBadRequest, "invalid_request", "refresh_token must be sent in the form body")
		case rt == "":
			oauthError(w, http.StatusBadRequest, "invalid_request", "refresh_token is required")
		case s.refresh[rt] != s.ClientID:
			oauthError(w, http.StatusBadRequest, "invalid_grant", "Invalid refresh token")
		default:
			s.issue(w, rt, now)
		}
	case "":
		oauthError(w, http.StatusBadRequest, "invalid_request", "grant_type is required")
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "unsupported grant_type "+grant)
	}
}

// issue mints an access token and writes the token response, with rt when not empty.
func (s *WorkspaceOne) issue(w http.ResponseWriter, rt string, now time.Time) {
	claims := jwtClaims("https://ws1.emulator.test/SAAS/auth", s.ClientID, now, s.TokenTTL)
	claims["prn"] = s.ClientID + "@emulator"
	claims["scope"] = "admin"
	claims["domain"] = "System Domain"
	at := mintJWT(claims)
	s.access.put(at, now.Add(s.TokenTTL), now)
	resp := map[string]any{
		"access_token": at,
		"token_type":   "Bearer",
		"expires_in":   seconds(s.TokenTTL),
		"scope":        "admin",
	}
	if rt != "" {
		resp["refresh_token"] = rt
	}
	writeJSON(w, http.StatusOK, resp)
}

// users serves the SCIM user list.
func (s *WorkspaceOne) users(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.count("api")
	if st := s.access.check(bearer(r), s.Now()); st != tokenValid {
		bearerError(w, st)
		return
	}
	user := func(id, name, given, family string) map[string]any {
		return map[string]any{
			"id":       id,
			"userName": name,
			"name":     map[string]any{"givenName": given, "familyName": family},
			"emails":   []any{map[string]any{"value": name + "@example.com"}},
			"active":   true,
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"schemas":      []string{"urn:scim:schemas:core:1.0"},
		"totalResults": 2,
		"itemsPerPage": 2,
		"startIndex":   1,
		"Resources": []any{
			user("7b1f0c2e-0001", "jdoe", "Jane", "Doe"),
			user("7b1f0c2e-0002", "rroe", "Richard", "Roe"),
		},
	})
}
