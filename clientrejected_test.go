package tokenbroker

import (
	"context"
	"net/http/httptest"
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
	b := brokerOn(t, map[string]*config.Profile{
		"aruba": {Name: "aruba", Provider: "aruba-central", BaseURL: hs.URL, ClientID: config.Secret(a.ClientID), ClientSecret: "not-the-secret"},
	}, Options{})
	ctx := context.Background()
	if _, err := b.Import(ctx, "aruba", a.IssueOfflineToken(), ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err := b.Token(ctx, "aruba", TokenOptions{Force: true})
	if failure.KindOf(err) != failure.Rejected || !strings.Contains(err.Error(), "client_secret") || strings.Contains(err.Error(), "re-login") {
		t.Fatalf("wrong client secret: %v, want a rejection naming client_secret, not a re-login", err)
	}
}

// An Aruba token file taken into another vendor's profile is refused,
// naming both (exit 2); --force takes it in.
func TestImportRefusesAnotherVendorsFile(t *testing.T) {
	a := emulator.NewAruba(nil)
	b := brokerOn(t, map[string]*config.Profile{
		"rc": {Name: "rc", Provider: "oauth2", TokenURL: "https://idp.example/token", ClientID: "id", ClientSecret: "sec", Grant: "refresh_token"},
	}, Options{})
	ctx := context.Background()
	_, err := b.Import(ctx, "rc", a.IssueOfflineToken(), ImportOptions{})
	if failure.KindOf(err) != failure.Config || failure.KindOf(err).ExitCode() != 2 || !strings.Contains(err.Error(), "Aruba Central token") || !strings.Contains(err.Error(), "OAuth2") {
		t.Fatalf("an Aruba file into an oauth2 profile: %v", err)
	}
	if stored, _ := b.Stored(ctx, "rc"); stored != nil {
		t.Fatal("the refused file was stored")
	}
	if _, err := b.Import(ctx, "rc", a.IssueOfflineToken(), ImportOptions{Force: true}); err != nil {
		t.Fatalf("--force: %v", err)
	}
}

// An imported Aruba token (an SSO user's: no username or password) is not
// revoked by asking for a login that cannot work: it is forgotten locally,
// with a warning that says where to delete it.
func TestRevokeImportedArubaTokenForgetsItWithAReason(t *testing.T) {
	a := emulator.NewAruba(nil)
	hs := httptest.NewServer(a)
	t.Cleanup(hs.Close)
	var warned []string
	b := brokerOn(t, map[string]*config.Profile{
		"aruba": {Name: "aruba", Provider: "aruba-central", BaseURL: hs.URL, ClientID: config.Secret(a.ClientID),
			ClientSecret: config.Secret(a.ClientSecret), CustomerID: a.CustomerID},
	}, Options{Warn: func(s string) { warned = append(warned, s) }})
	ctx := context.Background()
	if _, err := b.Import(ctx, "aruba", a.IssueOfflineToken(), ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	revoked, err := b.Revoke(ctx, "aruba", nil)
	if err != nil || revoked {
		t.Fatalf("revoke of an imported token: revoked %v, %v; want forgotten locally", revoked, err)
	}
	if stored, _ := b.Stored(ctx, "aruba"); stored != nil {
		t.Error("the token was kept")
	}
	if len(warned) == 0 || !strings.Contains(strings.Join(warned, "\n"), "My Apps & Tokens") {
		t.Errorf("warnings %q, want where to delete it", warned)
	}
}
