package emulator

import (
	"net/http"
	"sync"
)

// StaticKeyAPI emulates an API authenticated by a fixed key: Juniper Mist style
// ("Authorization: Token <key>") or Meraki style ("Authorization: Bearer <key>").
// GET /api/v1/self answers 200 with a small JSON identity for exactly
// "Authorization: <Scheme> <Key>" (scheme case-insensitive) and 401 otherwise.
//
// A literal StaticKeyAPI{Key: ..., Scheme: ...} works as well as NewStaticKeyAPI. It has no
// token endpoint, so TokenRequests stays 0; RevokeAll revokes the current key (the vendor-side
// "delete API token"), so a test must set a new Key to get access back.
type StaticKeyAPI struct {
	Key    string
	Scheme string

	base
	once    sync.Once
	mux     *http.ServeMux
	revoked map[string]bool
}

// NewStaticKeyAPI returns a static-key API that accepts "Authorization: <scheme> <key>".
func NewStaticKeyAPI(scheme, key string) *StaticKeyAPI {
	return &StaticKeyAPI{Key: key, Scheme: scheme}
}

// ServeHTTP implements http.Handler.
func (s *StaticKeyAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.once.Do(func() {
		s.mux = newRouter()
		route(s.mux, "/api/v1/self", methods{http.MethodGet: s.self})
	})
	s.serve(w, r, s.mux)
}

// RevokeAll revokes the current key.
func (s *StaticKeyAPI) RevokeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.revoked == nil {
		s.revoked = make(map[string]bool)
	}
	s.revoked[s.Key] = true
}

func (s *StaticKeyAPI) self(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.count("api")
	key := schemeToken(r.Header.Get("Authorization"), s.Scheme)
	if key == "" || key != s.Key || s.revoked[key] {
		w.Header().Set("WWW-Authenticate", s.Scheme)
		writeJSON(w, http.StatusUnauthorized, map[string]any{
			"error":   "unauthorized",
			"message": "expected Authorization: " + s.Scheme + " <api key>",
		})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"name":       "Emulator Admin",
		"email":      "admin@example.com",
		"auth":       s.Scheme,
		"privileges": []any{map[string]any{"scope": "org", "role": "admin", "org_id": "org-0001"}},
	})
}
