package tokenbroker

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/emulator"
)

// Aruba allows its login steps once a second. Brokers that share Accounts
// (serve's before and after a reload) share the pacing of those steps, so
// logins back to back never draw a 429: the emulator sees each step once
// per login, not again after a refused first try.
func TestBrokersOfOneAccountsShareArubaStepPacing(t *testing.T) {
	a := emulator.NewAruba(nil)
	hs := httptest.NewServer(a)
	t.Cleanup(hs.Close)
	cfg := &config.Config{State: "sqlite:" + filepath.Join(t.TempDir(), "state.db"), Profiles: map[string]*config.Profile{
		"aruba": {Name: "aruba", Provider: "aruba-central", BaseURL: hs.URL, ClientID: config.Secret(a.ClientID),
			ClientSecret: config.Secret(a.ClientSecret), CustomerID: a.CustomerID,
			Username: config.Secret(a.Username), Password: config.Secret(a.Password)},
	}}
	accounts := NewAccounts()
	for i := range 2 {
		st, err := OpenStore(cfg)
		if err != nil {
			t.Fatal(err)
		}
		b := New(cfg, Options{Store: st, Accounts: accounts})
		if _, err := b.Login(context.Background(), "aruba", nil); err != nil {
			t.Fatalf("login %d: %v", i+1, err)
		}
		b.Close()
		st.Close()
	}
	if got := a.Counts()["login"]; got != 2 {
		t.Errorf("the login step was called %d times for 2 logins: a 429 was drawn and retried", got)
	}
}
