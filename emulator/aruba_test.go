package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	arubaLoginPath = "/oauth2/authorize/central/api/login"
	arubaCodePath  = "/oauth2/authorize/central/api"
)

func newArubaTest(t *testing.T) (*Aruba, *httptest.Server, *fakeClock) {
	t.Helper()
	clk := newClock()
	a := NewAruba(clk.Now)
	return a, serve(t, a), clk
}

// arubaLogin runs step 1 and returns the csrftoken and session cookies.
func arubaLogin(t *testing.T, srv *httptest.Server, clientID string) (csrf, session string) {
	t.Helper()
	r := send(t, srv, http.MethodPost, arubaLoginPath+"?client_id="+url.QueryEscape(clientID),
		`{"username":"netops@example.com","password":"aruba-password"}`, "Content-Type", "application/json")
	wantStatus(t, r, http.StatusOK)
	if r.obj["status"] != true {
		t.Fatalf("login body %s", r.body)
	}
	cookies := r.header.Values("Set-Cookie")
	if len(cookies) != 2 {
		t.Fatalf("Set-Cookie headers = %q, want two", cookies)
	}
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		switch c.Name {
		case "csrftoken":
			csrf = c.Value
		case "session":
			session = c.Value
		}
	}
	if csrf == "" || session == "" {
		t.Fatalf("cookies %q lack csrftoken or session", cookies)
	}
	return csrf, session
}

// postAuthCode runs step 3 and returns the response.
func postAuthCode(t *testing.T, srv *httptest.Server, path, clientID, customer, csrf, session string) result {
	t.Helper()
	return send(t, srv, http.MethodPost, path+"?client_id="+url.QueryEscape(clientID)+"&response_type=code&scope=all",
		`{"customer_id":"`+customer+`"}`,
		"Content-Type", "application/json", "X-CSRF-Token", csrf, "Cookie", "session="+session)
}

// arubaToken posts to /oauth2/token with everything in the query string, as the SDK does.
func arubaToken(t *testing.T, srv *httptest.Server, params url.Values) result {
	t.Helper()
	return send(t, srv, http.MethodPost, "/oauth2/token?"+params.Encode(), "")
}

func arubaRefresh(t *testing.T, srv *httptest.Server, rt string) result {
	t.Helper()
	return arubaToken(t, srv, url.Values{
		"client_id": {"aruba-client-id"}, "client_secret": {"aruba-client-secret"},
		"grant_type": {"refresh_token"}, "refresh_token": {rt},
	})
}

func arubaAPI(t *testing.T, srv *httptest.Server, at string, headers ...string) result {
	t.Helper()
	return send(t, srv, http.MethodGet, "/monitoring/v1/aps", "", append([]string{"Authorization", "Bearer " + at}, headers...)...)
}

// offline imports the UI-downloaded token and returns its access and refresh tokens.
func offline(t *testing.T, a *Aruba) (at, rt string) {
	t.Helper()
	var tok map[string]any
	if err := json.Unmarshal(a.IssueOfflineToken(), &tok); err != nil {
		t.Fatal(err)
	}
	return tok["access_token"].(string), tok["refresh_token"].(string)
}

func TestArubaOAuthGrantFlow(t *testing.T) {
	a, srv, clk := newArubaTest(t)
	csrf, session := arubaLogin(t, srv, "aruba-client-id")
	// The SDK's path has no trailing slash, the guide's has one: both work.
	for _, path := range []string{arubaCodePath, arubaCodePath + "/"} {
		if path != arubaCodePath {
			clk.Advance(time.Second)
		}
		r := postAuthCode(t, srv, path, "aruba-client-id", "cust-0001", csrf, session)
		wantStatus(t, r, http.StatusOK)
		code := r.str("auth_code")
		if code == "" {
			t.Fatalf("auth code body %s", r.body)
		}
		r = arubaToken(t, srv, url.Values{
			"client_id": {"aruba-client-id"}, "client_secret": {"aruba-client-secret"},
			"grant_type": {"authorization_code"}, "code": {code},
		})
		wantStatus(t, r, http.StatusOK)
		sameKeys(t, r.obj, vector(t, "aruba-central-refresh-response"))
		if r.obj["expires_in"] != float64(7200) || r.str("token_type") != "bearer" {
			t.Fatalf("token body %s", r.body)
		}
		api := arubaAPI(t, srv, r.str("access_token"))
		wantStatus(t, api, http.StatusOK)
		if api.obj["count"] != float64(1) {
			t.Fatalf("aps body %s", api.body)
		}
	}
	c := a.Counts()
	if c["login"] != 1 || c["auth_code"] != 2 || c["authorization_code"] != 2 || c["api"] != 2 || a.TokenRequests() != 2 {
		t.Fatalf("counts = %v, token requests %d", c, a.TokenRequests())
	}
}

