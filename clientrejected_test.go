package tokenbroker

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/emulator"
	"github.com/tokenbroker/tokenbroker/failure"
)

// A wrong Aruba client secret on a refresh is the client's fault: the
// error names client_id and client_secret, not a re-login, which would not
// help (Aruba answers 401 "Auth failure" with no OAuth error code).
func TestWrongArubaSecretNamesTheClient(t *testing.T) {
	a := emulator.NewAruba(nil)
	hs := httptest.NewServer(a)
	t.Cleanup(hs.Close)
	cfg := &config.Config{State: "sqlite:" + filepath.Join(t.TempDir(), "state.db"), Profiles: map[string]*config.Profile{
		"aruba": {Name: "aruba", Provider: "aruba-central", BaseURL: hs.URL, ClientID: config.Secret(a.ClientID), ClientSecret: "not-the-secret"},
	}}
	st, err := OpenStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b := New(cfg, Options{Store: st})
	t.Cleanup(func() { b.Close() })
	ctx := context.Background()
	if _, err := b.Import(ctx, "aruba", a.IssueOfflineToken()); err != nil {
		t.Fatal(err)
	}
	_, err = b.Token(ctx, "aruba", TokenOptions{Force: true})
	if failure.KindOf(err) != failure.Rejected || !strings.Contains(err.Error(), "client_secret") || strings.Contains(err.Error(), "re-login") {
		t.Fatalf("wrong client secret: %v, want a rejection naming client_secret, not a re-login", err)
	}
}
