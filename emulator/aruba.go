package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Aruba Central (classic API gateway) protocol constants, from VENDORS.md and seed 004.
const (
	arubaAccessTTL   = 7200 * time.Second // not configurable at the vendor either
	arubaCodeTTL     = 300 * time.Second  // step 3 -> step 4 window
	arubaIdleTTL     = 15 * 24 * time.Hour
	arubaSessionTTL  = time.Hour // emulator choice: the guide does not say how long a login lasts
	arubaStepWindow  = time.Second
	arubaStepLimit   = 1 // login, MSP client credentials and auth code: 1 call/s each, per client
	arubaDailyQuota  = 5000
	arubaPerSecond   = 7
	arubaAuthFailure = "Auth failure"
	arubaRateLimited = "API rate limit exceeded"
)

// Aruba emulates Aruba Central's API gateway: the OAuth grant (login with CSRF cookie, optional
// MSP client credentials, auth code, token exchange), rotating refresh tokens, token deletion,
// and GET /monitoring/v1/aps with the per-second and daily limits and their headers.
//
// Refresh-token rotation rule (Central does not document when the previous refresh token dies,
// so this is the emulator's simple, strict version): every grant keeps its newest refresh token
// and at most one previous one. A refresh returns a new access token and a new refresh token.
// The previous refresh token stays usable as a fallback until the new pair is proven, that is
// until the new access token is first used successfully on the API or the new refresh token
// is itself used, whichever comes first; then it dies. Refreshing with the fallback discards
// the unproven newest refresh token (the client evidently never stored it). Access tokens live
// their full 7200 s even after a refresh. A grant whose refresh token was not used for 15 days
// dies.
//
// Invalid, expired, used or foreign refresh tokens and auth codes get
// 400 {"error":"invalid_grant","error_description":"Invalid refresh token"} (resp. "Invalid
// authorization code"), the standard OAuth shape that clients classify as "re-login needed";
// missing or malformed parameters get Central's 400 {"extra":{},"message":"..."}.
type Aruba struct {
	base
	arubaWebhooks // webhook settings and tokens (webhooks.go)

	// ClientID and ClientSecret are the customer's API gateway application.
	ClientID, ClientSecret string
	// Username and Password are the (non-SSO) user of the login step.
	Username, Password string
	// CustomerID is the customer that ClientID belongs to.
	CustomerID string
	// MSPClientID and MSPClientSecret are the MSP application, also of CustomerID: it mints
	// per-tenant credentials (step 2) and can itself get tokens (steps 3-4) that call tenants
	// with the TenantID header.
	MSPClientID, MSPClientSecret string
	// DailyQuota is the number of API calls accepted per customer per day (GMT).
	DailyQuota int
	// PerSecondLimit is the number of API calls accepted per customer in any rolling second.
	PerSecondLimit int
	// Customers are the MSP account's tenants (CustomerID is the MSP's own
	// account): the paged MSP API lists them, and an API call with the
	// TenantID header of one of them is accepted, counted against the MSP.
	Customers []ArubaCustomer
	// StrictRotation makes a refresh kill the refresh token it used at once,
	// with no fallback: the harshest reading of "returns a NEW refresh token",
	// under which a client that dies before storing the new one must log in
	// again. Tests use it to show that loss is reported, never hidden.
	StrictRotation bool
	// Now is the emulator's clock.
	Now Clock

	mux        *http.ServeMux
	sessions   map[string]*arubaSession // session cookie -> login session
	minted     map[string]*arubaClient  // client id -> per-tenant credentials an MSP minted
	byCustomer map[string]*arubaClient  // customer id -> the same
	codes      map[string]*arubaCode    // auth code -> what it grants
	refresh    map[string]*arubaGrant   // live refresh token (newest or fallback) -> its grant
	access     map[string]*arubaAccess  // access token -> its grant and expiry
	steps      *slidingLog              // OAuth steps 1-3, keyed step+client
	perSecond  *slidingLog              // API calls, keyed by customer
	daily      map[string]*arubaDay     // API calls today, keyed by customer
	accepted   int64
	limited    int64
}

