package server

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	tokenbroker "github.com/tokenbroker/tokenbroker"
	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/emulator"
)

// serve keeps token files: written at start, rewritten when the token is
// renewed, in the format asked and with the mode asked, and emptied when
// the token is gone (revoked: only a login brings one back).
func TestSinksFollowTheToken(t *testing.T) {
	set, err := emulator.Start("127.0.0.1", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set.Close)
	set.Ruckus.TokenTTL = 2 * time.Second
	dir := t.TempDir()
	os.Chmod(dir, 0o700)
	file := func(n string) string { return filepath.Join(dir, n) }
	cfg := &config.Config{State: "sqlite:" + filepath.Join(t.TempDir(), "state.db"), Profiles: map[string]*config.Profile{
		"ruckus": {Provider: "ruckus-one", BaseURL: set.URLs["ruckus-one"], TenantID: set.Ruckus.TenantID,
			ClientID: config.Secret(set.Ruckus.ClientID), ClientSecret: config.Secret(set.Ruckus.ClientSecret),
			Sinks: []config.Sink{{File: file("ruckus.token"), Format: config.SinkToken, Mode: "0640"},
				{File: file("ruckus.netrc"), Format: config.SinkTemplate, Template: "machine {{.BaseURL}} password {{.AccessToken}}\n"}}},
		"aruba": {Provider: "aruba-central", BaseURL: set.URLs["aruba-central"], ClientID: config.Secret(set.Aruba.ClientID), ClientSecret: config.Secret(set.Aruba.ClientSecret),
			CustomerID: set.Aruba.CustomerID, Username: config.Secret(set.Aruba.Username), Password: config.Secret(set.Aruba.Password),
			Tenants: config.Tenants{List: []config.Tenant{{ID: set.Aruba.Customers[0].ID, Name: "acme", Sinks: []config.Sink{{File: file("acme.header"), Format: config.SinkHeader}}}}}},
	}}
	srv, err := serverFor(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := srv.Broker().Import(ctx, "aruba", set.Aruba.IssueOfflineToken(), tokenbroker.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { srv.Run(runCtx); close(done) }()
	t.Cleanup(func() { stop(); <-done })

	read := func(n string) string { b, _ := os.ReadFile(file(n)); return string(b) }
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: token %q, netrc %q, header %q", what, read("ruckus.token"), read("ruckus.netrc"), read("acme.header"))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitFor("written at start", func() bool { return read("ruckus.token") != "" && read("acme.header") != "" })
	first := read("ruckus.token")
	if fi, _ := os.Stat(file("ruckus.token")); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", fi.Mode().Perm())
	}
	if fi, _ := os.Stat(file("acme.header")); fi.Mode().Perm() != 0o600 {
		t.Errorf("default mode %v, want 0600", fi.Mode().Perm())
	}
	if n := read("ruckus.netrc"); !strings.Contains(n, "password "+strings.TrimSpace(first)) {
		t.Errorf("template sink: %q", n)
	}
	if h := read("acme.header"); !strings.Contains(h, "TenantID: "+set.Aruba.Customers[0].ID+"\n") || !strings.HasPrefix(h, "Authorization: Bearer ") {
		t.Errorf("a tenant's header sink: %q", h)
	}
	waitFor("rewritten on renewal", func() bool { r := read("ruckus.token"); return r != "" && r != first })

	if _, err := srv.Broker().Revoke(ctx, "aruba", nil); err != nil {
		t.Fatal(err)
	}
	waitFor("emptied once the token is gone", func() bool { _, err := os.Stat(file("acme.header")); return err == nil && read("acme.header") == "" })
}