func TestArubaLoginErrors(t *testing.T) {
	_, srv, clk := newArubaTest(t)
	login := func(client, body string, headers ...string) result {
		clk.Advance(time.Second) // stay clear of the 1 call/s limit
		return send(t, srv, http.MethodPost, arubaLoginPath+"?client_id="+client, body, headers...)
	}
	json := []string{"Content-Type", "application/json"}
	r := login("aruba-client-id", `{"username":"netops@example.com","password":"wrong"}`, json...)
	wantStatus(t, r, http.StatusUnauthorized)
	sameKeys(t, r.obj, vector(t, "aruba-central-errors")["401"].(map[string]any))
	if r.str("message") != "Auth failure" || r.obj["status"] != false || len(r.header.Values("Set-Cookie")) != 0 {
		t.Fatalf("bad creds: %s", r.body)
	}
	r = login("nobody", `{"username":"netops@example.com","password":"aruba-password"}`, json...)
	wantStatus(t, r, http.StatusBadRequest)
	sameKeys(t, r.obj, vector(t, "aruba-central-errors")["400"].(map[string]any))
	r = login("aruba-client-id", `{"username":"netops@example.com","password":"aruba-password"}`) // no Content-Type
	wantStatus(t, r, http.StatusBadRequest)
	r = login("aruba-client-id", `username=netops@example.com&password=aruba-password`, "Content-Type", formType)
	wantStatus(t, r, http.StatusBadRequest)
	r = login("aruba-client-id", `{"username":"netops@example.com"}`, json...)
	wantStatus(t, r, http.StatusBadRequest)
	// The MSP application logs in too.
	r = login("aruba-msp-client-id", `{"username":"netops@example.com","password":"aruba-password"}`, json...)
	wantStatus(t, r, http.StatusOK)
}

func TestArubaStepRateLimit(t *testing.T) {
	_, srv, clk := newArubaTest(t)
	csrf, session := arubaLogin(t, srv, "aruba-client-id")
	// Another step right away is fine: the limit is per step, as the SDK's back-to-back calls show.
	wantStatus(t, postAuthCode(t, srv, arubaCodePath, "aruba-client-id", "cust-0001", csrf, session), http.StatusOK)
	body := `{"username":"netops@example.com","password":"aruba-password"}`
	r := send(t, srv, http.MethodPost, arubaLoginPath+"?client_id=aruba-client-id", body, "Content-Type", "application/json")
	wantStatus(t, r, http.StatusTooManyRequests)
	sameKeys(t, r.obj, vector(t, "aruba-central-errors")["429"].(map[string]any))
	if r.str("message") != "API rate limit exceeded" {
		t.Fatalf("429 body %s", r.body)
	}
	r = postAuthCode(t, srv, arubaCodePath, "aruba-client-id", "cust-0001", csrf, session)
	wantStatus(t, r, http.StatusTooManyRequests)
	// The limit is per client: the MSP application may log in in the same second.
	clk.Advance(999 * time.Millisecond)
	arubaLogin(t, srv, "aruba-msp-client-id")
	wantStatus(t, send(t, srv, http.MethodPost, arubaLoginPath+"?client_id=aruba-client-id", body, "Content-Type", "application/json"), http.StatusTooManyRequests)
	clk.Advance(time.Millisecond)
	arubaLogin(t, srv, "aruba-client-id")
}

