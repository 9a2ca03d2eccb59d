package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	tokenbroker "github.com/tokenbroker/tokenbroker"
	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/emulator"
)

const (
	proxyKey   = "client-proxy-key-0123456789"
	readerKey  = "client-reader-key-0123456789"
	monitorKey = "client-monitor-key-0123456789"
	hashedKey  = "client-hashed-key-0123456789"
	acmeKey    = "client-acme-key-0123456789"
)

// clientsRig is a server with the Aruba and RUCKUS emulators and four
// clients, each with a different slice of access.
func clientsRig(t *testing.T, clients map[string]*config.Client) (*Server, string, *emulator.Set) {
	t.Helper()
	set, err := emulator.Start("127.0.0.1", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set.Close)
	cfg := &config.Config{State: "sqlite:" + filepath.Join(t.TempDir(), "state.db"), Clients: clients, Profiles: map[string]*config.Profile{
		"aruba": {Provider: "aruba-central", BaseURL: set.URLs["aruba-central"], ClientID: config.Secret(set.Aruba.ClientID), ClientSecret: config.Secret(set.Aruba.ClientSecret),
			Tenants: config.Tenants{List: []config.Tenant{{ID: set.Aruba.Customers[0].ID, Name: "acme"}, {ID: set.Aruba.Customers[1].ID, Name: "globex"}}}},
		"ruckus": {Provider: "ruckus-one", BaseURL: set.URLs["ruckus-one"], TenantID: set.Ruckus.TenantID,
			ClientID: config.Secret(set.Ruckus.ClientID), ClientSecret: config.Secret(set.Ruckus.ClientSecret)},
	}}
	srv, err := serverFor(t, cfg)
	if err != nil {
		return nil, err.Error(), set
	}
	if _, err := srv.Broker().Import(context.Background(), "aruba", set.Aruba.IssueOfflineToken(), tokenbroker.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	return srv, serveFront(t, srv).URL, set
}

// serverFor names cfg's profiles and clients, opens its state and makes a
// server on it with the test key; the error is New's.
func serverFor(t *testing.T, cfg *config.Config) (*Server, error) {
	t.Helper()
	for n, p := range cfg.Profiles {
		p.Name = n
	}
	for n, c := range cfg.Clients {
		c.Name = n
		if c.May == "" {
			c.May = config.MayProxy
		}
	}
	st, err := tokenbroker.OpenStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return New(cfg, Options{Store: st, APIKey: testKey})
}

// callAs makes one call as the holder of key; a path may end in |TENANT,
// the tenant a proxied call names. It returns the status, the header and
// the body.
func callAs(t *testing.T, base, method, path, key string) (int, http.Header, string) {
	t.Helper()
	path, tenant, _ := strings.Cut(path, "|")
	req, _ := http.NewRequest(method, base+path, nil)
	req.Header.Set("Authorization", "Bearer "+key)
	if tenant != "" {
		req.Header.Set(tokenbroker.TenantHeader, tenant)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func sha(key string) config.Secret {
	h := sha256.Sum256([]byte(key))
	return config.Secret("sha256:" + hex.EncodeToString(h[:]))
}

// Each client reaches only what its rules give it, before anything is
// sent: its profiles, tokens only with may: token, its methods and path
// prefixes, never the vendor's credential endpoints nor the
// administrator's routes. Every refusal names the client and the rule, and
// is counted and audited.
func TestClientsGetOnlyWhatTheyMay(t *testing.T) {
	srv, base, set := clientsRig(t, map[string]*config.Client{
		"ansible-a": {Key: proxyKey, Profiles: []string{"aruba"}},
		"reader":    {Key: readerKey, Profiles: []string{"aruba"}, May: config.MayToken},
		"monitor":   {Keys: []config.Secret{monitorKey, sha("the-next-key-while-rotating")}, Profiles: []string{"aruba"}, Methods: []string{"GET"}, Paths: []string{"/monitoring/"}},
		"hashed":    {Key: sha(hashedKey), Profiles: []string{"ruck*"}},
		"acme-only": {Key: acmeKey, Profiles: []string{"aruba/acme"}, May: config.MayToken},
	})
	if srv == nil {
		t.Fatal(base)
	}
	call := func(method, path, key string) (int, string) {
		t.Helper()
		code, _, body := callAs(t, base, method, path, key)
		return code, body
	}
	acceptedBefore, _ := set.Aruba.APIStats()
	for _, c := range []struct {
		method, path, key string
		code              int
		rule              string // the rule named in a 403
	}{
		{"GET", "/v1/profiles/aruba/token", proxyKey, 403, "may"},
		{"GET", "/v1/profiles/ruckus/token", readerKey, 403, "profiles"},
		{"GET", "/v1/profiles/aruba/token", readerKey, 200, ""},
		{"GET", "/proxy/aruba/monitoring/v1/aps", proxyKey, 200, ""},
		{"GET", "/proxy/ruckus/venues", proxyKey, 403, "profiles"},
		{"GET", "/proxy/aruba/oauth2/token", proxyKey, 403, "credentials"},
		{"GET", "/proxy/aruba/central/v1/webhooks/w1/token", proxyKey, 403, "credentials"},
		{"GET", "/proxy/aruba/monitoring/v1/aps", monitorKey, 200, ""},
		{"POST", "/proxy/aruba/monitoring/v1/aps", monitorKey, 403, "methods"},
		{"GET", "/proxy/aruba/monitoringx/v1/aps", monitorKey, 403, "paths"},
		{"GET", "/proxy/aruba/monitoring%2Fv1/aps", monitorKey, 400, ""}, // the proxy's path rule, before any client rule
		{"GET", "/proxy/ruckus/venues", hashedKey, 200, ""},
		{"GET", "/metrics", proxyKey, 403, "admin"},
		{"GET", "/readyz", readerKey, 403, "admin"},
		{"POST", "/v1/profiles/aruba/refresh", readerKey, 403, "admin"},
		{"GET", "/v1/profiles/aruba/token", "not-a-key-of-anyone", 401, ""},
		// A client given one tenant of an MSP: that tenant, by name or id, and nothing else.
		{"GET", "/v1/profiles/aruba/tenants/acme/token", acmeKey, 200, ""},
		{"GET", "/v1/profiles/aruba/tenants/" + set.Aruba.Customers[0].ID + "/token", acmeKey, 200, ""},
		{"GET", "/v1/profiles/aruba/tenants/globex/token", acmeKey, 403, "profiles"},
		{"GET", "/v1/profiles/aruba/token", acmeKey, 403, "profiles"},
		{"GET", "/proxy/aruba/monitoring/v1/aps|acme", acmeKey, 200, ""},
		{"GET", "/proxy/aruba/monitoring/v1/aps|globex", acmeKey, 403, "profiles"},
		{"GET", "/proxy/aruba/monitoring/v1/aps", acmeKey, 403, "profiles"},
		{"GET", "/v1/profiles/ruckus/tenants", acmeKey, 403, "profiles"},
	} {
		code, body := call(c.method, c.path, c.key)
		if code != c.code || (c.rule != "" && !strings.Contains(body, `"rule":"`+c.rule+`"`)) {
			t.Errorf("%s %s as %.14s: %d %s, want %d (rule %q)", c.method, c.path, c.key, code, body, c.code, c.rule)
		}
		if code == 403 && !strings.Contains(body, "clients.") && !strings.Contains(body, "broker key") {
			t.Errorf("%s %s: the refusal does not say what to change: %s", c.method, c.path, body)
		}
	}
	if accepted, _ := set.Aruba.APIStats(); accepted != acceptedBefore+3 {
		t.Errorf("%d calls reached Aruba, want the 3 allowed", accepted-acceptedBefore)
	}
	if _, body := call("GET", "/v1/profiles", proxyKey); !strings.Contains(body, `"profile":"aruba"`) || strings.Contains(body, `"profile":"ruckus"`) {
		t.Errorf("a client's /v1/profiles: %s", body)
	}
	if _, body := call("GET", "/v1/profiles/aruba/tenants", acmeKey); !strings.Contains(body, `"acme"`) || strings.Contains(body, "globex") {
		t.Errorf("a one-tenant client's tenant list: %s", body)
	}
	_, metrics := call("GET", "/metrics", testKey)
	if !strings.Contains(metrics, `tokenbroker_client_refusals_total{client="ansible-a",rule="credentials"} 2`) {
		t.Errorf("refusals not counted:\n%s", metrics)
	}
	if !strings.Contains(metrics, `tokenbroker_proxy_requests_total{client="monitor",code="200",profile="aruba"} 1`) {
		t.Errorf("proxied calls not counted by client:\n%s", metrics)
	}
	events, err := srv.Broker().Events(context.Background(), "", 50)
	if err != nil {
		t.Fatal(err)
	}
	audited := 0
	for _, e := range events {
		if e.Action == "client_refused" && !strings.Contains(e.Error, proxyKey) && !strings.Contains(e.Error, readerKey) {
			audited++
		}
	}
	if audited == 0 {
		t.Error("no refusal in the audit log")
	}
}

// A key that names two clients, or is the broker key, is a config error.
func TestClientKeysMustNameOneCaller(t *testing.T) {
	if srv, msg, _ := clientsRig(t, map[string]*config.Client{
		"a": {Key: proxyKey, Profiles: []string{"aruba"}},
		"b": {Key: sha(proxyKey), Profiles: []string{"ruckus"}},
	}); srv != nil || !strings.Contains(msg, "clients.a and clients.b have the same key") {
		t.Errorf("two clients, one key: %q", msg)
	}
	if srv, msg, _ := clientsRig(t, map[string]*config.Client{"a": {Key: testKey, Profiles: []string{"aruba"}}}); srv != nil || !strings.Contains(msg, "broker key") {
		t.Errorf("a client with the broker key: %q", msg)
	}
}

// A client's own bounds: a share of the profile's rate limit and a count
// of calls a day, answered with tokenbroker's 429 before anything is sent,
// while another client still has the whole limit.
func TestClientBudgets(t *testing.T) {
	srv, base, set := clientsRig(t, map[string]*config.Client{
		"daily": {Key: proxyKey, Profiles: []string{"aruba"}, PerDay: 3},
		"half":  {Key: readerKey, Profiles: []string{"aruba"}, RateShare: 0.3},
	})
	if srv == nil {
		t.Fatal(base)
	}
	call := func(key string) (int, http.Header) {
		code, h, _ := callAs(t, base, "GET", "/proxy/aruba/monitoring/v1/aps", key)
		return code, h
	}
	for i := range 3 {
		if code, _ := call(proxyKey); code != 200 {
			t.Fatalf("call %d of 3 a day: %d", i+1, code)
		}
	}
	before, _ := set.Aruba.APIStats()
	code, h := call(proxyKey)
	if code != 429 || h.Get(tokenbroker.RefusedHeader) == "" || h.Get("Retry-After") == "" || !strings.Contains(h.Get(tokenbroker.RefusedHeader), "per_day") {
		t.Errorf("the 4th call of the day: %d %v", code, h)
	}
	if after, _ := set.Aruba.APIStats(); after != before {
		t.Error("a call over the client's day reached the vendor")
	}
	// 0.3 of Aruba's 7/s is 2 calls per window: the 3rd at once is refused.
	codes := []int{}
	for range 3 {
		c, _ := call(readerKey)
		codes = append(codes, c)
	}
	if codes[0] != 200 || codes[1] != 200 || codes[2] != 429 {
		t.Errorf("three calls at once at 0.3 of 7/s: %v, want 200 200 429", codes)
	}
}

// The audit events a client's call causes name the client.
func TestAuditNamesTheClient(t *testing.T) {
	srv, base, _ := clientsRig(t, map[string]*config.Client{
		"reader": {Key: readerKey, Profiles: []string{"ruckus"}, May: config.MayToken},
	})
	if srv == nil {
		t.Fatal(base)
	}
	if code, _, body := callAs(t, base, "GET", "/v1/profiles/ruckus/token", readerKey); code != 200 {
		t.Fatalf("token: %d %s", code, body)
	}
	events, err := srv.Broker().Events(context.Background(), "ruckus", 10)
	if err != nil || len(events) == 0 || events[0].Action != "obtain" || events[0].Client != "reader" {
		t.Fatalf("the obtain the client's call caused: %+v %v", events, err)
	}
}

// A reload (SIGHUP) takes the clients' keys anew: a rotated-out key stops
// working, the new one works.
func TestClientKeysReload(t *testing.T) {
	srv, base, _ := clientsRig(t, map[string]*config.Client{"job": {Key: proxyKey, Keys: []config.Secret{readerKey}, Profiles: []string{"ruckus"}}})
	if srv == nil {
		t.Fatal(base)
	}
	code := func(key string) int {
		c, _, _ := callAs(t, base, "GET", "/proxy/ruckus/venues", key)
		return c
	}
	if a, b := code(proxyKey), code(readerKey); a != 200 || b != 200 {
		t.Fatalf("both keys while rotating: %d %d", a, b)
	}
	cfg := *srv.Broker().Config()
	cfg.Clients = map[string]*config.Client{"job": {Name: "job", Key: readerKey, Profiles: []string{"ruckus"}, May: config.MayProxy}}
	srv.Reload(&cfg)
	if a, b := code(proxyKey), code(readerKey); a != 401 || b != 200 {
		t.Errorf("after the reload: old key %d (want 401), new key %d (want 200)", a, b)
	}
}

// POST /v1/reload reads the configuration again, as SIGHUP does (the
// reload of platforms without SIGHUP); it is the administrator's, and a
// configuration that does not load keeps the current one.
func TestReloadRoute(t *testing.T) {
	srv, base, _ := clientsRig(t, map[string]*config.Client{"job": {Key: proxyKey, Profiles: []string{"ruckus"}}})
	if srv == nil {
		t.Fatal(base)
	}
	next := *srv.Broker().Config()
	next.Profiles = map[string]*config.Profile{"site": {Name: "site", Provider: "static", APIKey: "k"}}
	for n, p := range srv.Broker().Config().Profiles {
		next.Profiles[n] = p
	}
	var fail bool
	srv.opts.LoadConfig = func() (*config.Config, error) {
		if fail {
			return nil, errors.New("config.yaml line 3: bad")
		}
		return &next, nil
	}
	if code, _, body := callAs(t, base, "POST", "/v1/reload", proxyKey); code != 403 || !strings.Contains(body, `"rule":"admin"`) {
		t.Errorf("a client reloading: %d %s", code, body)
	}
	if code, _, body := callAs(t, base, "POST", "/v1/reload", testKey); code != 200 || !strings.Contains(body, `"reloaded":true`) {
		t.Fatalf("reload: %d %s", code, body)
	}
	if _, err := srv.Broker().Config().Profile("site"); err != nil {
		t.Errorf("the reloaded config is not in use: %v", err)
	}
	fail = true
	if code, _, _ := callAs(t, base, "POST", "/v1/reload", testKey); code == 200 {
		t.Error("a config that does not load was taken")
	}
	if _, err := srv.Broker().Config().Profile("site"); err != nil {
		t.Errorf("a failed reload dropped the current config: %v", err)
	}
}