// ArubaCustomer is one tenant of the MSP account, as the MSP API lists it.
type ArubaCustomer struct {
	ID   string `json:"customer_id"`
	Name string `json:"customer_name"`
}

// arubaMSPCustomers is how many tenants the emulated MSP account has.
const arubaMSPCustomers = 300

// arubaListLimit is the most the MSP list APIs return per call (seed 004).
const arubaListLimit = 50

// arubaClient is a client id known to the token endpoint, with the customer it acts for.
type arubaClient struct {
	id, secret, customer string
}

type arubaSession struct {
	user, csrf string
	created    time.Time
}

type arubaCode struct {
	clientID, customer, user, scope string
	issued                          time.Time
}

// arubaGrant is one authorization: the chain of tokens that refreshes produce from it.
type arubaGrant struct {
	clientID, customer string
	current            string    // newest refresh token
	prev               string    // previous refresh token, a fallback until the newest pair is proven
	newest             string    // access token issued together with current
	lastUsed           time.Time // issue or last refresh, for the 15-day idle rule
	dead               bool
}

type arubaAccess struct {
	grant *arubaGrant
	exp   time.Time
}

type arubaDay struct {
	day  string // YYYY-MM-DD in GMT
	used int
}

// NewAruba returns an Aruba Central emulator with the default test credentials, on clock now
// (time.Now when nil).
func NewAruba(now Clock) *Aruba {
	if now == nil {
		now = time.Now
	}
	a := &Aruba{
		ClientID:        "aruba-client-id",
		ClientSecret:    "aruba-client-secret",
		Username:        "netops@example.com",
		Password:        "aruba-password",
		CustomerID:      "cust-0001",
		MSPClientID:     "aruba-msp-client-id",
		MSPClientSecret: "aruba-msp-client-secret",
		DailyQuota:      arubaDailyQuota,
		PerSecondLimit:  arubaPerSecond,
		Now:             now,
		sessions:        make(map[string]*arubaSession),
		minted:          make(map[string]*arubaClient),
		byCustomer:      make(map[string]*arubaClient),
		codes:           make(map[string]*arubaCode),
		refresh:         make(map[string]*arubaGrant),
		access:          make(map[string]*arubaAccess),
		steps:           newSlidingLog(arubaStepWindow),
		perSecond:       newSlidingLog(time.Second),
		daily:           make(map[string]*arubaDay),
	}
	for i := range arubaMSPCustomers {
		a.Customers = append(a.Customers, ArubaCustomer{ID: fmt.Sprintf("%032x", 0x5eed0000+i), Name: fmt.Sprintf("customer-%03d", i+1)})
	}
	mux := newRouter()
	route(mux, "/oauth2/token", methods{http.MethodPost: a.token})
	route(mux, "/oauth2/authorize/central/api/login", methods{http.MethodPost: a.login})
	route(mux, "/oauth2/authorize/central/api/client_credentials", methods{http.MethodPost: a.mspCredentials})
	// The vendor SDK posts the auth-code step without the trailing slash, the guide shows one.
	route(mux, "/oauth2/authorize/central/api", methods{http.MethodPost: a.authCode})
	route(mux, "/oauth2/authorize/central/api/{$}", methods{http.MethodPost: a.authCode})
	route(mux, "/oauth2/api/tokens", methods{http.MethodDelete: a.deleteToken})
	route(mux, "/monitoring/v1/aps", methods{http.MethodGet: a.aps})
	route(mux, "/msp_api/v1/customers", methods{http.MethodGet: a.customers})
	// Not a vendor API: the stand-in for the UI's "Download Token" button, so
	// that `import` can be tried against `tokenbroker emulate` from a shell.
	route(mux, "/emulator/offline-token", methods{http.MethodGet: func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(a.IssueOfflineToken())
	}})
	a.webhookRoutes(mux)
	a.mux = mux
	return a
}

// ServeHTTP implements http.Handler.
func (a *Aruba) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.serve(w, r, a.mux) }

