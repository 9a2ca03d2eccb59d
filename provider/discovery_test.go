package provider

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/failure"
)

// An issuer that is down when a profile is first used is not a config
// error for good: the call fails as unreachable (exit 5), discovery is not
// retried before its backoff, and then it is, and works. A document that
// answers and is wrong stays refused.
func TestDiscoveryOutageIsTransient(t *testing.T) {
	var down atomic.Bool
	var metadata atomic.Int64
	mux := http.NewServeMux()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			panic(http.ErrAbortHandler) // the connection is cut, as by a dead server
		}
		mux.ServeHTTP(w, r)
	}))
	defer srv.Close()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		metadata.Add(1)
		json.NewEncoder(w).Encode(map[string]string{"issuer": srv.URL, "token_endpoint": srv.URL + "/token"})
	})
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"access_token":"at","token_type":"Bearer","expires_in":60}`))
	})
	now := fixedNow
	p, err := New(&config.Profile{Name: "idp", Provider: "oauth2", Issuer: srv.URL, ClientID: "id", ClientSecret: "sec"},
		Env{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	down.Store(true)
	if _, err := p.Obtain(ctx, nil); failure.KindOf(err) != failure.Unreachable || failure.KindOf(err).ExitCode() != 5 {
		t.Fatalf("issuer down: %v (kind %v), want unreachable (exit 5)", err, failure.KindOf(err))
	}
	down.Store(false)
	if _, err := p.Obtain(ctx, nil); failure.KindOf(err) != failure.Unreachable || metadata.Load() != 0 {
		t.Fatalf("within the backoff: %v, %d metadata requests; want the last failure and none sent", err, metadata.Load())
	}
	now = now.Add(discoveryBackoff)
	if tok, err := p.Obtain(ctx, nil); err != nil || tok.AccessToken != "at" {
		t.Fatalf("after the backoff: %+v, %v", tok, err)
	}

	// A document that answers with another issuer is refused, and stays so.
	wrong := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]string{"issuer": "https://elsewhere.example", "token_endpoint": "https://elsewhere.example/token"})
	}))
	defer wrong.Close()
	p, _ = New(&config.Profile{Name: "idp", Provider: "oauth2", Issuer: wrong.URL, ClientID: "id", ClientSecret: "sec"}, Env{})
	for range 2 {
		if _, err := p.Obtain(ctx, nil); failure.KindOf(err) != failure.Config {
			t.Fatalf("another issuer's document: %v, want a config error", err)
		}
	}
}