func TestArubaAuthCodeChecks(t *testing.T) {
	a, srv, clk := newArubaTest(t)
	csrf, session := arubaLogin(t, srv, "aruba-client-id")
	try := func(query, body string, headers ...string) result {
		clk.Advance(time.Second)
		return send(t, srv, http.MethodPost, arubaCodePath+"?"+query, body, headers...)
	}
	good := "client_id=aruba-client-id&response_type=code&scope=read"
	cust := `{"customer_id":"cust-0001"}`
	hdr := []string{"Content-Type", "application/json", "X-CSRF-Token", csrf, "Cookie", "session=" + session}
	cases := []struct {
		name    string
		query   string
		body    string
		headers []string
		want    int
	}{
		{"ok", good, cust, hdr, http.StatusOK},
		{"no csrf", good, cust, []string{"Content-Type", "application/json", "Cookie", "session=" + session}, http.StatusUnauthorized},
		{"wrong csrf", good, cust, []string{"Content-Type", "application/json", "X-CSRF-Token", "x" + csrf, "Cookie", "session=" + session}, http.StatusUnauthorized},
		{"no session", good, cust, []string{"Content-Type", "application/json", "X-CSRF-Token", csrf}, http.StatusUnauthorized},
		{"unknown client", "client_id=nope&response_type=code&scope=all", cust, hdr, http.StatusBadRequest},
		{"msp application", "client_id=aruba-msp-client-id&response_type=code&scope=all", cust, hdr, http.StatusOK},
		{"response_type", "client_id=aruba-client-id&response_type=token&scope=all", cust, hdr, http.StatusBadRequest},
		{"scope", "client_id=aruba-client-id&response_type=code&scope=write", cust, hdr, http.StatusBadRequest},
		{"other customer", good, `{"customer_id":"cust-9999"}`, hdr, http.StatusBadRequest},
		{"no customer", good, `{}`, hdr, http.StatusBadRequest},
	}
	for _, c := range cases {
		if r := try(c.query, c.body, c.headers...); r.status != c.want {
			t.Errorf("%s: status %d, want %d: %s", c.name, r.status, c.want, r.body)
		}
	}
	// The session's user must still exist.
	clk.Advance(time.Second)
	a.mu.Lock()
	a.Username = "someone-else@example.com"
	a.mu.Unlock()
	wantStatus(t, try(good, cust, hdr...), http.StatusUnauthorized)
}

func TestArubaAuthCodeWindowAndSingleUse(t *testing.T) {
	_, srv, clk := newArubaTest(t)
	csrf, session := arubaLogin(t, srv, "aruba-client-id")
	code := func() string {
		clk.Advance(time.Second)
		r := postAuthCode(t, srv, arubaCodePath, "aruba-client-id", "cust-0001", csrf, session)
		wantStatus(t, r, http.StatusOK)
		return r.str("auth_code")
	}
	exchange := func(code string) result {
		return arubaToken(t, srv, url.Values{
			"client_id": {"aruba-client-id"}, "client_secret": {"aruba-client-secret"},
			"grant_type": {"authorization_code"}, "code": {code},
		})
	}
	c1 := code()
	clk.Advance(300 * time.Second)
	wantStatus(t, exchange(c1), http.StatusOK)
	r := exchange(c1)
	wantStatus(t, r, http.StatusBadRequest)
	if r.str("error") != "invalid_grant" {
		t.Fatalf("reused code: %s", r.body)
	}
	c2 := code()
	clk.Advance(301 * time.Second)
	r = exchange(c2)
	wantStatus(t, r, http.StatusBadRequest)
	if r.str("error") != "invalid_grant" {
		t.Fatalf("expired code: %s", r.body)
	}
	// A code is bound to the client it was issued to.
	c3 := code()
	r = arubaToken(t, srv, url.Values{"client_id": {"aruba-msp-client-id"}, "client_secret": {"aruba-msp-client-secret"},
		"grant_type": {"authorization_code"}, "code": {c3}})
	wantStatus(t, r, http.StatusBadRequest)
	r = arubaToken(t, srv, url.Values{"client_id": {"aruba-client-id"}, "client_secret": {"aruba-msp-client-secret"},
		"grant_type": {"authorization_code"}, "code": {c3}})
	wantStatus(t, r, http.StatusUnauthorized)
	wantStatus(t, exchange(c3), http.StatusOK)
}

