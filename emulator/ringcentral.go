package emulator

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"
)

// RingCentral protocol constants, from VENDORS.md.
const (
	rcJWTBearer     = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	rcGrace         = 10 * time.Second // old refresh token's life after the new access token is used
	rcAuthWindow    = time.Minute
	rcPenalty       = 60 * time.Second
	rcAccountID     = "37439510"
	rcOwnerID       = "1234567890"
	rcScope         = "ReadAccounts ReadCallLog"
	rcProductionURL = "https://platform.ringcentral.com"
	rcSandboxURL    = "https://platform.devtest.ringcentral.com"
)

// RingCentral emulates RingCentral's OAuth endpoints: the JWT-bearer grant with HTTP Basic
// client authentication, single-use refresh tokens, revocation, the Auth-group rate limit with
// its penalty, and GET /restapi/v1.0/account/~.
//
// Sessions: each JWT exchange opens a session (an access token and a refresh token that
// refreshes keep replacing). At most MaxSessions sessions live per JWT credential; opening one
// more ends the oldest, whose tokens stop working at once.
//
// Refresh rule: a refresh token is single-use. Refreshing kills the session's access token at
// once. The refresh token just used stays alive as a fallback until 10 s after the new access
// token is first used on the API; reusing it before then returns a fresh pair (and kills the
// pair it had produced), and if the new access token had already been used that reuse is its
// last. Revoking any of a session's tokens ends the whole session.
//
// Error codes: OAU-146 (bad client), OAU-128 (expired), OAU-129 (corrupted; also used for a
// JWT of the other environment, whose description says so, and for an unknown credential) and
// OAU-149 (unparsable) are from VENDORS.md; OAU-101 (missing or bad parameter), OAU-211 (refresh
// token revoked, used or unknown) and CMN-301 (rate limit) are the emulator's choice.
type RingCentral struct {
	base

	// ClientID and ClientSecret are the app's credentials, sent with HTTP Basic.
	ClientID, ClientSecret string
	// JWT is the user's JWT credential for this environment (see MintJWT).
	JWT string
	// Environment is "production" or "sandbox"; a JWT is only accepted in its own environment.
	Environment string
	// TokenTTL and RefreshTTL are the access and refresh token lifetimes.
	TokenTTL, RefreshTTL time.Duration
	// AuthLimitPerMinute is how many auth requests (token and revoke) a client may make per
	// minute before a 60 s penalty; 0 disables the limit.
	AuthLimitPerMinute int
	// MaxSessions is how many sessions a JWT credential may hold at once; 0 means no cap.
	MaxSessions int
	// Now is the emulator's clock.
	Now Clock

	mux      *http.ServeMux
	minted   map[string]bool
	sessions map[string][]*rcSession // JWT credential -> its live sessions, oldest first
	access   map[string]*rcSession
	refresh  map[string]*rcSession // current and fallback refresh tokens
	authLog  *slidingLog
	penalty  map[string]time.Time // client id -> end of its penalty
}

type rcSession struct {
	credential, clientID, endpointID string

	at           string
	atExp        time.Time
	rt           string
	rtExp        time.Time
	prevRT       string // the refresh token that produced the current pair
	prevExp      time.Time
	prevArmed    bool      // the current access token has been used: prevRT's grace is running
	prevDeadline time.Time // end of prevRT's grace
	dead         bool
}

// NewRingCentral returns a RingCentral emulator for environment ("production" or "sandbox";
// anything but "sandbox" is production) with default test credentials and a JWT credential
// valid for a year, on clock now (time.Now when nil).
func NewRingCentral(now Clock, environment string) *RingCentral {
	if now == nil {
		now = time.Now
	}
	if environment != "sandbox" {
		environment = "production"
	}
	s := &RingCentral{
		ClientID:           "rc-client-id",
		ClientSecret:       "rc-client-secret",
		Environment:        environment,
		TokenTTL:           3600 * time.Second,
		RefreshTTL:         604800 * time.Second,
		AuthLimitPerMinute: 5,
		MaxSessions:        5,
		Now:                now,
		minted:             make(map[string]bool),
		sessions:           make(map[string][]*rcSession),
		access:             make(map[string]*rcSession),
		refresh:            make(map[string]*rcSession),
		authLog:            newSlidingLog(rcAuthWindow),
		penalty:            make(map[string]time.Time),
	}
	s.JWT = s.MintJWT(environment, now().AddDate(1, 0, 0))
	mux := newRouter()
	route(mux, "/restapi/oauth/token", methods{http.MethodPost: s.token})
	route(mux, "/restapi/oauth/revoke", methods{http.MethodPost: s.revoke})
	route(mux, "/restapi/v1.0/account/~", methods{http.MethodGet: s.account})
	s.mux = mux
	return s
}

