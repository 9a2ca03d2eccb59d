package emulator

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

var ws1Auth = []string{"Authorization", basic("ws1-client-id", "ws1-client-secret")}

func newWS1Test(t *testing.T) (*WorkspaceOne, *httptest.Server, *fakeClock) {
	t.Helper()
	clk := newClock()
	s := NewWorkspaceOne(clk.Now)
	return s, serve(t, s), clk
}

func TestWorkspaceOneClientCredentials(t *testing.T) {
	s, srv, clk := newWS1Test(t)
	r := form(t, srv, "/SAAS/auth/oauthtoken", "grant_type=client_credentials", ws1Auth...)
	wantStatus(t, r, http.StatusOK)
	want := vector(t, "workspace-one-token-response")
	want["refresh_token"] = "" // issued when the client is set to issue one (the default here)
	sameKeys(t, r.obj, want)
	if r.str("token_type") != "Bearer" || r.obj["expires_in"] != float64(10800) || r.str("scope") != "admin" {
		t.Fatalf("token body %s", r.body)
	}
	at := r.str("access_token")
	c := claims(t, at)
	if c["sub"] != "ws1-client-id" || c["exp"] != float64(clk.Now().Add(3*time.Hour).Unix()) {
		t.Fatalf("claims %v", c)
	}
	// grant_type in the query string with an empty body works too.
	r = send(t, srv, http.MethodPost, "/SAAS/auth/oauthtoken?grant_type=client_credentials", "", ws1Auth...)
	wantStatus(t, r, http.StatusOK)

	s.IssueRefreshTokens = false
	r = form(t, srv, "/SAAS/auth/oauthtoken", "grant_type=client_credentials", ws1Auth...)
	wantStatus(t, r, http.StatusOK)
	sameKeys(t, r.obj, vector(t, "workspace-one-token-response"))

	api := send(t, srv, http.MethodGet, "/SAAS/jersey/manager/api/scim/Users", "", "Authorization", "Bearer "+at)
	wantStatus(t, api, http.StatusOK)
	if api.obj["totalResults"] != float64(2) || api.obj["Resources"] == nil {
		t.Fatalf("SCIM body %s", api.body)
	}
	clk.Advance(3 * time.Hour)
	api = send(t, srv, http.MethodGet, "/SAAS/jersey/manager/api/scim/Users", "", "Authorization", "Bearer "+at)
	wantStatus(t, api, http.StatusUnauthorized)
	if s.TokenRequests() != 3 || s.Counts()["client_credentials"] != 3 || s.Counts()["api"] != 2 {
		t.Fatalf("counts %v", s.Counts())
	}
}

func TestWorkspaceOneRefresh(t *testing.T) {
	s, srv, _ := newWS1Test(t)
	r := form(t, srv, "/SAAS/auth/oauthtoken", "grant_type=client_credentials", ws1Auth...)
	at, rt := r.str("access_token"), r.str("refresh_token")
	r = form(t, srv, "/SAAS/auth/oauthtoken", "grant_type=refresh_token&refresh_token="+rt, ws1Auth...)
	wantStatus(t, r, http.StatusOK)
	if r.str("refresh_token") != rt || r.str("access_token") == at {
		t.Fatalf("refresh: want a new access token and the same refresh token: %s", r.body)
	}
	if !s.ValidAccessToken(at) || !s.ValidAccessToken(r.str("access_token")) {
		t.Fatal("access tokens live until they expire")
	}
	r = form(t, srv, "/SAAS/auth/oauthtoken", "grant_type=refresh_token&refresh_token=nope", ws1Auth...)
	if r.status != http.StatusBadRequest || r.str("error") != "invalid_grant" {
		t.Fatalf("bad refresh token: %s", r.body)
	}
	r = send(t, srv, http.MethodPost, "/SAAS/auth/oauthtoken?grant_type=refresh_token&refresh_token="+rt, "", ws1Auth...)
	if r.status != http.StatusBadRequest || r.str("error") != "invalid_request" {
		t.Fatalf("refresh token in the query: %s", r.body)
	}
	s.RevokeAll()
	r = form(t, srv, "/SAAS/auth/oauthtoken", "grant_type=refresh_token&refresh_token="+rt, ws1Auth...)
	wantStatus(t, r, http.StatusBadRequest)
	if s.Counts()["refresh_token"] != 4 {
		t.Fatalf("counts %v", s.Counts())
	}
}

func TestWorkspaceOneErrors(t *testing.T) {
	_, srv, _ := newWS1Test(t)
	cases := []struct {
		name    string
		body    string
		headers []string
		want    int
		err     string
	}{
		{"no basic", "grant_type=client_credentials&client_id=ws1-client-id&client_secret=ws1-client-secret",
			[]string{"Content-Type", formType}, 401, "invalid_client"},
		{"wrong secret", "grant_type=client_credentials", []string{"Content-Type", formType, "Authorization", basic("ws1-client-id", "x")}, 401, "invalid_client"},
		{"json", `{"grant_type":"client_credentials"}`, append([]string{"Content-Type", "application/json"}, ws1Auth...), 415, "invalid_request"},
		{"no grant", "scope=admin", append([]string{"Content-Type", formType}, ws1Auth...), 400, "invalid_request"},
		{"password grant", "grant_type=password", append([]string{"Content-Type", formType}, ws1Auth...), 400, "unsupported_grant_type"},
		{"no refresh token", "grant_type=refresh_token", append([]string{"Content-Type", formType}, ws1Auth...), 400, "invalid_request"},
	}
	for _, c := range cases {
		r := send(t, srv, http.MethodPost, "/SAAS/auth/oauthtoken", c.body, c.headers...)
		if r.status != c.want || r.str("error") != c.err {
			t.Errorf("%s: %d %s, want %d %s", c.name, r.status, r.body, c.want, c.err)
		}
	}
	wantStatus(t, send(t, srv, http.MethodGet, "/SAAS/auth/oauthtoken", "", ws1Auth...), http.StatusMethodNotAllowed)
}
