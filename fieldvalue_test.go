package tokenbroker

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/failure"
)

// A token endpoint that answers a token holding CR/LF (which, written on a
// vendor connection, injected fields and a whole second request) gets a
// protocol error that names the profile; the token is never stored, handed
// out or sent, and the last good one is kept.
func TestTokenWithControlCharactersIsRefused(t *testing.T) {
	var evil atomic.Bool
	var n atomic.Int64
	var apiCalls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/token" {
			apiCalls.Add(1)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if evil.Load() {
			fmt.Fprint(w, `{"access_token":"x\r\nX-Injected: 1\r\n\r\nGET /admin HTTP/1.1","token_type":"Bearer","expires_in":3600}`)
			return
		}
		fmt.Fprintf(w, `{"access_token":"good-%d","token_type":"Bearer","expires_in":3600}`, n.Add(1))
	}))
	defer srv.Close()
	cfg := &config.Config{State: "sqlite:" + filepath.Join(t.TempDir(), "state.db"), Profiles: map[string]*config.Profile{
		"p": {Name: "p", Provider: "oauth2", TokenURL: srv.URL + "/token", BaseURL: srv.URL, ClientID: "id", ClientSecret: "secret"},
	}}
	st, err := OpenStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b := New(cfg, Options{Store: st})
	defer b.Close()
	ctx := context.Background()

	evil.Store(true)
	_, err = b.Token(ctx, "p", TokenOptions{})
	if failure.KindOf(err) != failure.Protocol || !strings.Contains(err.Error(), `profile "p"`) {
		t.Fatalf("err %v (%v), want a protocol error naming the profile", err, failure.KindOf(err))
	}
	if stored, _ := b.Stored(ctx, "p"); stored != nil {
		t.Fatalf("the token was stored: %q", stored.AccessToken)
	}
	hc, _ := b.HTTPClient("p")
	if resp, err := hc.Get(srv.URL + "/x"); err == nil {
		resp.Body.Close()
		t.Fatal("a call went out without a valid token")
	}
	if apiCalls.Load() != 0 {
		t.Fatalf("the API saw %d calls", apiCalls.Load())
	}

	evil.Store(false)
	good, err := b.Token(ctx, "p", TokenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	evil.Store(true)
	if _, err := b.Token(ctx, "p", TokenOptions{Force: true}); err != nil {
		t.Logf("forced renewal: %v", err)
	}
	if stored, _ := b.Stored(ctx, "p"); stored == nil || stored.AccessToken != good.AccessToken {
		t.Errorf("the last good token was not kept: %+v", stored)
	}
	if h, err := b.Headers(ctx, "p"); err != nil || h.Get("Authorization") != "Bearer "+good.AccessToken {
		t.Errorf("headers %v %v, want the last good token", h, err)
	}
}

// A static key from env: carries the trailing newline a Kubernetes secret
// made from a file has: it is trimmed as a file: value is. A key with a
// CR/LF inside is a config error naming the profile, and nothing is sent.
func TestStaticKeysAreTrimmedAndChecked(t *testing.T) {
	var got atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		got.Store(r.Header.Get("Authorization") + "|" + string(body))
	}))
	defer srv.Close()
	t.Setenv("TB_TEST_KEY", "k8s-key\n")
	cfg := &config.Config{State: "sqlite:" + filepath.Join(t.TempDir(), "state.db"), Profiles: map[string]*config.Profile{
		"env":  {Name: "env", Provider: "static", BaseURL: srv.URL, APIKey: "env:TB_TEST_KEY"},
		"evil": {Name: "evil", Provider: "static", BaseURL: srv.URL, APIKey: "a\r\nX-Injected: 1"},
	}}
	b := New(cfg, Options{})
	defer b.Close()
	hc, _ := b.HTTPClient("env")
	resp, err := hc.Post(srv.URL+"/x", "text/plain", strings.NewReader("body"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got.Load() != "Bearer k8s-key|body" {
		t.Errorf("the vendor saw %q, want the trimmed key and the whole body", got.Load())
	}
	got.Store("")
	hc, _ = b.HTTPClient("evil")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/x", nil)
	if resp, err := hc.Do(req); err == nil {
		resp.Body.Close()
		t.Error("a key with CR/LF was sent")
	} else if failure.KindOf(err) != failure.Config || !strings.Contains(err.Error(), `profile "evil"`) {
		t.Errorf("err %v, want a config error naming the profile", err)
	}
	if got.Load() != "" {
		t.Errorf("the vendor saw %q", got.Load())
	}
}
