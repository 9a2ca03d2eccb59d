package tokenbroker

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/emulator"
	"github.com/tokenbroker/tokenbroker/failure"
)

// An MSP profile's calls for its tenants go out with the MSP's one token
// and the vendor's tenant header set from the profile's list (by the
// tenant's name or id, in X-Tokenbroker-Tenant, which never reaches the
// vendor). A tenant the profile was not given, or any tenant for a profile
// without tenants, is refused before anything is sent; a vendor tenant
// header sent by a caller never passes.
func TestMSPTenantsShareOneToken(t *testing.T) {
	a := emulator.NewAruba(nil)
	var mu sync.Mutex
	type seen struct{ tenant, ours, auth []string }
	var calls []seen
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls = append(calls, seen{r.Header.Values("Tenantid"), r.Header.Values(TenantHeader), r.Header.Values("Authorization")})
		mu.Unlock()
		w.Write([]byte("{}"))
	}))
	defer api.Close()
	b := brokerOn(t, map[string]*config.Profile{
		"msp": {Name: "msp", Provider: "aruba-central", BaseURL: api.URL, ClientID: config.Secret(a.ClientID), ClientSecret: config.Secret(a.ClientSecret),
			Tenants: config.Tenants{List: []config.Tenant{{ID: "267958b55d5a463e94a302c20f4a6b68", Name: "acme"}, {ID: "0f3c", Name: "globex"}}}},
		"single": {Name: "single", Provider: "aruba-central", BaseURL: api.URL, ClientID: config.Secret(a.ClientID), ClientSecret: config.Secret(a.ClientSecret)},
	}, Options{})
	for _, p := range []string{"msp", "single"} {
		if _, err := b.Import(context.Background(), p, a.IssueOfflineToken(), ImportOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	call := func(profile string, h http.Header) error {
		hc, err := b.HTTPClient(profile)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest("GET", api.URL+"/monitoring/v1/aps", nil)
		for k, v := range h {
			req.Header[k] = v
		}
		resp, err := hc.Do(req)
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	for _, c := range []struct {
		profile string
		header  http.Header
		want    string // the TenantID the vendor sees; "" none
	}{
		{"msp", http.Header{TenantHeader: {"acme"}}, "267958b55d5a463e94a302c20f4a6b68"},
		{"msp", http.Header{TenantHeader: {"0f3c"}, "TenantID": {"267958b55d5a463e94a302c20f4a6b68"}}, "0f3c"},
		{"msp", http.Header{"tenantid": {"someone-else"}}, ""},
		{"single", http.Header{"Tenantid": {"someone-else"}}, ""},
	} {
		mu.Lock()
		before := len(calls)
		mu.Unlock()
		if err := call(c.profile, c.header); err != nil {
			t.Fatalf("%s %v: %v", c.profile, c.header, err)
		}
		mu.Lock()
		got := calls[before]
		mu.Unlock()
		if len(got.ours) != 0 {
			t.Errorf("%v: %s reached the vendor", c.header, TenantHeader)
		}
		if (c.want == "" && len(got.tenant) != 0) || (c.want != "" && (len(got.tenant) != 1 || got.tenant[0] != c.want)) {
			t.Errorf("%s %v: the vendor saw TenantID %q, want %q", c.profile, c.header, got.tenant, c.want)
		}
	}
	mu.Lock()
	if calls[0].auth[0] != calls[1].auth[0] {
		t.Error("two tenants of one MSP were called with different tokens")
	}
	sent := len(calls)
	mu.Unlock()
	for _, c := range []struct {
		profile, tenant string
	}{{"msp", "initech"}, {"msp", "acme/x"}, {"single", "acme"}} {
		err := call(c.profile, http.Header{TenantHeader: {c.tenant}})
		if !errors.Is(err, ErrTenantRefused) {
			t.Errorf("%s with tenant %q: %v, want refused", c.profile, c.tenant, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(calls) != sent {
		t.Errorf("%d refused calls reached the vendor", len(calls)-sent)
	}
}

// Discovery refused by the vendor (the token has no MSP rights) says so in
// plain words and keeps the last list.
func TestTenantDiscoveryRefused(t *testing.T) {
	a := emulator.NewAruba(nil)
	refuse := false
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/msp_api/v1/customers" && r.URL.Query().Get("limit") != "50" {
			t.Errorf("page of %q", r.URL.Query().Get("limit"))
		}
		if refuse {
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"message":"Auth failure","status":false}`))
			return
		}
		w.Write([]byte(`{"customers":[{"customer_id":"c1","customer_name":"acme"}],"total":1}`))
	}))
	defer api.Close()
	b := brokerOn(t, map[string]*config.Profile{
		"msp": {Name: "msp", Provider: "aruba-central", BaseURL: api.URL, ClientID: config.Secret(a.ClientID), ClientSecret: config.Secret(a.ClientSecret),
			Tenants: config.Tenants{Discover: true}},
	}, Options{})
	ctx := context.Background()
	if _, err := b.Import(ctx, "msp", a.IssueOfflineToken(), ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	if list, err := b.DiscoverTenants(ctx, "msp"); err != nil || len(list) != 1 {
		t.Fatalf("discovery: %v %v", list, err)
	}
	refuse = true
	_, err := b.DiscoverTenants(ctx, "msp")
	if failure.KindOf(err) != failure.Rejected || !strings.Contains(err.Error(), "no MSP rights") {
		t.Fatalf("refused discovery: %v", err)
	}
	if _, ten, err := b.Tenant(ctx, "msp/acme"); err != nil || ten.ID != "c1" {
		t.Errorf("the last list after a refused discovery: %v %v", ten, err)
	}
}
