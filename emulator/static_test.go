package emulator

import (
	"net/http"
	"testing"
)

func TestStaticKeyAPI(t *testing.T) {
	mist := NewStaticKeyAPI("Token", "mist-key")
	meraki := &StaticKeyAPI{Key: "meraki-key", Scheme: "Bearer"} // a literal works too
	ms, mk := serve(t, mist), serve(t, meraki)
	r := send(t, ms, http.MethodGet, "/api/v1/self", "", "Authorization", "Token mist-key")
	wantStatus(t, r, http.StatusOK)
	if r.str("name") == "" {
		t.Fatalf("self body %s", r.body)
	}
	wantStatus(t, send(t, ms, http.MethodGet, "/api/v1/self", "", "Authorization", "token mist-key"), http.StatusOK)
	wantStatus(t, send(t, ms, http.MethodGet, "/api/v1/self", "", "Authorization", "Bearer mist-key"), http.StatusUnauthorized)
	wantStatus(t, send(t, ms, http.MethodGet, "/api/v1/self", "", "Authorization", "Token wrong"), http.StatusUnauthorized)
	wantStatus(t, send(t, ms, http.MethodGet, "/api/v1/self", ""), http.StatusUnauthorized)
	wantStatus(t, send(t, ms, http.MethodPost, "/api/v1/self", "", "Authorization", "Token mist-key"), http.StatusMethodNotAllowed)
	wantStatus(t, send(t, ms, http.MethodGet, "/api/v1/other", "", "Authorization", "Token mist-key"), http.StatusNotFound)

	wantStatus(t, send(t, mk, http.MethodGet, "/api/v1/self", "", "Authorization", "Bearer meraki-key"), http.StatusOK)
	wantStatus(t, send(t, mk, http.MethodGet, "/api/v1/self", "", "Authorization", "Token meraki-key"), http.StatusUnauthorized)

	mist.RevokeAll()
	wantStatus(t, send(t, ms, http.MethodGet, "/api/v1/self", "", "Authorization", "Token mist-key"), http.StatusUnauthorized)
	mist.mu.Lock()
	mist.Key = "mist-key-2"
	mist.mu.Unlock()
	wantStatus(t, send(t, ms, http.MethodGet, "/api/v1/self", "", "Authorization", "Token mist-key-2"), http.StatusOK)
	// 405 and 404 never reach the handler, so seven calls count.
	if mist.TokenRequests() != 0 || mist.Counts()["api"] != 7 {
		t.Fatalf("counts %v", mist.Counts())
	}
}