func TestArubaTokenParameterPlacement(t *testing.T) {
	a, srv, _ := newArubaTest(t)
	_, rt := offline(t, a)
	// Repeated query parameters: the first wins.
	q := "client_id=aruba-client-id&client_id=x&client_secret=aruba-client-secret&client_secret=y" +
		"&grant_type=refresh_token&grant_type=z&refresh_token=" + url.QueryEscape(rt) + "&refresh_token=w"
	r := send(t, srv, http.MethodPost, "/oauth2/token?"+q, "")
	wantStatus(t, r, http.StatusOK)
	// Form body only.
	rt = r.str("refresh_token")
	body := url.Values{"client_id": {"aruba-client-id"}, "client_secret": {"aruba-client-secret"},
		"grant_type": {"refresh_token"}, "refresh_token": {rt}}.Encode()
	r = form(t, srv, "/oauth2/token", body)
	wantStatus(t, r, http.StatusOK)
	// Split between query and body.
	rt = r.str("refresh_token")
	r = form(t, srv, "/oauth2/token?client_id=aruba-client-id&grant_type=refresh_token",
		"client_secret=aruba-client-secret&refresh_token="+url.QueryEscape(rt))
	wantStatus(t, r, http.StatusOK)
	// A JSON body is not a form.
	r = send(t, srv, http.MethodPost, "/oauth2/token", `{"grant_type":"refresh_token"}`, "Content-Type", "application/json")
	wantStatus(t, r, http.StatusBadRequest)
	sameKeys(t, r.obj, vector(t, "aruba-central-errors")["400"].(map[string]any))

	cases := []struct {
		name   string
		params url.Values
		want   int
		field  string
	}{
		{"no client_id", url.Values{"client_secret": {"s"}, "grant_type": {"refresh_token"}}, 400, "message"},
		{"no client_secret", url.Values{"client_id": {"aruba-client-id"}, "grant_type": {"refresh_token"}}, 400, "message"},
		{"bad secret", url.Values{"client_id": {"aruba-client-id"}, "client_secret": {"nope"}, "grant_type": {"refresh_token"}}, 401, "message"},
		{"unknown client", url.Values{"client_id": {"nope"}, "client_secret": {"nope"}, "grant_type": {"refresh_token"}}, 401, "message"},
		{"no grant", url.Values{"client_id": {"aruba-client-id"}, "client_secret": {"aruba-client-secret"}}, 400, "message"},
		{"bad grant", url.Values{"client_id": {"aruba-client-id"}, "client_secret": {"aruba-client-secret"}, "grant_type": {"password"}}, 400, "message"},
		{"no refresh token", url.Values{"client_id": {"aruba-client-id"}, "client_secret": {"aruba-client-secret"}, "grant_type": {"refresh_token"}}, 400, "message"},
		{"bad refresh token", url.Values{"client_id": {"aruba-client-id"}, "client_secret": {"aruba-client-secret"}, "grant_type": {"refresh_token"}, "refresh_token": {"nope"}}, 400, "error"},
	}
	for _, c := range cases {
		r := arubaToken(t, srv, c.params)
		if r.status != c.want || r.obj[c.field] == nil {
			t.Errorf("%s: %d %s, want %d with %q", c.name, r.status, r.body, c.want, c.field)
		}
	}
	if got := a.TokenRequests(); got != 4+int64(len(cases)) {
		t.Fatalf("TokenRequests = %d, want %d", got, 4+len(cases))
	}
	if got := a.Counts()["refresh_token"]; got != 3+6 { // the JSON body's grant_type is not read
		t.Fatalf("refresh_token count = %d, want 9", got)
	}
}

func TestArubaOfflineToken(t *testing.T) {
	a, srv, clk := newArubaTest(t)
	raw := a.IssueOfflineToken()
	var tok map[string]any
	if err := json.Unmarshal(raw, &tok); err != nil {
		t.Fatal(err)
	}
	sameKeys(t, tok, vector(t, "aruba-central-offline-token"))
	if tok["created_at"] != float64(clk.Now().UnixMilli()) || tok["expires_in"] != float64(7200) ||
		tok["token_type"] != "bearer" || tok["scope"] != "all" || tok["authenticated_userid"] != "netops@example.com" {
		t.Fatalf("offline token %s", raw)
	}
	at, rt := tok["access_token"].(string), tok["refresh_token"].(string)
	if !a.ValidAccessToken(at) || !a.ValidRefreshToken(rt) {
		t.Fatal("offline tokens are not valid")
	}
	wantStatus(t, arubaAPI(t, srv, at), http.StatusOK)
	if a.TokenRequests() != 0 {
		t.Fatal("issuing an offline token counted as a token request")
	}
}

