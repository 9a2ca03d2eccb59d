// Package emulator serves faithful fake versions of the vendor clouds tokenbroker talks to:
// Aruba Central, RUCKUS One, RingCentral, Workspace ONE Access, Cisco Catalyst Center and two
// static-key APIs (Mist, Meraki style).
//
// The emulators are the other side of the wire. They are written from the protocol facts in
// VENDORS.md, not from the broker's code, and they import nothing from the rest of the module,
// so that they catch the broker's mistakes instead of sharing them: parameter placement, client
// authentication style, status codes and error bodies, expiry on an injectable clock, rotating
// single-use refresh tokens, auth-code lifetime, rate limits with the real headers, and counters
// of every token request so tests can assert how many upstream calls happened.
//
// Every emulator is an http.Handler made by its constructor (NewAruba, NewRuckus, ...). Exported
// credential fields are pre-filled with test values and may be changed before serving; all
// mutable state is guarded by one mutex per emulator, so handlers are safe for concurrent use.
// Start runs all of them on loopback for `tokenbroker emulate`, `demo` and tests.
package emulator

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"
)

// Clock is where every emulator takes the current time, so tests can step it instead of sleeping.
type Clock func() time.Time

// maxBody bounds request bodies: the emulators only ever expect small forms and JSON objects.
const maxBody = 1 << 20

// base holds what every emulator shares: one mutex that guards all of the emulator's state
// (the vendor types lock it in their handlers), the down switch and the request counters.
// Its exported methods are promoted onto each vendor type.
type base struct {
	mu        sync.Mutex
	down      bool
	tokenReqs int64
	counts    map[string]int64
}

// TokenRequests returns how many requests reached the vendor's token endpoint, whatever the
// grant and whether they succeeded. Requests answered 503 while the emulator is down are not
// counted: the vendor never saw them.
func (b *base) TokenRequests() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.tokenReqs
}

// Counts returns a copy of the per-grant and per-step counters (for example "refresh_token",
// "login", "auth_code", "api"). Every request is counted, successful or not.
func (b *base) Counts() map[string]int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string]int64, len(b.counts))
	maps.Copy(out, b.counts)
	return out
}

// SetDown switches the emulator into (or out of) an outage: while down, every request gets
// 503 {"message":"service unavailable"}, so callers can test their transient-error handling.
func (b *base) SetDown(down bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.down = down
}

// count bumps a named counter. The caller holds b.mu.
func (b *base) count(key string) {
	if b.counts == nil {
		b.counts = make(map[string]int64)
	}
	b.counts[key]++
}

// countToken records one request to the token endpoint, filed under grant when grant is one
// the vendor knows (unknown or missing grants only bump TokenRequests). The caller holds b.mu.
func (b *base) countToken(grant string, known ...string) {
	b.tokenReqs++
	for _, k := range known {
		if grant == k {
			b.count(grant)
			return
		}
	}
}

// serve answers 503 while down and otherwise hands the request to h.
func (b *base) serve(w http.ResponseWriter, r *http.Request, h http.Handler) {
	b.mu.Lock()
	down := b.down
	b.mu.Unlock()
	if down {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"message": "service unavailable"})
		return
	}
	h.ServeHTTP(w, r)
}