// ServeHTTP implements http.Handler.
func (s *RingCentral) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.serve(w, r, s.mux) }

// rcHost returns the platform URL of an environment.
func rcHost(environment string) string {
	if environment == "sandbox" {
		return rcSandboxURL
	}
	return rcProductionURL
}

// MintJWT makes a JWT credential for environment ("production" or "sandbox") that expires at
// exp, and makes this emulator know it, so tests can present wrong-environment and expired
// credentials. Claims: aud the environment's token URL, iss its host URL, sub "user-1", exp,
// iat, jti.
func (s *RingCentral) MintJWT(environment string, exp time.Time) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	host := rcHost(environment)
	tok := mintJWT(map[string]any{
		"aud": host + "/restapi/oauth/token",
		"iss": host,
		"sub": "user-1",
		"iat": s.Now().Unix(),
		"exp": exp.Unix(),
		"jti": randomHex(16),
	})
	s.minted[tok] = true
	return tok
}

// ValidAccessToken reports whether at would be accepted by the API now.
func (s *RingCentral) ValidAccessToken(at string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, st := s.lookupAccess(at, s.Now())
	return st == tokenValid
}

// RevokeAll ends every session, so every access and refresh token dies.
func (s *RingCentral) RevokeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sessions = make(map[string][]*rcSession)
	for _, sess := range s.access {
		sess.dead = true
	}
	for _, sess := range s.refresh {
		sess.dead = true
	}
	s.access = make(map[string]*rcSession)
	s.refresh = make(map[string]*rcSession)
}

// rcError writes RingCentral's OAuth error body, which carries an OAU code in errors[].
func rcError(w http.ResponseWriter, status int, code, desc, errCode string) {
	writeJSON(w, status, map[string]any{
		"error":             code,
		"error_description": desc,
		"errors":            []any{map[string]any{"errorCode": errCode, "message": desc}},
	})
}

// authLimited applies the Auth group limit to client and, when it is exceeded, writes the 429.
// During a penalty every request restarts it. The caller holds s.mu.
func (s *RingCentral) authLimited(w http.ResponseWriter, client string, now time.Time) bool {
	limit := s.AuthLimitPerMinute
	if limit <= 0 {
		return false
	}
	h := w.Header()
	h.Set("X-Rate-Limit-Group", "auth")
	h.Set("X-Rate-Limit-Limit", strconv.Itoa(limit))
	h.Set("X-Rate-Limit-Window", strconv.Itoa(seconds(rcAuthWindow)))
	ok, remaining := false, 0
	if until, penalised := s.penalty[client]; !penalised || !now.Before(until) {
		delete(s.penalty, client)
		ok, remaining = s.authLog.allow(client, limit, now)
	}
	h.Set("X-Rate-Limit-Remaining", strconv.Itoa(remaining))
	if ok {
		return false
	}
	s.penalty[client] = now.Add(rcPenalty)
	h.Set("Retry-After", strconv.Itoa(seconds(rcPenalty)))
	writeJSON(w, http.StatusTooManyRequests, map[string]any{
		"errorCode": "CMN-301",
		"message":   "Request rate exceeded",
		"errors":    []any{map[string]any{"errorCode": "CMN-301", "message": "Request rate exceeded"}},
	})
	return true
}

// authenticate runs what the token and revoke endpoints share: the rate limit, HTTP Basic
// client authentication and the form body. It writes the error and returns false on failure.
func (s *RingCentral) authenticate(w http.ResponseWriter, r *http.Request, formErr error, now time.Time) bool {
	presented, ok := basicClient(r, s.ClientID, s.ClientSecret)
	if s.authLimited(w, presented, now) {
		return false
	}
	if !ok {
		desc := "Invalid client: " + presented
		if presented == "" {
			desc = "Client authentication is required: HTTP Basic client_id:client_secret"
		}
		w.Header().Set("WWW-Authenticate", `Basic realm="RingCentral"`)
		rcError(w, http.StatusUnauthorized, "invalid_client", desc, "OAU-146")
		return false
	}
	if formErr != nil {
		rcError(w, http.StatusUnsupportedMediaType, "invalid_request", "Content-Type must be application/x-www-form-urlencoded", "OAU-101")
		return false
	}
	return true
}