func TestArubaRefreshRotation(t *testing.T) {
	a, srv, _ := newArubaTest(t)
	_, rt0 := offline(t, a)

	r := arubaRefresh(t, srv, rt0)
	wantStatus(t, r, http.StatusOK)
	at1, rt1 := r.str("access_token"), r.str("refresh_token")
	if rt1 == rt0 {
		t.Fatal("refresh did not rotate the refresh token")
	}
	if !a.ValidRefreshToken(rt0) || !a.ValidRefreshToken(rt1) {
		t.Fatal("previous refresh token must stay a fallback until the new pair is proven")
	}
	// The client lost rt1 and falls back to rt0: rt1 (never stored) dies, rt0 stays a fallback.
	r = arubaRefresh(t, srv, rt0)
	wantStatus(t, r, http.StatusOK)
	at2, rt2 := r.str("access_token"), r.str("refresh_token")
	if a.ValidRefreshToken(rt1) || !a.ValidRefreshToken(rt0) {
		t.Fatal("fallback refresh: want rt1 dead and rt0 alive")
	}
	// Using an older access token proves nothing.
	wantStatus(t, arubaAPI(t, srv, at1), http.StatusOK)
	if !a.ValidRefreshToken(rt0) {
		t.Fatal("use of a superseded access token killed the fallback")
	}
	// First successful use of the newest access token kills the fallback.
	wantStatus(t, arubaAPI(t, srv, at2), http.StatusOK)
	if a.ValidRefreshToken(rt0) || !a.ValidRefreshToken(rt2) {
		t.Fatal("after using the new access token: want rt0 dead, rt2 alive")
	}
	r = arubaRefresh(t, srv, rt0)
	wantStatus(t, r, http.StatusBadRequest)
	if r.str("error") != "invalid_grant" || r.str("error_description") != "Invalid refresh token" {
		t.Fatalf("dead refresh token: %s", r.body)
	}
	// Using the new refresh token also kills its predecessor.
	r = arubaRefresh(t, srv, rt2)
	wantStatus(t, r, http.StatusOK)
	rt3 := r.str("refresh_token")
	if !a.ValidRefreshToken(rt2) {
		t.Fatal("rt2 must be rt3's fallback")
	}
	wantStatus(t, arubaRefresh(t, srv, rt3), http.StatusOK)
	if a.ValidRefreshToken(rt2) || a.ValidRefreshToken(rt3) == false {
		t.Fatal("using rt3 must kill rt2 and keep rt3 as the fallback")
	}
	// A refresh token is bound to its client.
	csrf, session := arubaLogin(t, srv, "aruba-msp-client-id")
	m := send(t, srv, http.MethodPost, "/oauth2/authorize/central/api/client_credentials?client_id=aruba-msp-client-id",
		`{"customer_id":"cust-0002"}`, "Content-Type", "application/json", "X-CSRF-Token", csrf, "Cookie", "session="+session)
	wantStatus(t, m, http.StatusOK)
	r = arubaToken(t, srv, url.Values{"client_id": {m.str("client_id")}, "client_secret": {m.str("client_secret")},
		"grant_type": {"refresh_token"}, "refresh_token": {rt3}})
	wantStatus(t, r, http.StatusBadRequest)
}

func TestArubaRefreshTokenIdle15Days(t *testing.T) {
	a, srv, clk := newArubaTest(t)
	_, rt := offline(t, a)
	clk.Advance(14 * 24 * time.Hour)
	r := arubaRefresh(t, srv, rt)
	wantStatus(t, r, http.StatusOK)
	rt = r.str("refresh_token")
	clk.Advance(14 * 24 * time.Hour) // 28 days since issue, 14 since the last refresh
	r = arubaRefresh(t, srv, rt)
	wantStatus(t, r, http.StatusOK)
	rt = r.str("refresh_token")
	clk.Advance(15 * 24 * time.Hour)
	if a.ValidRefreshToken(rt) {
		t.Fatal("refresh token idle for 15 days is still valid")
	}
	wantStatus(t, arubaRefresh(t, srv, rt), http.StatusBadRequest)
}

func TestArubaAccessTokenExpiry(t *testing.T) {
	a, srv, clk := newArubaTest(t)
	at, _ := offline(t, a)
	clk.Advance(7199 * time.Second)
	wantStatus(t, arubaAPI(t, srv, at), http.StatusOK)
	clk.Advance(time.Second)
	r := arubaAPI(t, srv, at)
	wantStatus(t, r, http.StatusUnauthorized)
	if !strings.Contains(string(r.body), "invalid_token") {
		t.Fatalf("expired token body %s", r.body)
	}
	r = send(t, srv, http.MethodGet, "/monitoring/v1/aps", "")
	wantStatus(t, r, http.StatusUnauthorized)
	if !strings.Contains(string(r.body), "invalid_token") || r.header.Get("X-RateLimit-Limit-second") != "7" {
		t.Fatalf("no token: %v %s", r.header, r.body)
	}
}