// writeJSON writes v as the JSON response body with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		// Only our own fixed shapes are marshalled; failing here is a programming error.
		http.Error(w, `{"message":"emulator: cannot encode response"}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// methods maps HTTP methods to the handler for one path.
type methods map[string]http.HandlerFunc

// newRouter returns a ServeMux whose unknown paths answer 404 with a JSON body. The stock
// ServeMux answers in plain text, which a client might mistake for a vendor error page.
func newRouter() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]any{
			"error":   "not_found",
			"message": fmt.Sprintf("no route for %s %s", r.Method, r.URL.Path),
		})
	})
	return mux
}

// route registers pattern (a ServeMux pattern without a method) and dispatches on the method
// itself, so that a wrong method gets 405 with an Allow header and a JSON body.
func route(mux *http.ServeMux, pattern string, m methods) {
	allowed := make([]string, 0, len(m))
	for k := range m {
		allowed = append(allowed, k)
	}
	sort.Strings(allowed)
	mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		h, ok := m[r.Method]
		if !ok {
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			writeJSON(w, http.StatusMethodNotAllowed, map[string]any{
				"error":   "method_not_allowed",
				"message": fmt.Sprintf("%s is not allowed on %s", r.Method, r.URL.Path),
			})
			return
		}
		h(w, r)
	})
}

// errContentType marks a request body sent with the wrong Content-Type.
var errContentType = errors.New("wrong content type")

// mediaType returns the request's media type without parameters, lower-cased.
func mediaType(r *http.Request) string {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil {
		return ""
	}
	return strings.ToLower(mt)
}

// readForm parses an application/x-www-form-urlencoded body. An empty body is an empty form
// whatever its Content-Type (the Aruba SDK posts an empty body with everything in the query);
// a non-empty body with any other Content-Type fails with errContentType.
func readForm(r *http.Request) (url.Values, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	if err != nil {
		return nil, err
	}
	if len(body) == 0 {
		return url.Values{}, nil
	}
	if mediaType(r) != "application/x-www-form-urlencoded" {
		return nil, errContentType
	}
	return url.ParseQuery(string(body))
}

// readJSON decodes a JSON object body into v, insisting on Content-Type application/json.
func readJSON(r *http.Request, v any) error {
	if mediaType(r) != "application/json" {
		return errContentType
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	return dec.Decode(v)
}

// bearer returns the token of an "Authorization: Bearer <token>" header (scheme matched
// case-insensitively, as RFC 6750 allows), or "".
func bearer(r *http.Request) string {
	return schemeToken(r.Header.Get("Authorization"), "Bearer")
}

// schemeToken returns the credential of an Authorization value "<scheme> <credential>".
func schemeToken(h, scheme string) string {
	s, tok, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(s, scheme) {
		return ""
	}
	return strings.TrimSpace(tok)
}

// randomToken returns n random bytes (crypto/rand) as unpadded base64url: opaque token ids that
// are distinct per issue and safe in URLs, headers and forms.
func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand panics on an unusable source)
	return base64.RawURLEncoding.EncodeToString(b)
}

// randomHex returns n random bytes as lower-case hex, for ids vendors show in that form.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// mintJWT returns a JWT-shaped token: base64url JSON header and claims, and a random
// "signature". Clients must treat vendor access tokens as opaque, but some (tokenbroker inspect)
// read the claims, so the shape and the claims are real; nothing verifies the signature, the
// emulator remembers which tokens it issued instead.
func mintJWT(claims map[string]any) string {
	header, _ := json.Marshal(map[string]any{"alg": "RS256", "typ": "JWT", "kid": "emulator"})
	payload, err := json.Marshal(claims)
	if err != nil {
		panic("emulator: unencodable JWT claims: " + err.Error())
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString(header) + "." + enc.EncodeToString(payload) + "." + randomToken(32)
}

// parseJWT decodes the claims of a JWT-shaped string without verifying it.
func parseJWT(tok string) (map[string]any, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, errors.New("not a JWT: want three dot-separated parts")
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return nil, fmt.Errorf("JWT payload: %w", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(raw, &claims); err != nil {
		return nil, fmt.Errorf("JWT payload: %w", err)
	}
	return claims, nil
}

// jwtClaims returns the standard claims the emulators put in the JWTs they mint.
func jwtClaims(iss, sub string, now time.Time, ttl time.Duration) map[string]any {
	return map[string]any{
		"iss": iss,
		"sub": sub,
		"iat": now.Unix(),
		"exp": now.Add(ttl).Unix(),
		"jti": randomHex(16),
	}
}

// tokenState is what a protected API learns when it looks up a bearer token.
type tokenState int

const (
	tokenUnknown tokenState = iota // never issued, revoked, or superseded
	tokenExpired                   // issued, but past its expiry on the emulator's clock
	tokenValid
)

// expiringTokens maps access tokens to their expiry, for vendors whose tokens carry no other
// state (RUCKUS One, Workspace ONE, Catalyst Center). Guarded by the owner's mutex.
type expiringTokens map[string]time.Time

// pruneAt is the table size from which the emulators drop expired entries when they add one,
// so that a long `tokenbroker emulate` run does not grow without bound. Below it, expired
// tokens are kept so a 401 can say "expired" rather than "invalid".
const pruneAt = 4096

// put records a token issued at now that expires at exp.
func (t expiringTokens) put(tok string, exp, now time.Time) {
	if len(t) >= pruneAt {
		for k, e := range t {
			if !now.Before(e) {
				delete(t, k)
			}
		}
	}
	t[tok] = exp
}

// check reports the state of tok at now. A token is dead from the instant of its expiry.
func (t expiringTokens) check(tok string, now time.Time) tokenState {
	exp, ok := t[tok]
	switch {
	case tok == "" || !ok:
		return tokenUnknown
	case !now.Before(exp):
		return tokenExpired
	default:
		return tokenValid
	}
}

// slidingLog limits events with an exact log of accepted event times per key, so that no more
// than limit events are ever accepted in any window-long span. A token bucket would not do:
// with a burst of 7 it lets an 8th call through 1/7 s after a full burst, and Aruba's gateway
// answers that 8th call with 429. The span is half-open, (t-window, t]: an event exactly
// window old no longer counts. Rejected events are not recorded. Guarded by the owner's mutex.
type slidingLog struct {
	window time.Duration
	events map[string][]time.Time
}

func newSlidingLog(window time.Duration) *slidingLog {
	return &slidingLog{window: window, events: make(map[string][]time.Time)}
}

// live drops events that have left the window and returns those still in it.
func (s *slidingLog) live(key string, now time.Time) []time.Time {
	ev := s.events[key]
	cut := now.Add(-s.window)
	i := 0
	for i < len(ev) && !ev[i].After(cut) {
		i++
	}
	ev = ev[i:]
	if len(ev) == 0 {
		delete(s.events, key)
		return nil
	}
	s.events[key] = ev
	return ev
}

// allow records an event for key at now and reports true if fewer than limit events are in
// the window; otherwise it records nothing and reports false. It also returns how many more
// events the window would take after this one.
func (s *slidingLog) allow(key string, limit int, now time.Time) (ok bool, remaining int) {
	ev := s.live(key, now)
	if len(ev) >= limit {
		return false, 0
	}
	s.events[key] = append(ev, now)
	return true, limit - len(ev) - 1
}

// remaining returns how many more events the window for key would take at now.
func (s *slidingLog) remaining(key string, limit int, now time.Time) int {
	return max(0, limit-len(s.live(key, now)))
}

// oauthError writes the RFC 6749 error body {"error","error_description"}.
func oauthError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]any{"error": code, "error_description": desc})
}

// bearerError answers a protected-API request whose token is missing, unknown or expired with
// 401, an RFC 6750 WWW-Authenticate challenge and an invalid_token body.
func bearerError(w http.ResponseWriter, st tokenState) {
	desc := "Invalid access token"
	if st == tokenExpired {
		desc = "Access token expired"
	}
	w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", error_description="`+desc+`"`)
	oauthError(w, http.StatusUnauthorized, "invalid_token", desc)
}

// basicClient reports whether the request carries HTTP Basic credentials equal to id and
// secret, and returns the client id it presented (for counters and rate limits).
func basicClient(r *http.Request, id, secret string) (presented string, ok bool) {
	u, p, has := r.BasicAuth()
	if !has {
		return "", false
	}
	return u, u == id && p == secret
}

// seconds renders a lifetime as the integer expires_in vendors send.
func seconds(d time.Duration) int { return int(d / time.Second) }
