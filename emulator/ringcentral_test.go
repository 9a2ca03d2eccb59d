package emulator

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

var rcAuth = []string{"Authorization", basic("rc-client-id", "rc-client-secret")}

func newRCTest(t *testing.T, env string) (*RingCentral, *httptest.Server, *fakeClock) {
	t.Helper()
	clk := newClock()
	s := NewRingCentral(clk.Now, env)
	return s, serve(t, s), clk
}

func rcExchange(t *testing.T, srv *httptest.Server, jwt string) result {
	t.Helper()
	return form(t, srv, "/restapi/oauth/token",
		url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {jwt}}.Encode(), rcAuth...)
}

func rcRefresh(t *testing.T, srv *httptest.Server, rt string) result {
	t.Helper()
	return form(t, srv, "/restapi/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}.Encode(), rcAuth...)
}

func rcAPI(t *testing.T, srv *httptest.Server, at string) result {
	t.Helper()
	return send(t, srv, http.MethodGet, "/restapi/v1.0/account/~", "", "Authorization", "Bearer "+at)
}

func rcErrorCode(r result) string {
	errs, _ := r.obj["errors"].([]any)
	if len(errs) == 0 {
		return ""
	}
	e, _ := errs[0].(map[string]any)
	s, _ := e["errorCode"].(string)
	return s
}

func TestRingCentralJWTCredential(t *testing.T) {
	for _, env := range []string{"production", "sandbox"} {
		s, _, clk := newRCTest(t, env)
		c := claims(t, s.JWT)
		host := map[string]string{"production": "https://platform.ringcentral.com", "sandbox": "https://platform.devtest.ringcentral.com"}[env]
		if c["aud"] != host+"/restapi/oauth/token" || c["iss"] != host || c["sub"] != "user-1" || c["jti"] == nil ||
			c["iat"] != float64(clk.Now().Unix()) || c["exp"] != float64(clk.Now().AddDate(1, 0, 0).Unix()) {
			t.Fatalf("%s claims %v", env, c)
		}
	}
}

func TestRingCentralExchangeAndAPI(t *testing.T) {
	s, srv, clk := newRCTest(t, "production")
	r := rcExchange(t, srv, s.JWT)
	wantStatus(t, r, http.StatusOK)
	sameKeys(t, r.obj, vector(t, "ringcentral-token-response"))
	if r.obj["expires_in"] != float64(3600) || r.obj["refresh_token_expires_in"] != float64(604800) || r.str("scope") == "" {
		t.Fatalf("token body %s", r.body)
	}
	if r.header.Get("X-Rate-Limit-Group") == "" || r.header.Get("X-Rate-Limit-Remaining") != "4" {
		t.Fatalf("rate headers %v", r.header)
	}
	at := r.str("access_token")
	api := rcAPI(t, srv, at)
	wantStatus(t, api, http.StatusOK)
	if api.str("status") != "Confirmed" || api.str("id") == "" {
		t.Fatalf("account body %s", api.body)
	}
	clk.Advance(time.Hour)
	api = rcAPI(t, srv, at)
	wantStatus(t, api, http.StatusUnauthorized)
	if api.str("errorCode") != "TokenExpired" {
		t.Fatalf("expired body %s", api.body)
	}
	wantStatus(t, rcAPI(t, srv, "nope"), http.StatusUnauthorized)
	if s.TokenRequests() != 1 || s.Counts()["jwt_bearer"] != 1 || s.Counts()["api"] != 3 {
		t.Fatalf("counts %v", s.Counts())
	}
}

func TestRingCentralClientAuth(t *testing.T) {
	s, srv, _ := newRCTest(t, "production")
	s.AuthLimitPerMinute = 0
	body := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {s.JWT}}.Encode()
	for name, hdr := range map[string][]string{
		"no basic":         nil,
		"wrong secret":     {"Authorization", basic("rc-client-id", "x")},
		"body client":      nil,
		"bearer not basic": {"Authorization", "Bearer rc-client-secret"},
	} {
		b := body
		if name == "body client" {
			b += "&client_id=rc-client-id&client_secret=rc-client-secret"
		}
		r := form(t, srv, "/restapi/oauth/token", b, hdr...)
		if r.status != http.StatusUnauthorized || r.str("error") != "invalid_client" || rcErrorCode(r) != "OAU-146" {
			t.Errorf("%s: %d %s", name, r.status, r.body)
		}
	}
	r := send(t, srv, http.MethodPost, "/restapi/oauth/token", `{"grant_type":"refresh_token"}`, append([]string{"Content-Type", "application/json"}, rcAuth...)...)
	wantStatus(t, r, http.StatusUnsupportedMediaType)
	r = form(t, srv, "/restapi/oauth/token", "grant_type=client_credentials", rcAuth...)
	wantStatus(t, r, http.StatusBadRequest)
	if r.str("error") != "unsupported_grant_type" {
		t.Fatalf("unsupported grant: %s", r.body)
	}
}