func TestArubaRollingWindowLimit(t *testing.T) {
	a, srv, clk := newArubaTest(t)
	at, _ := offline(t, a)
	status := map[int]int{}
	for i := range 20 {
		r := arubaAPI(t, srv, at)
		status[r.status]++
		h := r.header
		if h.Get("X-RateLimit-Limit-second") != "7" || h.Get("X-RateLimit-Limit-day") != "5000" {
			t.Fatalf("limit headers %v", h)
		}
		wantSec := max(0, 6-i)
		if got := h.Get("X-RateLimit-Remaining-second"); got != strconv.Itoa(wantSec) {
			t.Fatalf("call %d: Remaining-second = %s, want %d", i, got, wantSec)
		}
		if got := h.Get("X-RateLimit-Remaining-day"); got != strconv.Itoa(5000-min(i+1, 7)) {
			t.Fatalf("call %d: Remaining-day = %s", i, got)
		}
		if r.status == http.StatusTooManyRequests && r.str("message") != "API rate limit exceeded" {
			t.Fatalf("429 body %s", r.body)
		}
		clk.Advance(10 * time.Millisecond)
	}
	if status[200] != 7 || status[429] != 13 {
		t.Fatalf("statuses = %v, want 7 accepted and 13 refused", status)
	}
	// 990 ms after the first call the window still holds all seven.
	clk.Advance(790 * time.Millisecond)
	wantStatus(t, arubaAPI(t, srv, at), http.StatusTooManyRequests)
	clk.Advance(10 * time.Millisecond) // the first call leaves the window
	wantStatus(t, arubaAPI(t, srv, at), http.StatusOK)
	wantStatus(t, arubaAPI(t, srv, at), http.StatusTooManyRequests)
	if acc, lim := a.APIStats(); acc != 8 || lim != 15 {
		t.Fatalf("APIStats = %d, %d; want 8, 15", acc, lim)
	}
}

// Concurrent callers at one frozen instant: exactly seven get through.
func TestArubaRollingWindowConcurrent(t *testing.T) {
	a, srv, _ := newArubaTest(t)
	at, _ := offline(t, a)
	var wg sync.WaitGroup
	codes := make(chan int, 20)
	for range 20 {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodGet, srv.URL+"/monitoring/v1/aps", nil)
			req.Header.Set("Authorization", "Bearer "+at)
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			codes <- resp.StatusCode
		})
	}
	wg.Wait()
	close(codes)
	n := map[int]int{}
	for c := range codes {
		n[c]++
	}
	if n[200] != 7 || n[429] != 13 {
		t.Fatalf("statuses = %v", n)
	}
}

func TestArubaDailyQuota(t *testing.T) {
	a, srv, clk := newArubaTest(t)
	a.DailyQuota = 3
	at, _ := offline(t, a)
	for range 3 {
		wantStatus(t, arubaAPI(t, srv, at), http.StatusOK)
		clk.Advance(time.Second)
	}
	r := arubaAPI(t, srv, at)
	wantStatus(t, r, http.StatusTooManyRequests)
	if r.header.Get("X-RateLimit-Remaining-day") != "0" || r.header.Get("X-RateLimit-Limit-day") != "3" {
		t.Fatalf("headers %v", r.header)
	}
	// The clock starts at 12:00 GMT: the quota is back at midnight GMT.
	clk.Advance(11*time.Hour + 59*time.Minute)
	at, _ = offline(t, a) // the first one expired long ago
	wantStatus(t, arubaAPI(t, srv, at), http.StatusTooManyRequests)
	clk.Advance(time.Minute)
	r = arubaAPI(t, srv, at)
	wantStatus(t, r, http.StatusOK)
	if r.header.Get("X-RateLimit-Remaining-day") != "2" {
		t.Fatalf("after midnight: %v", r.header)
	}
}

