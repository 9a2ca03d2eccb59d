package provider

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/failure"
)

// deviceServer answers RFC 8628's device authorization and polls from a
// script: each poll takes the next answer.
type deviceServer struct {
	mu      sync.Mutex
	answers []string // error codes, or "" for the token
	polls   int
	// secret, when set, makes it a confidential client's server: every
	// call must carry HTTP Basic with it, as Hydra requires.
	secret string
	forms  map[string][]string // path -> the forms it received, encoded
}

func (s *deviceServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	w.Header().Set("Content-Type", "application/json")
	s.mu.Lock()
	if s.forms == nil {
		s.forms = map[string][]string{}
	}
	s.forms[r.URL.Path] = append(s.forms[r.URL.Path], r.PostForm.Encode())
	s.mu.Unlock()
	if s.secret != "" {
		if id, sec, ok := r.BasicAuth(); !ok || id != "cli" || sec != s.secret {
			w.WriteHeader(401)
			json.NewEncoder(w).Encode(map[string]string{"error": "invalid_client"})
			return
		}
	}
	switch r.URL.Path {
	case "/device":
		json.NewEncoder(w).Encode(map[string]any{"device_code": "dev-123", "user_code": "WDJB-MJHT",
			"verification_uri": "https://idp.example/device", "expires_in": 60, "interval": 1})
	case "/token":
		if r.Form.Get("grant_type") != deviceCodeGrant || r.Form.Get("device_code") != "dev-123" {
			w.WriteHeader(400)
			json.NewEncoder(w).Encode(map[string]string{"error": "invalid_request"})
			return
		}
		s.mu.Lock()
		a := "expired_token"
		if s.polls < len(s.answers) {
			a = s.answers[s.polls]
		}
		s.polls++
		s.mu.Unlock()
		if a != "" {
			w.WriteHeader(400)
			json.NewEncoder(w).Encode(map[string]string{"error": a})
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"access_token": "at-device", "refresh_token": "rt-device", "expires_in": 3600, "token_type": "Bearer"})
	}
}

func TestDeviceCodeGrant(t *testing.T) {
	cases := []struct {
		name    string
		answers []string
		kind    failure.Kind
		msg     string
		sleeps  []time.Duration
	}{
		{"approved after waiting", []string{"authorization_pending", "slow_down", "authorization_pending", ""}, -1, "",
			[]time.Duration{time.Second, time.Second, 6 * time.Second, 6 * time.Second}},
		{"denied", []string{"authorization_pending", "access_denied"}, failure.Rejected, "access_denied", nil},
		{"expired", []string{"authorization_pending", "expired_token"}, failure.Rejected, "expired", nil},
	}
	for _, c := range cases {
		srv := httptest.NewServer(&deviceServer{answers: c.answers})
		now := fixedNow
		var warned []string
		var slept []time.Duration
		p, err := New(&config.Profile{Name: "dev", Provider: "oauth2", Grant: "device_code", TokenURL: srv.URL + "/token",
			DeviceURL: srv.URL + "/device", ClientID: "cli"}, Env{
			Now:   func() time.Time { return now },
			Sleep: func(_ context.Context, d time.Duration) error { slept = append(slept, d); now = now.Add(d); return nil },
			Warn:  func(s string) { warned = append(warned, s) },
		})
		if err != nil {
			t.Fatal(err)
		}
		tok, err := p.(Loginer).Login(context.Background(), nil)
		switch {
		case c.kind < 0 && (err != nil || tok.AccessToken != "at-device" || tok.RefreshToken != "rt-device"):
			t.Errorf("%s: %+v %v", c.name, tok, err)
		case c.kind >= 0 && (failure.KindOf(err) != c.kind || !strings.Contains(err.Error(), c.msg)):
			t.Errorf("%s: %v, want %v containing %q", c.name, err, c.kind, c.msg)
		}
		if c.sleeps != nil && !equalDurations(slept, c.sleeps) {
			t.Errorf("%s: waited %v, want %v (the interval, +5 s after slow_down)", c.name, slept, c.sleeps)
		}
		if len(warned) == 0 || !strings.Contains(warned[0], "WDJB-MJHT") || !strings.Contains(warned[0], "https://idp.example/device") {
			t.Errorf("%s: the person was told %q", c.name, warned)
		}
		srv.Close()
	}
}

func TestDeviceCodeExpiresOnTheClock(t *testing.T) {
	answers := make([]string, 100)
	for i := range answers {
		answers[i] = "authorization_pending"
	}
	srv := httptest.NewServer(&deviceServer{answers: answers})
	defer srv.Close()
	now := fixedNow
	p, _ := New(&config.Profile{Name: "dev", Provider: "oauth2", Grant: "device_code", TokenURL: srv.URL + "/token",
		DeviceURL: srv.URL + "/device", ClientID: "cli"}, Env{
		Now:   func() time.Time { return now },
		Sleep: func(_ context.Context, d time.Duration) error { now = now.Add(d); return nil },
	})
	// The 60 s code runs out on the injected clock after 60 polls of 1 s.
	if _, err := p.(Loginer).Login(context.Background(), nil); failure.KindOf(err) != failure.Rejected || !strings.Contains(err.Error(), "expired") {
		t.Errorf("err %v", err)
	}
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// A confidential device client authenticates on the device authorization
// request too (RFC 8628 3.1; Hydra answers 401 invalid_client otherwise),
// and the profile's scope and audience go with it.
func TestDeviceCodeConfidentialClient(t *testing.T) {
	ds := &deviceServer{answers: []string{""}, secret: "device-secret"}
	srv := httptest.NewServer(ds)
	defer srv.Close()
	p, err := New(&config.Profile{Name: "dev", Provider: "oauth2", Grant: "device_code", TokenURL: srv.URL + "/token",
		DeviceURL: srv.URL + "/device", ClientID: "cli", ClientSecret: "device-secret", AuthStyle: "basic",
		Scopes: []string{"offline", "read"}, Audience: "https://api.example"}, Env{
		Sleep: func(context.Context, time.Duration) error { return nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := p.(Loginer).Login(context.Background(), nil)
	if err != nil || tok.AccessToken != "at-device" {
		t.Fatalf("login: %+v, %v", tok, err)
	}
	if got := ds.forms["/device"]; len(got) != 1 || !strings.Contains(got[0], "audience=https%3A%2F%2Fapi.example") || !strings.Contains(got[0], "scope=offline+read") {
		t.Errorf("device authorization request: %q, want the scope and the audience", got)
	}
}