// token serves POST /restapi/oauth/token.
func (s *RingCentral) token(w http.ResponseWriter, r *http.Request) {
	form, err := readForm(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	grant := form.Get("grant_type")
	key := grant
	if grant == rcJWTBearer {
		key = "jwt_bearer"
	}
	s.countToken(key, "jwt_bearer", "refresh_token")
	now := s.Now()
	if !s.authenticate(w, r, err, now) {
		return
	}
	switch grant {
	case rcJWTBearer:
		s.exchange(w, form.Get("assertion"), now)
	case "refresh_token":
		s.refreshGrant(w, form.Get("refresh_token"), now)
	case "":
		rcError(w, http.StatusBadRequest, "invalid_request", "Parameter [grant_type] is missing", "OAU-101")
	default:
		rcError(w, http.StatusBadRequest, "unsupported_grant_type", "Unsupported grant type: "+grant, "OAU-101")
	}
}

// exchange opens a session for a JWT credential of this environment.
func (s *RingCentral) exchange(w http.ResponseWriter, assertion string, now time.Time) {
	if assertion == "" {
		rcError(w, http.StatusBadRequest, "invalid_request", "Parameter [assertion] is missing", "OAU-101")
		return
	}
	claims, err := parseJWT(assertion)
	if err != nil {
		rcError(w, http.StatusBadRequest, "invalid_grant", "Invalid JWT: cannot parse assertion", "OAU-149")
		return
	}
	want := rcHost(s.Environment) + "/restapi/oauth/token"
	if aud := audiences(claims["aud"]); !slices.Contains(aud, want) {
		rcError(w, http.StatusBadRequest, "invalid_grant", fmt.Sprintf(
			"Invalid JWT: audience %q is not this environment (%s expects %q): the credential belongs to another environment",
			aud, s.Environment, want), "OAU-129")
		return
	}
	if assertion != s.JWT && !s.minted[assertion] {
		rcError(w, http.StatusBadRequest, "invalid_grant", "Invalid JWT: unknown or corrupted credential", "OAU-129")
		return
	}
	if exp, ok := claims["exp"].(float64); ok && !now.Before(time.Unix(int64(exp), 0)) {
		rcError(w, http.StatusBadRequest, "invalid_grant", "Invalid JWT: token is expired", "OAU-128")
		return
	}
	sess := &rcSession{credential: assertion, clientID: s.ClientID, endpointID: randomToken(9)}
	s.sessions[assertion] = append(s.sessions[assertion], sess)
	for s.MaxSessions > 0 && len(s.sessions[assertion]) > s.MaxSessions {
		s.end(s.sessions[assertion][0]) // the oldest session dies
	}
	s.issue(w, sess, now)
}

// audiences reads an aud claim, which may be a string or an array of strings.
func audiences(v any) []string {
	switch a := v.(type) {
	case string:
		return []string{a}
	case []any:
		var out []string
		for _, x := range a {
			if str, ok := x.(string); ok {
				out = append(out, str)
			}
		}
		return out
	}
	return nil
}

// refreshGrant applies the single-use refresh rule described on RingCentral.
func (s *RingCentral) refreshGrant(w http.ResponseWriter, rt string, now time.Time) {
	if rt == "" {
		rcError(w, http.StatusBadRequest, "invalid_request", "Parameter [refresh_token] is missing", "OAU-101")
		return
	}
	sess := s.refresh[rt]
	if sess == nil || sess.dead || sess.clientID != s.ClientID {
		rcError(w, http.StatusBadRequest, "invalid_grant", "Token not found: revoked, already used or never issued", "OAU-211")
		return
	}
	switch rt {
	case sess.rt:
		if !now.Before(sess.rtExp) {
			rcError(w, http.StatusBadRequest, "invalid_grant", "Token is expired", "OAU-128")
			return
		}
		delete(s.refresh, sess.prevRT)
		sess.prevRT, sess.prevExp, sess.prevArmed = rt, sess.rtExp, false
	case sess.prevRT:
		if (sess.prevArmed && !now.Before(sess.prevDeadline)) || !now.Before(sess.prevExp) {
			delete(s.refresh, rt)
			sess.prevRT = ""
			rcError(w, http.StatusBadRequest, "invalid_grant", "Token not found: revoked, already used or never issued", "OAU-211")
			return
		}
		delete(s.refresh, sess.rt) // the pair this token produced earlier dies
		if sess.prevArmed {
			delete(s.refresh, sess.prevRT) // reused after the new access token was used: last use
			sess.prevRT = ""
		}
	}
	delete(s.access, sess.at) // the old access token dies at once
	s.issue(w, sess, now)
}

// issue gives sess a new token pair and writes the token response.
func (s *RingCentral) issue(w http.ResponseWriter, sess *rcSession, now time.Time) {
	sess.at, sess.atExp = randomToken(32), now.Add(s.TokenTTL)
	sess.rt, sess.rtExp = randomToken(32), now.Add(s.RefreshTTL)
	s.access[sess.at] = sess
	s.refresh[sess.rt] = sess
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token":             sess.at,
		"token_type":               "bearer",
		"expires_in":               seconds(s.TokenTTL),
		"refresh_token":            sess.rt,
		"refresh_token_expires_in": seconds(s.RefreshTTL),
		"scope":                    rcScope,
		"owner_id":                 rcOwnerID,
		"endpoint_id":              sess.endpointID,
	})
}