// IssueOfflineToken returns a token JSON exactly as Central's UI downloads it ("offline
// token", seed 001), for ClientID, CustomerID and Username. Its tokens are live on this
// emulator, so importing it and refreshing it works.
func (a *Aruba) IssueOfflineToken() []byte {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.Now()
	at, rt := a.newGrant(a.ClientID, a.CustomerID, now)
	out, _ := json.Marshal(map[string]any{
		"access_token":         at,
		"refresh_token":        rt,
		"expires_in":           int(arubaAccessTTL / time.Second),
		"token_type":           "bearer",
		"scope":                "all",
		"created_at":           now.UnixMilli(),
		"appname":              "tokenbroker-emulator",
		"authenticated_userid": a.Username,
		"credential_id":        randomHex(5),
		"id":                   randomHex(5),
	})
	return out
}

// ValidRefreshToken reports whether rt would be accepted by a refresh now.
func (a *Aruba) ValidRefreshToken(rt string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	g := a.refresh[rt]
	return g != nil && a.alive(g, a.Now())
}

// ValidAccessToken reports whether at would be accepted by the API now.
func (a *Aruba) ValidAccessToken(at string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, st := a.lookupAccess(at, a.Now())
	return st == tokenValid
}

// RevokeAll invalidates every access and refresh token issued so far, as a vendor-side revoke
// does. Sessions, auth codes and minted client credentials survive.
func (a *Aruba) RevokeAll() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, g := range a.refresh {
		g.dead = true
	}
	for _, acc := range a.access {
		acc.grant.dead = true
	}
	a.refresh = make(map[string]*arubaGrant)
	a.access = make(map[string]*arubaAccess)
}

// RevokeAccessTokens invalidates every access token but keeps the refresh
// tokens, as when Central drops tokens early: a client must refresh.
func (a *Aruba) RevokeAccessTokens() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.access = make(map[string]*arubaAccess)
}

// APIStats returns how many API calls were accepted and how many were refused with 429.
func (a *Aruba) APIStats() (accepted, rateLimited int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.accepted, a.limited
}

// arubaError writes Central's 400 body {"extra":{},"message":...}.
func arubaError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]any{"extra": map[string]any{}, "message": msg})
}

func arubaAuthFail(w http.ResponseWriter) {
	writeJSON(w, http.StatusUnauthorized, map[string]any{"message": arubaAuthFailure, "status": false})
}

func arubaTooMany(w http.ResponseWriter) {
	writeJSON(w, http.StatusTooManyRequests, map[string]any{"message": arubaRateLimited})
}

func arubaInvalidGrant(w http.ResponseWriter, desc string) {
	writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_grant", "error_description": desc})
}

// client returns the client with id: the customer's application, the MSP application (both
// of CustomerID) or a set of per-tenant credentials an MSP minted. The caller holds a.mu.
func (a *Aruba) client(id string) *arubaClient {
	switch id {
	case "":
		return nil
	case a.ClientID:
		return &arubaClient{id: a.ClientID, secret: a.ClientSecret, customer: a.CustomerID}
	case a.MSPClientID:
		return &arubaClient{id: a.MSPClientID, secret: a.MSPClientSecret, customer: a.CustomerID}
	}
	return a.minted[id]
}

// knownCustomer reports whether a TenantID header names a customer this gateway serves.
func (a *Aruba) knownCustomer(id string) bool {
	if id == a.CustomerID || a.byCustomer[id] != nil {
		return true
	}
	for _, c := range a.Customers {
		if c.ID == id {
			return true
		}
	}
	return false
}