func TestRingCentralJWTChecks(t *testing.T) {
	s, srv, clk := newRCTest(t, "production")
	s.AuthLimitPerMinute = 0
	sandboxJWT := s.MintJWT("sandbox", clk.Now().Add(time.Hour))
	r := rcExchange(t, srv, sandboxJWT)
	wantStatus(t, r, http.StatusBadRequest)
	if r.str("error") != "invalid_grant" || !strings.Contains(r.str("error_description"), "environment") {
		t.Fatalf("wrong environment: %s", r.body)
	}
	// A credential from another emulator (another environment) also says "environment".
	other := NewRingCentral(clk.Now, "sandbox")
	r = rcExchange(t, srv, other.JWT)
	if r.status != http.StatusBadRequest || !strings.Contains(r.str("error_description"), "environment") {
		t.Fatalf("foreign sandbox JWT: %s", r.body)
	}
	// Right audience, but never issued.
	forged := mintJWT(map[string]any{"aud": "https://platform.ringcentral.com/restapi/oauth/token", "sub": "user-1"})
	r = rcExchange(t, srv, forged)
	if r.status != http.StatusBadRequest || rcErrorCode(r) != "OAU-129" {
		t.Fatalf("unknown JWT: %s", r.body)
	}
	r = rcExchange(t, srv, "not-a-jwt")
	if r.status != http.StatusBadRequest || rcErrorCode(r) != "OAU-149" {
		t.Fatalf("garbage JWT: %s", r.body)
	}
	r = form(t, srv, "/restapi/oauth/token", "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer", rcAuth...)
	if r.status != http.StatusBadRequest || r.str("error") != "invalid_request" {
		t.Fatalf("no assertion: %s", r.body)
	}
	short := s.MintJWT("production", clk.Now().Add(time.Hour))
	wantStatus(t, rcExchange(t, srv, short), http.StatusOK)
	clk.Advance(time.Hour)
	r = rcExchange(t, srv, short)
	if r.status != http.StatusBadRequest || rcErrorCode(r) != "OAU-128" || r.str("error") != "invalid_grant" {
		t.Fatalf("expired JWT: %s", r.body)
	}
}

func TestRingCentralSessionCap(t *testing.T) {
	s, srv, _ := newRCTest(t, "production")
	s.AuthLimitPerMinute = 0
	var ats, rts []string
	for range 6 {
		r := rcExchange(t, srv, s.JWT)
		wantStatus(t, r, http.StatusOK)
		ats, rts = append(ats, r.str("access_token")), append(rts, r.str("refresh_token"))
	}
	// The sixth session ended the first.
	wantStatus(t, rcAPI(t, srv, ats[0]), http.StatusUnauthorized)
	wantStatus(t, rcRefresh(t, srv, rts[0]), http.StatusBadRequest)
	for i := 1; i < 6; i++ {
		wantStatus(t, rcAPI(t, srv, ats[i]), http.StatusOK)
	}
	// Sessions of another credential do not count against this one.
	other := s.MintJWT("production", time.Now().AddDate(1, 0, 0))
	wantStatus(t, rcExchange(t, srv, other), http.StatusOK)
	wantStatus(t, rcAPI(t, srv, ats[1]), http.StatusOK)
	wantStatus(t, rcExchange(t, srv, s.JWT), http.StatusOK)
	wantStatus(t, rcAPI(t, srv, ats[1]), http.StatusUnauthorized)
}

func TestRingCentralRefreshSingleUse(t *testing.T) {
	s, srv, clk := newRCTest(t, "production")
	s.AuthLimitPerMinute = 0
	r := rcExchange(t, srv, s.JWT)
	at0, rt0 := r.str("access_token"), r.str("refresh_token")

	r = rcRefresh(t, srv, rt0)
	wantStatus(t, r, http.StatusOK)
	at1, rt1 := r.str("access_token"), r.str("refresh_token")
	if rt1 == rt0 || at1 == at0 {
		t.Fatal("refresh did not rotate")
	}
	// The old access token dies at once.
	wantStatus(t, rcAPI(t, srv, at0), http.StatusUnauthorized)
	// Before the new access token is used, the old refresh token still works (a lost
	// response); the pair it had produced dies.
	r = rcRefresh(t, srv, rt0)
	wantStatus(t, r, http.StatusOK)
	at2, rt2 := r.str("access_token"), r.str("refresh_token")
	wantStatus(t, rcAPI(t, srv, at1), http.StatusUnauthorized)
	wantStatus(t, rcRefresh(t, srv, rt1), http.StatusBadRequest)
	// Using the new access token starts rt0's 10 s grace; one reuse inside it works, once.
	wantStatus(t, rcAPI(t, srv, at2), http.StatusOK)
	clk.Advance(9 * time.Second)
	r = rcRefresh(t, srv, rt0)
	wantStatus(t, r, http.StatusOK)
	at3, rt3 := r.str("access_token"), r.str("refresh_token")
	wantStatus(t, rcRefresh(t, srv, rt2), http.StatusBadRequest)
	r = rcRefresh(t, srv, rt0)
	wantStatus(t, r, http.StatusBadRequest)
	if r.str("error") != "invalid_grant" {
		t.Fatalf("reused refresh token: %s", r.body)
	}
	// Normal rotation: after the grace the previous refresh token is dead.
	wantStatus(t, rcAPI(t, srv, at3), http.StatusOK)
	r = rcRefresh(t, srv, rt3)
	wantStatus(t, r, http.StatusOK)
	at4 := r.str("access_token")
	wantStatus(t, rcAPI(t, srv, at4), http.StatusOK)
	clk.Advance(10 * time.Second)
	wantStatus(t, rcRefresh(t, srv, rt3), http.StatusBadRequest)
	wantStatus(t, rcAPI(t, srv, at4), http.StatusOK)
	if s.Counts()["refresh_token"] != 8 {
		t.Fatalf("counts %v", s.Counts())
	}
	// Refresh tokens expire.
	r = rcExchange(t, srv, s.JWT)
	rt := r.str("refresh_token")
	clk.Advance(604800 * time.Second)
	r = rcRefresh(t, srv, rt)
	if r.status != http.StatusBadRequest || rcErrorCode(r) != "OAU-128" {
		t.Fatalf("expired refresh token: %s", r.body)
	}
}

