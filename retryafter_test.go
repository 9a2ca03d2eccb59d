package tokenbroker

import (
	"context"
	"errors"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/emulator"
	"github.com/tokenbroker/tokenbroker/failure"
)

// RingCentral answers a token request over its auth limit with 429 and
// Retry-After: 60, and restarts the penalty on every request made during
// it. Once one process has seen that, no process sharing the state sends
// a token request until the minute is over: each says how long to wait
// (exit 4), and then the refresh goes through.
func TestRetryAfterIsKeptForEveryProcess(t *testing.T) {
	clk := &clock{now: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	rc := emulator.NewRingCentral(clk.Now, "production")
	rc.AuthLimitPerMinute = 1
	rc.TokenTTL = 30 * time.Second
	hs := httptest.NewServer(rc)
	t.Cleanup(hs.Close)
	cfg := &config.Config{State: "sqlite:" + filepath.Join(t.TempDir(), "state.db"), Profiles: map[string]*config.Profile{
		"rc": {Name: "rc", Provider: "ringcentral", BaseURL: hs.URL, ClientID: config.Secret(rc.ClientID),
			ClientSecret: config.Secret(rc.ClientSecret), JWT: config.Secret(rc.JWT), Environment: rc.Environment},
	}}
	process := func() *Broker { // a CLI run: its own broker and store handle
		st, err := OpenStore(cfg)
		if err != nil {
			t.Fatal(err)
		}
		b := New(cfg, Options{Store: st, Now: clk.Now, Warn: func(string) {}})
		t.Cleanup(func() { b.Close(); st.Close() })
		return b
	}
	ctx := context.Background()
	if _, err := process().Token(ctx, "rc", TokenOptions{}); err != nil {
		t.Fatal(err)
	}
	clk.Add(31 * time.Second) // expired, and still within the auth minute
	_, err := process().Token(ctx, "rc", TokenOptions{})
	var fe *failure.Error
	if !errors.As(err, &fe) || fe.Kind != failure.RateLimited || fe.RetryAfter != time.Minute {
		t.Fatalf("the refresh over the limit: %v, want 429 with Retry-After 60s", err)
	}
	sent := rc.TokenRequests()
	for range 4 {
		clk.Add(10 * time.Second)
		_, err := process().Token(ctx, "rc", TokenOptions{})
		if !errors.As(err, &fe) || fe.Kind != failure.RateLimited || fe.Kind.ExitCode() != 4 {
			t.Fatalf("during the penalty: %v, want rate limited (exit 4)", err)
		}
		if want := time.Minute - clk.Now().Sub(time.Date(2026, 12, 1, 9, 0, 31, 0, time.UTC)); fe.RetryAfter != want {
			t.Errorf("asked to wait %s, want %s", fe.RetryAfter, want)
		}
	}
	if got := rc.TokenRequests(); got != sent {
		t.Fatalf("%d token requests sent during the penalty, want none", got-sent)
	}
	clk.Add(21 * time.Second) // past the hold
	tok, err := process().Token(ctx, "rc", TokenOptions{})
	if err != nil || !rc.ValidAccessToken(tok.AccessToken) {
		t.Fatalf("after the penalty: %v", err)
	}
}