// end kills a session and all its tokens.
func (s *RingCentral) end(sess *rcSession) {
	sess.dead = true
	delete(s.access, sess.at)
	delete(s.refresh, sess.rt)
	delete(s.refresh, sess.prevRT)
	live := s.sessions[sess.credential]
	if i := slices.Index(live, sess); i >= 0 {
		live = slices.Delete(live, i, i+1)
	}
	if len(live) == 0 {
		delete(s.sessions, sess.credential)
	} else {
		s.sessions[sess.credential] = live
	}
}

// revoke serves POST /restapi/oauth/revoke: any of a session's tokens ends the session. Like
// RFC 7009 it answers 200 also for a token it does not know (or one of another client).
func (s *RingCentral) revoke(w http.ResponseWriter, r *http.Request) {
	form, err := readForm(r)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.count("revoke")
	if !s.authenticate(w, r, err, s.Now()) {
		return
	}
	tok := form.Get("token")
	if tok == "" {
		rcError(w, http.StatusBadRequest, "invalid_request", "Parameter [token] is missing", "OAU-101")
		return
	}
	sess := s.access[tok]
	if sess == nil {
		sess = s.refresh[tok]
	}
	if sess != nil && sess.clientID == s.ClientID {
		s.end(sess)
	}
	w.WriteHeader(http.StatusOK)
}

func (s *RingCentral) lookupAccess(at string, now time.Time) (*rcSession, tokenState) {
	sess := s.access[at]
	switch {
	case at == "" || sess == nil || sess.dead:
		return nil, tokenUnknown
	case !now.Before(sess.atExp):
		return sess, tokenExpired
	default:
		return sess, tokenValid
	}
}

// account serves GET /restapi/v1.0/account/~. The first successful use of a session's new
// access token starts the grace period of the refresh token that produced it.
func (s *RingCentral) account(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.count("api")
	now := s.Now()
	sess, st := s.lookupAccess(bearer(r), now)
	switch st {
	case tokenUnknown:
		writeJSON(w, http.StatusUnauthorized, map[string]any{
			"errorCode": "TokenInvalid",
			"message":   "Invalid token",
			"errors":    []any{map[string]any{"errorCode": "OAU-213", "message": "Token not found"}},
		})
		return
	case tokenExpired:
		writeJSON(w, http.StatusUnauthorized, map[string]any{
			"errorCode": "TokenExpired",
			"message":   "Access token expired",
			"errors":    []any{map[string]any{"errorCode": "OAU-128", "message": "Access token expired"}},
		})
		return
	}
	if sess.prevRT != "" && !sess.prevArmed {
		sess.prevArmed, sess.prevDeadline = true, now.Add(rcGrace)
	}
	host := rcHost(s.Environment)
	writeJSON(w, http.StatusOK, map[string]any{
		"id":          rcAccountID,
		"uri":         host + "/restapi/v1.0/account/" + rcAccountID,
		"status":      "Confirmed",
		"mainNumber":  "+16505550100",
		"serviceInfo": map[string]any{"brand": map[string]any{"id": "1210", "name": "RingCentral"}},
	})
}
