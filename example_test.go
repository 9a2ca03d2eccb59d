package tokenbroker_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"

	"github.com/tokenbroker/tokenbroker"
	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/emulator"
	"github.com/tokenbroker/tokenbroker/store"
	_ "github.com/tokenbroker/tokenbroker/store/sqlite" // the state's driver
)

// exampleBroker is a broker for the RUCKUS One emulator, as a program would
// build one from its config file with config.Load.
func exampleBroker() (*tokenbroker.Broker, func()) {
	set, err := emulator.Start("127.0.0.1", nil)
	if err != nil {
		log.Fatal(err)
	}
	dir, _ := os.MkdirTemp("", "tokenbroker-example-")
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
state: sqlite:%s
profiles:
  ruckus-eu:
    provider: ruckus-one
    base_url: %s
    tenant_id: %s
    client_id: %s
    client_secret: %s
`, filepath.Join(dir, "state.db"), set.URLs["ruckus-one"], set.Ruckus.TenantID, set.Ruckus.ClientID, set.Ruckus.ClientSecret)))
	if err != nil {
		log.Fatal(err)
	}
	b := tokenbroker.New(cfg, tokenbroker.Options{OpenStore: func() (store.Store, error) { return tokenbroker.OpenStore(cfg) }})
	return b, func() { b.Close(); set.Close(); os.RemoveAll(dir) }
}

// HTTPClient calls the vendor's API with the token attached, within the
// vendor's rate limit, renewing and retrying once on a 401.
func ExampleBroker_HTTPClient() {
	b, done := exampleBroker()
	defer done()
	hc, err := b.HTTPClient("ruckus-eu")
	if err != nil {
		log.Fatal(err)
	}
	p, _ := b.Provider("ruckus-eu")
	resp, err := hc.Get(p.Describe().APIBase + "/venues")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.Status, len(body) > 0)
	// Output: 200 OK true
}

// TokenSource plugs tokenbroker into any library that takes an
// oauth2.TokenSource; all callers share one token and one renewal.
func ExampleBroker_TokenSource() {
	b, done := exampleBroker()
	defer done()
	ts := b.TokenSource("ruckus-eu")
	t1, _ := ts.Token()
	t2, _ := ts.Token()
	fmt.Println(t1.AccessToken == t2.AccessToken, !t1.Expiry.IsZero())
	// Output: true true
}

// Token is the one call most code needs: a valid access token, from memory,
// the store, or the vendor, in that order.
func ExampleBroker_Token() {
	b, done := exampleBroker()
	defer done()
	t, err := b.Token(context.Background(), "ruckus-eu", tokenbroker.TokenOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(t.Grant, t.TokenType)
	// Output: client_credentials Bearer
}