func TestRingCentralRevoke(t *testing.T) {
	s, srv, _ := newRCTest(t, "production")
	s.AuthLimitPerMinute = 0
	r := rcExchange(t, srv, s.JWT)
	at, rt := r.str("access_token"), r.str("refresh_token")
	wantStatus(t, form(t, srv, "/restapi/oauth/revoke", "token="+url.QueryEscape(rt)), http.StatusUnauthorized)
	wantStatus(t, form(t, srv, "/restapi/oauth/revoke", "", rcAuth...), http.StatusBadRequest)
	wantStatus(t, form(t, srv, "/restapi/oauth/revoke", "token="+url.QueryEscape(rt), rcAuth...), http.StatusOK)
	wantStatus(t, rcAPI(t, srv, at), http.StatusUnauthorized)
	wantStatus(t, rcRefresh(t, srv, rt), http.StatusBadRequest)
	// Unknown tokens are fine too (RFC 7009).
	wantStatus(t, form(t, srv, "/restapi/oauth/revoke", "token=nope", rcAuth...), http.StatusOK)
	if s.Counts()["revoke"] != 4 || s.TokenRequests() != 2 {
		t.Fatalf("counts %v, token requests %d", s.Counts(), s.TokenRequests())
	}
	r = rcExchange(t, srv, s.JWT)
	s.RevokeAll()
	wantStatus(t, rcAPI(t, srv, r.str("access_token")), http.StatusUnauthorized)
	wantStatus(t, rcRefresh(t, srv, r.str("refresh_token")), http.StatusBadRequest)
}

func TestRingCentralAuthRateLimit(t *testing.T) {
	s, srv, clk := newRCTest(t, "production")
	for i := range 5 {
		r := rcExchange(t, srv, s.JWT)
		wantStatus(t, r, http.StatusOK)
		if r.header.Get("X-Rate-Limit-Remaining") != string(rune('4'-i)) {
			t.Fatalf("call %d: remaining %q", i, r.header.Get("X-Rate-Limit-Remaining"))
		}
		clk.Advance(time.Second)
	}
	check429 := func() {
		t.Helper()
		r := rcExchange(t, srv, s.JWT)
		wantStatus(t, r, http.StatusTooManyRequests)
		h := r.header
		if h.Get("Retry-After") != "60" || h.Get("X-Rate-Limit-Group") == "" || h.Get("X-Rate-Limit-Limit") != "5" ||
			h.Get("X-Rate-Limit-Remaining") != "0" || h.Get("X-Rate-Limit-Window") != "60" {
			t.Fatalf("429 headers %v", h)
		}
		if r.str("errorCode") != "CMN-301" {
			t.Fatalf("429 body %s", r.body)
		}
	}
	check429()
	// Every request during the penalty restarts it.
	clk.Advance(59 * time.Second)
	check429()
	clk.Advance(59 * time.Second)
	check429()
	clk.Advance(60 * time.Second)
	wantStatus(t, rcExchange(t, srv, s.JWT), http.StatusOK)
	// Revoke counts in the same group.
	for range 4 {
		wantStatus(t, form(t, srv, "/restapi/oauth/revoke", "token=nope", rcAuth...), http.StatusOK)
	}
	wantStatus(t, form(t, srv, "/restapi/oauth/revoke", "token=nope", rcAuth...), http.StatusTooManyRequests)
	if s.TokenRequests() != 9 {
		t.Fatalf("TokenRequests = %d, want 9 (429s count)", s.TokenRequests())
	}
}