// customers serves GET /msp_api/v1/customers?offset=&limit=, the MSP's
// tenants a page at a time (at most 50: more is 400 LIMIT_REQUEST_EXCEEDED),
// counted against the MSP's limits like any API call. A token of another
// account than the MSP's has no MSP rights: 401.
func (a *Aruba) customers(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.count("api")
	now := a.Now()
	q := r.URL.Query()
	offset, oerr := strconv.Atoi(q.Get("offset"))
	limit, lerr := strconv.Atoi(q.Get("limit"))
	if q.Get("offset") == "" {
		offset, oerr = 0, nil
	}
	if q.Get("limit") == "" {
		limit, lerr = 10, nil
	}
	if oerr != nil || lerr != nil || offset < 0 || limit < 1 {
		arubaError(w, http.StatusBadRequest, "offset and limit must be non-negative integers")
		return
	}
	if limit > arubaListLimit {
		arubaError(w, http.StatusBadRequest, "LIMIT_REQUEST_EXCEEDED")
		return
	}
	if acc, st := a.lookupAccess(bearer(r), now); st == tokenValid && acc.grant.customer != a.CustomerID {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"message": "Auth failure: the token has no MSP rights", "status": false})
		return
	}
	if !a.acceptAPI(w, r, now) {
		return
	}
	page := []ArubaCustomer{}
	if offset < len(a.Customers) {
		page = a.Customers[offset:min(len(a.Customers), offset+limit)]
	}
	writeJSON(w, http.StatusOK, map[string]any{"customers": page, "total": len(a.Customers)})
}

// stepAllowed applies the 1 call/s limit of the first three OAuth steps, per step and client.
func (a *Aruba) stepAllowed(step, clientID string, now time.Time) bool {
	ok, _ := a.steps.allow(step+"\x00"+clientID, arubaStepLimit, now)
	return ok
}

// session returns the login session named by the request's session cookie whose CSRF token
// matches the X-CSRF-Token header and whose user still exists. The caller holds a.mu.
func (a *Aruba) session(r *http.Request, now time.Time) *arubaSession {
	c, err := r.Cookie("session")
	if err != nil {
		return nil
	}
	s := a.sessions[c.Value]
	if s == nil {
		return nil
	}
	if !now.Before(s.created.Add(arubaSessionTTL)) {
		delete(a.sessions, c.Value)
		return nil
	}
	if csrf := r.Header.Get("X-CSRF-Token"); csrf == "" || csrf != s.csrf || s.user != a.Username {
		return nil
	}
	return s
}

// alive reports whether g can still be refreshed; it buries grants idle for 15 days.
// The caller holds a.mu.
func (a *Aruba) alive(g *arubaGrant, now time.Time) bool {
	if !g.dead && now.Sub(g.lastUsed) >= arubaIdleTTL {
		a.kill(g)
	}
	return !g.dead
}

// kill ends a grant: its refresh tokens and all its access tokens die.
func (a *Aruba) kill(g *arubaGrant) {
	g.dead = true
	delete(a.refresh, g.current)
	delete(a.refresh, g.prev)
}

// newGrant starts a grant for client and customer and returns its first token pair.
func (a *Aruba) newGrant(clientID, customer string, now time.Time) (at, rt string) {
	g := &arubaGrant{clientID: clientID, customer: customer}
	return a.issue(g, now)
}

// issue gives g a new access token and a new newest refresh token.
func (a *Aruba) issue(g *arubaGrant, now time.Time) (at, rt string) {
	if len(a.access) >= pruneAt {
		for k, acc := range a.access {
			if acc.grant.dead || !now.Before(acc.exp) {
				delete(a.access, k)
			}
		}
	}
	at, rt = randomToken(24), randomToken(24)
	a.access[at] = &arubaAccess{grant: g, exp: now.Add(arubaAccessTTL)}
	a.refresh[rt] = g
	g.current, g.newest, g.lastUsed = rt, at, now
	return at, rt
}

func (a *Aruba) lookupAccess(at string, now time.Time) (*arubaAccess, tokenState) {
	acc := a.access[at]
	switch {
	case at == "" || acc == nil || acc.grant.dead:
		return nil, tokenUnknown
	case !now.Before(acc.exp):
		return acc, tokenExpired
	default:
		return acc, tokenValid
	}
}