func TestArubaMSPFlowAndTenantID(t *testing.T) {
	a, srv, clk := newArubaTest(t)
	csrf, session := arubaLogin(t, srv, "aruba-msp-client-id")
	hdr := []string{"Content-Type", "application/json", "X-CSRF-Token", csrf, "Cookie", "session=" + session}
	mint := func(client, customer string) result {
		return send(t, srv, http.MethodPost, "/oauth2/authorize/central/api/client_credentials?client_id="+client,
			`{"customer_id":"`+customer+`"}`, hdr...)
	}
	m := mint("aruba-msp-client-id", "tenant-42")
	wantStatus(t, m, http.StatusOK)
	id, secret := m.str("client_id"), m.str("client_secret")
	if id == "" || secret == "" || id == "aruba-msp-client-id" {
		t.Fatalf("minted %s", m.body)
	}
	// Auth code and token exchange with the minted credentials, for that customer only.
	r := postAuthCode(t, srv, arubaCodePath, id, "cust-0001", csrf, session)
	wantStatus(t, r, http.StatusBadRequest)
	clk.Advance(time.Second)
	r = postAuthCode(t, srv, arubaCodePath, id, "tenant-42", csrf, session)
	wantStatus(t, r, http.StatusOK)
	r = arubaToken(t, srv, url.Values{"client_id": {id}, "client_secret": {secret},
		"grant_type": {"authorization_code"}, "code": {r.str("auth_code")}})
	wantStatus(t, r, http.StatusOK)
	tenantAT := r.str("access_token")
	wantStatus(t, arubaAPI(t, srv, tenantAT), http.StatusOK)

	// The MSP application's own token calls the tenant with TenantID.
	clk.Advance(time.Second)
	r = postAuthCode(t, srv, arubaCodePath, "aruba-msp-client-id", "cust-0001", csrf, session)
	wantStatus(t, r, http.StatusOK)
	r = arubaToken(t, srv, url.Values{"client_id": {"aruba-msp-client-id"}, "client_secret": {"aruba-msp-client-secret"},
		"grant_type": {"authorization_code"}, "code": {r.str("auth_code")}})
	wantStatus(t, r, http.StatusOK)
	wantStatus(t, arubaAPI(t, srv, r.str("access_token"), "TenantID", "tenant-42"), http.StatusOK)

	// TenantID must name a known customer.
	at, _ := offline(t, a)
	wantStatus(t, arubaAPI(t, srv, at, "TenantID", "tenant-42"), http.StatusOK)
	wantStatus(t, arubaAPI(t, srv, at, "TenantID", "cust-0001"), http.StatusOK)
	r = arubaAPI(t, srv, at, "TenantID", "tenant-unknown")
	wantStatus(t, r, http.StatusForbidden)
	if r.header.Get("X-RateLimit-Limit-day") == "" {
		t.Fatal("403 lacks rate-limit headers")
	}

	clk.Advance(time.Second)
	again := mint("aruba-msp-client-id", "tenant-42")
	if again.str("client_id") != id || again.str("client_secret") != secret {
		t.Fatal("asking again for the same customer changed the credentials")
	}
	clk.Advance(time.Second)
	wantStatus(t, mint("aruba-client-id", "tenant-43"), http.StatusBadRequest)
	clk.Advance(time.Second)
	wantStatus(t, send(t, srv, http.MethodPost, "/oauth2/authorize/central/api/client_credentials?client_id=aruba-msp-client-id",
		`{"customer_id":"tenant-43"}`, "Content-Type", "application/json", "Cookie", "session="+session), http.StatusUnauthorized)
	wantStatus(t, mint("aruba-msp-client-id", "tenant-43"), http.StatusTooManyRequests)
	if c := a.Counts()["msp_client_credentials"]; c != 5 {
		t.Fatalf("msp_client_credentials count = %d", c)
	}
}

func TestArubaDeleteToken(t *testing.T) {
	a, srv, _ := newArubaTest(t)
	at, rt := offline(t, a)
	csrf, session := arubaLogin(t, srv, "aruba-client-id")
	del := func(body string, headers ...string) result {
		return send(t, srv, http.MethodDelete, "/oauth2/api/tokens", body, headers...)
	}
	hdr := []string{"Content-Type", "application/json", "X-CSRF-Token", csrf, "Cookie", "session=" + session}
	body := `{"customer_id":"cust-0001","access_token":"` + at + `"}`
	wantStatus(t, del(body, "Content-Type", "application/json", "Cookie", "session="+session), http.StatusUnauthorized)
	wantStatus(t, del(`{"customer_id":"cust-0002","access_token":"`+at+`"}`, hdr...), http.StatusBadRequest)
	r := del(body, hdr...)
	wantStatus(t, r, http.StatusOK)
	if r.obj["status"] != true {
		t.Fatalf("delete body %s", r.body)
	}
	if a.ValidAccessToken(at) || a.ValidRefreshToken(rt) {
		t.Fatal("deleted tokens still valid")
	}
	wantStatus(t, del(body, hdr...), http.StatusBadRequest)
	wantStatus(t, send(t, srv, http.MethodPost, "/oauth2/api/tokens", body, hdr...), http.StatusMethodNotAllowed)
	if a.Counts()["revoke"] != 4 {
		t.Fatalf("revoke count = %d", a.Counts()["revoke"])
	}
}

func TestArubaRevokeAllAndDown(t *testing.T) {
	a, srv, _ := newArubaTest(t)
	at, rt := offline(t, a)
	r := arubaRefresh(t, srv, rt)
	wantStatus(t, r, http.StatusOK)
	a.RevokeAll()
	for _, tok := range []string{at, r.str("access_token")} {
		wantStatus(t, arubaAPI(t, srv, tok), http.StatusUnauthorized)
	}
	for _, tok := range []string{rt, r.str("refresh_token")} {
		wantStatus(t, arubaRefresh(t, srv, tok), http.StatusBadRequest)
	}
	a.SetDown(true)
	r = arubaRefresh(t, srv, rt)
	wantStatus(t, r, http.StatusServiceUnavailable)
	if r.str("message") != "service unavailable" {
		t.Fatalf("down body %s", r.body)
	}
}

