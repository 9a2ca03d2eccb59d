package emulator

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

const ruckusForm = "grant_type=client_credentials&client_id=ruckus-client-id&client_secret=ruckus-client-secret"

func newRuckusTest(t *testing.T) (*Ruckus, *httptest.Server, *fakeClock) {
	t.Helper()
	clk := newClock()
	s := NewRuckus(clk.Now)
	return s, serve(t, s), clk
}

func TestRuckusToken(t *testing.T) {
	s, srv, clk := newRuckusTest(t)
	r := form(t, srv, "/oauth2/token/0a1b2c3d4e5f", ruckusForm)
	wantStatus(t, r, http.StatusOK)
	sameKeys(t, r.obj, vector(t, "ruckus-one-token-response"))
	if r.str("token_type") != "Bearer" || r.obj["expires_in"] != float64(7199) {
		t.Fatalf("token body %s", r.body)
	}
	at := r.str("access_token")
	c := claims(t, at)
	if c["tenant_id"] != "0a1b2c3d4e5f" || c["exp"] != float64(clk.Now().Add(7199*time.Second).Unix()) || c["iat"] == nil {
		t.Fatalf("claims %v", c)
	}
	r2 := form(t, srv, "/oauth2/token/0a1b2c3d4e5f", ruckusForm)
	if r2.str("access_token") == at {
		t.Fatal("two token requests returned the same token")
	}

	api := func(headers ...string) result {
		return send(t, srv, http.MethodGet, "/venues", "", append([]string{"Authorization", "Bearer " + at}, headers...)...)
	}
	wantStatus(t, api(), http.StatusOK)
	r = api("x-rks-tenantid", "delegated-0001")
	wantStatus(t, r, http.StatusOK)
	if string(r.body[:1]) != "[" {
		t.Fatalf("venues body %s", r.body)
	}
	wantStatus(t, api("x-rks-tenantid", "someone-else"), http.StatusForbidden)
	clk.Advance(7199 * time.Second)
	r = api()
	wantStatus(t, r, http.StatusUnauthorized)
	if r.str("error") != "invalid_token" {
		t.Fatalf("expired body %s", r.body)
	}
	if s.TokenRequests() != 2 || s.Counts()["client_credentials"] != 2 || s.Counts()["api"] != 4 {
		t.Fatalf("counts %v", s.Counts())
	}
}

func TestRuckusTokenErrors(t *testing.T) {
	s, srv, _ := newRuckusTest(t)
	cases := []struct {
		name    string
		path    string
		body    string
		headers []string
		want    int
		err     string
	}{
		// The service takes HTTP Basic too (requests-oauthlib's and authlib's default).
		{"basic auth", "/oauth2/token/0a1b2c3d4e5f", "grant_type=client_credentials",
			[]string{"Content-Type", formType, "Authorization", basic("ruckus-client-id", "ruckus-client-secret")}, 200, ""},
		{"basic auth with body too", "/oauth2/token/0a1b2c3d4e5f", ruckusForm,
			[]string{"Content-Type", formType, "Authorization", basic("ruckus-client-id", "ruckus-client-secret")}, 200, ""},
		{"basic auth, wrong secret", "/oauth2/token/0a1b2c3d4e5f", "grant_type=client_credentials",
			[]string{"Content-Type", formType, "Authorization", basic("ruckus-client-id", "nope")}, 401, "invalid_client"},
		{"bearer header", "/oauth2/token/0a1b2c3d4e5f", ruckusForm,
			[]string{"Content-Type", formType, "Authorization", "Bearer x"}, 401, "invalid_client"},
		{"unknown tenant", "/oauth2/token/ffffffffffff", ruckusForm, []string{"Content-Type", formType}, 404, "invalid_request"},
		{"json body", "/oauth2/token/0a1b2c3d4e5f", `{"grant_type":"client_credentials"}`, []string{"Content-Type", "application/json"}, 415, "invalid_request"},
		{"form without content type", "/oauth2/token/0a1b2c3d4e5f", ruckusForm, nil, 415, "invalid_request"},
		{"query string", "/oauth2/token/0a1b2c3d4e5f?" + ruckusForm, "", nil, 400, "invalid_request"},
		{"wrong secret", "/oauth2/token/0a1b2c3d4e5f", "grant_type=client_credentials&client_id=ruckus-client-id&client_secret=x",
			[]string{"Content-Type", formType}, 401, "invalid_client"},
		{"missing secret", "/oauth2/token/0a1b2c3d4e5f", "grant_type=client_credentials&client_id=ruckus-client-id",
			[]string{"Content-Type", formType}, 400, "invalid_request"},
		{"password grant", "/oauth2/token/0a1b2c3d4e5f", "grant_type=password&username=a&password=b",
			[]string{"Content-Type", formType}, 400, "unsupported_grant_type"},
	}
	for _, c := range cases {
		r := send(t, srv, http.MethodPost, c.path, c.body, c.headers...)
		if r.status != c.want || r.str("error") != c.err {
			t.Errorf("%s: %d %s, want %d %s", c.name, r.status, r.body, c.want, c.err)
		}
	}
	if s.TokenRequests() != int64(len(cases)) {
		t.Fatalf("TokenRequests = %d", s.TokenRequests())
	}
	wantStatus(t, send(t, srv, http.MethodPost, "/oauth2/token", ruckusForm, "Content-Type", formType), http.StatusNotFound)
	wantStatus(t, send(t, srv, http.MethodGet, "/venues", ""), http.StatusUnauthorized)
}

func TestRuckusRevokeAllAndTTL(t *testing.T) {
	s, srv, _ := newRuckusTest(t)
	s.TokenTTL = time.Minute
	r := form(t, srv, "/oauth2/token/0a1b2c3d4e5f", ruckusForm)
	if r.obj["expires_in"] != float64(60) {
		t.Fatalf("expires_in %v", r.obj["expires_in"])
	}
	at := r.str("access_token")
	if !s.ValidAccessToken(at) {
		t.Fatal("fresh token invalid")
	}
	s.RevokeAll()
	wantStatus(t, send(t, srv, http.MethodGet, "/venues", "", "Authorization", "Bearer "+at), http.StatusUnauthorized)
}