// token serves POST /oauth2/token. Parameters come from the query string (the reference SDK
// puts everything there, with an empty body) and/or a form body; the first query value wins,
// which also settles repeated query parameters.
func (a *Aruba) token(w http.ResponseWriter, r *http.Request) {
	form, err := readForm(r)
	a.mu.Lock()
	defer a.mu.Unlock()
	query := r.URL.Query()
	param := func(k string) string {
		if v := query.Get(k); v != "" {
			return v
		}
		return form.Get(k)
	}
	grant := param("grant_type")
	a.countToken(grant, "refresh_token", "authorization_code")
	if err != nil && query.Get("grant_type") == "" {
		// A body that is no form is fine when the parameters are in the
		// query string: a published Aruba client sends them there with a
		// "{}" body and no content type, and Central accepts it.
		arubaError(w, http.StatusBadRequest, "request body must be application/x-www-form-urlencoded")
		return
	}
	id, secret := param("client_id"), param("client_secret")
	switch {
	case id == "":
		arubaError(w, http.StatusBadRequest, "client_id is required")
		return
	case secret == "":
		arubaError(w, http.StatusBadRequest, "client_secret is required")
		return
	}
	c := a.client(id)
	if c == nil || c.secret != secret {
		arubaAuthFail(w)
		return
	}
	now := a.Now()
	switch grant {
	case "refresh_token":
		a.refreshGrant(w, c, param("refresh_token"), now)
	case "authorization_code":
		a.codeGrant(w, c, param("code"), now)
	case "":
		arubaError(w, http.StatusBadRequest, "grant_type is required")
	default:
		arubaError(w, http.StatusBadRequest, fmt.Sprintf("unsupported grant_type %q", grant))
	}
}

func (a *Aruba) refreshGrant(w http.ResponseWriter, c *arubaClient, rt string, now time.Time) {
	if rt == "" {
		arubaError(w, http.StatusBadRequest, "refresh_token is required")
		return
	}
	g := a.refresh[rt]
	if g == nil || !a.alive(g, now) || g.clientID != c.id {
		arubaInvalidGrant(w, "Invalid refresh token")
		return
	}
	if rt == g.current {
		// The newest refresh token is used: the new pair is proven, the fallback dies.
		if g.prev != "" {
			delete(a.refresh, g.prev)
		}
		g.prev = rt
		if a.StrictRotation {
			delete(a.refresh, rt)
			g.prev = ""
		}
	} else {
		// The fallback is used: the client never stored the newest refresh token.
		delete(a.refresh, g.current)
	}
	at, newRT := a.issue(g, now)
	a.writeTokens(w, at, newRT)
}

func (a *Aruba) codeGrant(w http.ResponseWriter, c *arubaClient, code string, now time.Time) {
	if code == "" {
		arubaError(w, http.StatusBadRequest, "code is required")
		return
	}
	ac := a.codes[code]
	if ac == nil || ac.clientID != c.id {
		arubaInvalidGrant(w, "Invalid authorization code")
		return
	}
	delete(a.codes, code) // single use, and an expired code is gone for good
	if now.Sub(ac.issued) > arubaCodeTTL {
		arubaInvalidGrant(w, "Authorization code expired")
		return
	}
	at, rt := a.newGrant(c.id, ac.customer, now)
	a.writeTokens(w, at, rt)
}

func (a *Aruba) writeTokens(w http.ResponseWriter, at, rt string) {
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token":  at,
		"refresh_token": rt,
		"expires_in":    int(arubaAccessTTL / time.Second),
		"token_type":    "bearer",
	})
}

// login serves step 1: POST /oauth2/authorize/central/api/login?client_id=ID with a JSON
// body of username and password. Success sets two cookies, csrftoken and session.
func (a *Aruba) login(w http.ResponseWriter, r *http.Request) {
	var body struct{ Username, Password string }
	err := readJSON(r, &body)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.count("login")
	now := a.Now()
	id := r.URL.Query().Get("client_id")
	if !a.stepAllowed("login", id, now) {
		arubaTooMany(w)
		return
	}
	if a.client(id) == nil {
		arubaError(w, http.StatusBadRequest, "Invalid client_id")
		return
	}
	if msg := jsonProblem(err); msg != "" {
		arubaError(w, http.StatusBadRequest, msg)
		return
	}
	if body.Username == "" || body.Password == "" {
		arubaError(w, http.StatusBadRequest, "username and password are required")
		return
	}
	if body.Username != a.Username || body.Password != a.Password {
		arubaAuthFail(w)
		return
	}
	sid, csrf := randomToken(24), randomToken(24)
	a.sessions[sid] = &arubaSession{user: body.Username, csrf: csrf, created: now}
	http.SetCookie(w, &http.Cookie{Name: "csrftoken", Value: csrf, Path: "/"})
	http.SetCookie(w, &http.Cookie{Name: "session", Value: sid, Path: "/", HttpOnly: true})
	writeJSON(w, http.StatusOK, map[string]any{"status": true})
}