// Central's rate headers go out spelled as Central spells them: pycentral
// looks them up as written, and Go would send X-Ratelimit-Remaining-Day.
func TestArubaRateHeadersKeepTheirSpelling(t *testing.T) {
	a := NewAruba(nil)
	srv := httptest.NewServer(a)
	defer srv.Close()
	c, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /monitoring/v1/aps HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer nope\r\nConnection: close\r\n\r\n")
	head, _ := io.ReadAll(c)
	for _, want := range []string{"\r\nX-RateLimit-Limit-day: ", "\r\nX-RateLimit-Remaining-day: ", "\r\nX-RateLimit-Limit-second: ", "\r\nX-RateLimit-Remaining-second: "} {
		if !bytes.Contains(head, []byte(want)) {
			t.Errorf("the answer lacks %q:\n%s", strings.TrimSpace(want), head)
		}
	}
}

// A published Aruba client sends the refresh with its parameters in the
// query string and a "{}" body without a content type; Central takes it.
func TestArubaRefreshWithQueryParamsAndAnEmptyJSONBody(t *testing.T) {
	a := NewAruba(nil)
	srv := httptest.NewServer(a)
	defer srv.Close()
	var off struct {
		RefreshToken string `json:"refresh_token"`
	}
	json.Unmarshal(a.IssueOfflineToken(), &off)
	q := url.Values{"client_id": {a.ClientID}, "client_secret": {a.ClientSecret}, "grant_type": {"refresh_token"}, "refresh_token": {off.RefreshToken}}
	r := send(t, srv, http.MethodPost, "/oauth2/token?"+q.Encode(), "{}")
	if r.status != http.StatusOK || r.str("access_token") == "" {
		t.Fatalf("refresh with a {} body: %d %s", r.status, r.body)
	}
	// Without the parameters in the query, a body that is no form is refused.
	r = send(t, srv, http.MethodPost, "/oauth2/token", "{}")
	if r.status != http.StatusBadRequest {
		t.Errorf("a {} body alone: %d %s", r.status, r.body)
	}
}

// The MSP account lists its customers a page of at most 50 at a time
// (more draws 400 LIMIT_REQUEST_EXCEEDED, seed 004), every page counted
// against the MSP's quota; a listed customer is accepted in TenantID and
// charged to the MSP, an unlisted one refused.
func TestArubaMSPCustomers(t *testing.T) {
	a, srv, clk := newArubaTest(t)
	at, _ := offline(t, a)
	list := func(q string) result {
		clk.Advance(200 * time.Millisecond) // within 7 calls/s
		return send(t, srv, http.MethodGet, "/msp_api/v1/customers"+q, "", "Authorization", "Bearer "+at)
	}
	r := list("?offset=0&limit=51")
	wantStatus(t, r, http.StatusBadRequest)
	if !strings.Contains(string(r.body), "LIMIT_REQUEST_EXCEEDED") {
		t.Fatalf("limit 51: %s", r.body)
	}
	var all []any
	for offset := 0; ; offset += 50 {
		r := list(fmt.Sprintf("?offset=%d&limit=50", offset))
		wantStatus(t, r, http.StatusOK)
		page, _ := r.obj["customers"].([]any)
		if total, _ := r.obj["total"].(float64); int(total) != arubaMSPCustomers {
			t.Fatalf("total %v", r.obj["total"])
		}
		if len(page) == 0 {
			break
		}
		all = append(all, page...)
	}
	if len(all) != arubaMSPCustomers {
		t.Fatalf("%d customers listed, want %d", len(all), arubaMSPCustomers)
	}
	first := all[0].(map[string]any)
	if first["customer_id"] == "" || first["customer_name"] == "" {
		t.Fatalf("customer %v", first)
	}
	before := a.today(a.CustomerID, a.Now()).used
	wantStatus(t, arubaAPI(t, srv, at, "TenantID", first["customer_id"].(string)), http.StatusOK)
	if used := a.today(a.CustomerID, a.Now()).used; used != before+1 {
		t.Errorf("a tenant call charged the MSP %d calls, want 1", used-before)
	}
	wantStatus(t, arubaAPI(t, srv, at, "TenantID", "0000"), http.StatusForbidden)
}
