package emulator

import (
	"net/http"
	"testing"
	"time"
)

func TestCatalystCenter(t *testing.T) {
	clk := newClock()
	s := NewCatalystCenter(clk.Now)
	srv := serve(t, s)
	auth := []string{"Authorization", basic("admin", "catalyst-password")}
	r := send(t, srv, http.MethodPost, "/dna/system/api/v1/auth/token", "", auth...)
	wantStatus(t, r, http.StatusOK)
	sameKeys(t, r.obj, vector(t, "catalyst-center-token-response"))
	tok := r.str("Token")
	if c := claims(t, tok); c["exp"] != float64(clk.Now().Add(time.Hour).Unix()) {
		t.Fatalf("claims %v", c)
	}
	// A generic OAuth2 client posts a client_credentials form: the body is ignored.
	r = form(t, srv, "/dna/system/api/v1/auth/token", "grant_type=client_credentials", auth...)
	wantStatus(t, r, http.StatusOK)

	r = send(t, srv, http.MethodPost, "/dna/system/api/v1/auth/token", "", "Authorization", basic("admin", "wrong"))
	wantStatus(t, r, http.StatusUnauthorized)
	wantStatus(t, send(t, srv, http.MethodPost, "/dna/system/api/v1/auth/token", ""), http.StatusUnauthorized)

	api := func(headers ...string) result {
		return send(t, srv, http.MethodGet, "/dna/intent/api/v1/network-device", "", headers...)
	}
	r = api("X-Auth-Token", tok)
	wantStatus(t, r, http.StatusOK)
	if r.obj["response"] == nil {
		t.Fatalf("devices body %s", r.body)
	}
	wantStatus(t, api("Authorization", "Bearer "+tok), http.StatusUnauthorized)
	clk.Advance(time.Hour)
	wantStatus(t, api("X-Auth-Token", tok), http.StatusUnauthorized)
	if s.TokenRequests() != 4 || s.Counts()["token"] != 4 || s.Counts()["api"] != 3 {
		t.Fatalf("counts %v", s.Counts())
	}
	r = send(t, srv, http.MethodPost, "/dna/system/api/v1/auth/token", "", auth...)
	s.RevokeAll()
	wantStatus(t, api("X-Auth-Token", r.str("Token")), http.StatusUnauthorized)
}