// jsonProblem turns a readJSON error into Central's 400 message, or "" when there was none.
func jsonProblem(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, errContentType):
		return "Content-Type must be application/json"
	default:
		return "request body must be a JSON object"
	}
}

// mspCredentials serves the optional step 2: an MSP mints client credentials for one tenant.
// Asking again for the same customer returns the same credentials.
func (a *Aruba) mspCredentials(w http.ResponseWriter, r *http.Request) {
	var body struct {
		CustomerID string `json:"customer_id"`
	}
	err := readJSON(r, &body)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.count("msp_client_credentials")
	now := a.Now()
	id := r.URL.Query().Get("client_id")
	if !a.stepAllowed("msp_client_credentials", id, now) {
		arubaTooMany(w)
		return
	}
	if id == "" || id != a.MSPClientID {
		arubaError(w, http.StatusBadRequest, "Invalid client_id: not an MSP application")
		return
	}
	if a.session(r, now) == nil {
		arubaAuthFail(w)
		return
	}
	if msg := jsonProblem(err); msg != "" {
		arubaError(w, http.StatusBadRequest, msg)
		return
	}
	if body.CustomerID == "" {
		arubaError(w, http.StatusBadRequest, "customer_id is required")
		return
	}
	c := a.byCustomer[body.CustomerID]
	if c == nil {
		c = &arubaClient{id: randomHex(16), secret: randomToken(24), customer: body.CustomerID}
		a.minted[c.id] = c
		a.byCustomer[c.customer] = c
	}
	writeJSON(w, http.StatusOK, map[string]any{"client_id": c.id, "client_secret": c.secret})
}

// authCode serves step 3: POST /oauth2/authorize/central/api[/]?client_id&response_type=code&
// scope=all|read with the session cookie, the matching X-CSRF-Token and JSON {"customer_id"}.
func (a *Aruba) authCode(w http.ResponseWriter, r *http.Request) {
	var body struct {
		CustomerID string `json:"customer_id"`
	}
	err := readJSON(r, &body)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.count("auth_code")
	now := a.Now()
	q := r.URL.Query()
	id := q.Get("client_id")
	if !a.stepAllowed("auth_code", id, now) {
		arubaTooMany(w)
		return
	}
	c := a.client(id)
	switch {
	case c == nil:
		arubaError(w, http.StatusBadRequest, "Invalid client_id")
		return
	case q.Get("response_type") != "code":
		arubaError(w, http.StatusBadRequest, "response_type must be code")
		return
	case q.Get("scope") != "all" && q.Get("scope") != "read":
		arubaError(w, http.StatusBadRequest, "scope must be all or read")
		return
	}
	s := a.session(r, now)
	if s == nil {
		arubaAuthFail(w)
		return
	}
	if msg := jsonProblem(err); msg != "" {
		arubaError(w, http.StatusBadRequest, msg)
		return
	}
	switch {
	case body.CustomerID == "":
		arubaError(w, http.StatusBadRequest, "customer_id is required")
		return
	case body.CustomerID != c.customer:
		arubaError(w, http.StatusBadRequest, "customer_id does not match the client")
		return
	}
	if len(a.codes) >= pruneAt {
		for k, c := range a.codes {
			if now.Sub(c.issued) > arubaCodeTTL {
				delete(a.codes, k)
			}
		}
	}
	code := randomToken(24)
	a.codes[code] = &arubaCode{clientID: c.id, customer: c.customer, user: s.user, scope: q.Get("scope"), issued: now}
	writeJSON(w, http.StatusOK, map[string]any{"auth_code": code})
}

