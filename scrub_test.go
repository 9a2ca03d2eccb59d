package tokenbroker

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tokenbroker/tokenbroker/config"
)

// A vendor whose error body echoes the request (client_secret and all)
// does not put the secret into the error, the log, `status` or the audit.
func TestVendorTextIsScrubbedOfTheProfilesSecrets(t *testing.T) {
	const secret = "cs-7f3a9b2e41d0"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		json.NewEncoder(w).Encode(map[string]string{"error": "invalid_client",
			"error_description": fmt.Sprintf("no client with client_secret=%s (you sent %v)", r.Form.Get("client_secret"), r.Form)})
	}))
	defer srv.Close()
	cfg := &config.Config{State: "sqlite:" + filepath.Join(t.TempDir(), "state.db"), Profiles: map[string]*config.Profile{
		"p": {Name: "p", Provider: "oauth2", TokenURL: srv.URL + "/token", ClientID: "id", ClientSecret: secret, AuthStyle: "body"},
	}}
	st, err := OpenStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var logged []string
	b := New(cfg, Options{Store: st, Warn: func(s string) { mu.Lock(); logged = append(logged, s); mu.Unlock() }})
	defer b.Close()
	ctx := context.Background()
	_, err = b.Token(ctx, "p", TokenOptions{})
	if err == nil {
		t.Fatal("want the vendor's refusal")
	}
	if !strings.Contains(err.Error(), "invalid_client") {
		t.Errorf("the vendor's words were lost: %v", err)
	}
	seen := []string{err.Error()}
	// (status shows the last failed event's error, seen below.)
	events, _ := b.Events(ctx, "p", 10)
	for _, e := range events {
		seen = append(seen, e.Error)
	}
	mu.Lock()
	seen = append(seen, logged...)
	mu.Unlock()
	for _, s := range seen {
		if strings.Contains(s, secret) {
			t.Errorf("the secret reached %q", s)
		}
	}
	if len(events) == 0 || !strings.Contains(events[0].Error, "[redacted]") {
		t.Errorf("audit %+v, want the scrubbed vendor text", events)
	}
}