// deleteToken serves step 6: DELETE /oauth2/api/tokens with JSON {"customer_id",
// "access_token"}, the session cookie and the CSRF header. The whole grant dies: that access
// token and its refresh token (and any other access token refreshed from it).
func (a *Aruba) deleteToken(w http.ResponseWriter, r *http.Request) {
	var body struct {
		CustomerID  string `json:"customer_id"`
		AccessToken string `json:"access_token"`
	}
	err := readJSON(r, &body)
	a.mu.Lock()
	defer a.mu.Unlock()
	a.count("revoke")
	if a.session(r, a.Now()) == nil {
		arubaAuthFail(w)
		return
	}
	if msg := jsonProblem(err); msg != "" {
		arubaError(w, http.StatusBadRequest, msg)
		return
	}
	if body.CustomerID == "" || body.AccessToken == "" {
		arubaError(w, http.StatusBadRequest, "customer_id and access_token are required")
		return
	}
	acc := a.access[body.AccessToken]
	if acc == nil || acc.grant.dead || acc.grant.customer != body.CustomerID {
		arubaError(w, http.StatusBadRequest, "Invalid access_token")
		return
	}
	a.kill(acc.grant)
	writeJSON(w, http.StatusOK, map[string]any{"status": true})
}

// rateHeaders sets the four X-RateLimit headers Central puts on every API response. For a
// request without a valid token no customer's quota is involved, so the full limits show.
func (a *Aruba) rateHeaders(w http.ResponseWriter, customer string, now time.Time) {
	dayLeft, secLeft := a.DailyQuota, a.PerSecondLimit
	if customer != "" {
		dayLeft = max(0, a.DailyQuota-a.today(customer, now).used)
		secLeft = a.perSecond.remaining(customer, a.PerSecondLimit, now)
	}
	// Spelled as Central sends them (pycentral looks them up as written),
	// not in Go's canonical X-Ratelimit-Remaining-Day.
	h := w.Header()
	h["X-RateLimit-Limit-day"] = []string{strconv.Itoa(a.DailyQuota)}
	h["X-RateLimit-Remaining-day"] = []string{strconv.Itoa(dayLeft)}
	h["X-RateLimit-Limit-second"] = []string{strconv.Itoa(a.PerSecondLimit)}
	h["X-RateLimit-Remaining-second"] = []string{strconv.Itoa(secLeft)}
}

// today returns customer's daily counter, reset at midnight GMT on the emulator's clock.
func (a *Aruba) today(customer string, now time.Time) *arubaDay {
	day := now.UTC().Format(time.DateOnly)
	d := a.daily[customer]
	if d == nil || d.day != day {
		d = &arubaDay{day: day}
		a.daily[customer] = d
	}
	return d
}

// aps serves GET /monitoring/v1/aps, the protected API. The quota belongs to the token's
// customer, also when an MSP token calls a tenant with the TenantID header.
func (a *Aruba) aps(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.count("api")
	if a.acceptAPI(w, r, a.Now()) {
		writeJSON(w, http.StatusOK, arubaAPs)
	}
}

// arubaAPs is the example response of GET /monitoring/v1/aps in the API gateway guide.
var arubaAPs = map[string]any{
	"aps": []any{map[string]any{
		"firmware_version": "6.4.4.4-4.2.3.1_54637",
		"group_name":       "00TestVRK",
		"ip_address":       "10.29.18.195",
		"labels":           []string{"Filter_242", "Ziaomof", "roster", "242455", "Diegso"},
		"macaddr":          "6c:f3:7f:c3:5d:92",
		"model":            "AP-134",
		"name":             "6c:f3:7f:c3:5d:92",
		"radios": []any{
			map[string]any{"band": 0, "index": 1, "macaddr": "6c:f3:7f:b5:d9:20", "status": "Down"},
			map[string]any{"band": 1, "index": 0, "macaddr": "6c:f3:7f:b5:d9:30", "status": "Down"},
		},
		"serial":       "AX0140586",
		"status":       "Down",
		"swarm_id":     "e3bf1ba201a6f85f4b5eaedeead5e502d85a9aef58d8e1d8a0",
		"swarm_master": true,
	}},
	"count": 1,
}
