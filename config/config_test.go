package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestServeBlock(t *testing.T) {
	c, err := Parse([]byte("serve: {max_connections: 8, write_timeout: 5s}\nprofiles: {}\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := c.Serve.WithDefaults()
	want := Serve{MaxConnections: 8, ReadHeaderTimeout: DefaultServe.ReadHeaderTimeout, IdleTimeout: DefaultServe.IdleTimeout, WriteTimeout: 5 * time.Second}
	if got != want {
		t.Errorf("serve %+v, want %+v", got, want)
	}
	for _, bad := range []string{"serve: {max_connections: -1}\n", "serve: {idle_timeout: -1s}\n", "serve: {max_conns: 3}\n"} {
		if _, err := Parse([]byte(bad)); err == nil || !strings.Contains(err.Error(), "serve") && !strings.Contains(err.Error(), "max_conns") {
			t.Errorf("%q: %v, want a config error", bad, err)
		}
	}
}

// env: and file: values lose a trailing newline alike.
func TestSecretsAreTrimmedAlike(t *testing.T) {
	t.Setenv("TB_CONFIG_TEST", "value\r\n")
	path := t.TempDir() + "/secret"
	if err := writeFile(path, "value\n"); err != nil {
		t.Fatal(err)
	}
	for _, s := range []Secret{"env:TB_CONFIG_TEST", Secret("file:" + path), "value"} {
		if v, err := s.Resolve(); err != nil || v != "value" {
			t.Errorf("%s: %q %v", s, v, err)
		}
	}
}

func writeFile(path, text string) error { return os.WriteFile(path, []byte(text), 0o600) }

// Every key of the documented config is known, and each lands in its field.
func TestEveryDocumentedKeyParses(t *testing.T) {
	doc := `state: sqlite:/tmp/state.db
key: env:TOKENBROKER_KEY
serve: {max_connections: 10, read_header_timeout: 1s, idle_timeout: 2s, write_timeout: 3s}
profiles:
  p:
    provider: oauth2
    region: eu
    base_url: https://api.example
    token_url: https://idp.example/token
    tenant_id: t1
    client_id: env:ID
    client_secret: env:SECRET
    delegate_tenant: d1
    customer_id: c1
    username: env:USER
    password: env:PASSWORD
    msp: true
    jwt: env:JWT
    api_key: env:KEY
    environment: sandbox
    grant: client_credentials
    issuer: https://idp.example
    redirect_url: http://127.0.0.1:0/cb
    authorization_url: https://idp.example/auth
    device_url: https://idp.example/device
    revocation_url: https://idp.example/revoke
    introspection_url: https://idp.example/introspect
    subject_profile: other
    subject_token: env:SUBJECT
    subject_token_type: urn:ietf:params:oauth:token-type:access_token
    audience: aud
    resource: https://api.example
    assertion: env:ASSERTION
    private_key: file:key.pem
    assertion_claims: {iss: i, sub: s, aud: a, lifetime: 5m, kid: k}
    auth_style: basic
    scopes: [read, write]
    header: "Authorization: Bearer {token}"
    token_field: access_token
    refresh_token: env:RT
    rate_limit: {per_second: 7, per_day: 5000, max_wait: 2s, margin: 50ms}
    renew_on_401_every: 45s
    webhooks:
      - {id: wh-1, token: env:WH, sink: stdout}
`
	c, err := Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	p := c.Profiles["p"]
	checks := map[string]bool{
		"name":            p.Name == "p",
		"key":             c.Key == "env:TOKENBROKER_KEY",
		"serve":           c.Serve.MaxConnections == 10 && c.Serve.WriteTimeout == 3*time.Second,
		"token_url":       p.TokenURL == "https://idp.example/token",
		"msp":             p.MSP,
		"scopes":          len(p.Scopes) == 2 && p.Scopes[1] == "write",
		"assertion":       p.AssertionClaims != nil && p.AssertionClaims.Lifetime == 5*time.Minute && p.AssertionClaims.KeyID == "k",
		"rate_limit":      p.RateLimit != nil && p.RateLimit.PerSecond == 7 && p.RateLimit.Margin == 50*time.Millisecond,
		"renew_on_401":    p.RenewOn401Every == 45*time.Second,
		"webhooks":        len(p.Webhooks) == 1 && p.Webhooks[0].Sink == "stdout" && p.Webhooks[0].Token == "env:WH",
		"secret is a ref": !p.ClientSecret.Inline() && p.ClientSecret.String() == "env:SECRET",
	}
	for what, ok := range checks {
		if !ok {
			t.Errorf("%s was not read as written", what)
		}
	}
}

// A typo is an error that names the key and its line; a profile without
// provider or with no body names the profile.
func TestConfigErrorsNameTheLine(t *testing.T) {
	for doc, want := range map[string][]string{
		"profiles:\n  p:\n    provider: oauth2\n    tokne_url: x\n": {"line 4", "tokne_url"},
		"profiles:\n  p:\n    token_url: x\n":                       {`profile "p" (line 2)`, "provider"},
		"state: x\nprofiles:\n  q:\n    provider: oauth2\n  p:\n":   {`profile "p" (line 5)`, "empty"},
		"profiles: [1, 2]\n":                                        {"invalid YAML"},
		"serve: {max_connections: -1}\n":                            {"serve"},
	} {
		_, err := Parse([]byte(doc))
		if err == nil {
			t.Errorf("%q: no error", doc)
			continue
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%q: %v, want it to say %q", doc, err, w)
			}
		}
	}
}

// Location names the file and the line of a profile's key, for errors
// found after parsing (a provider's checks); nothing for a profile built
// in code.
func TestLocation(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	os.WriteFile(path, []byte("# tokenbroker\nprofiles:\n  a:\n    provider: oauth2\n\n  b:\n    provider: ruckus-one\n"), 0o600)
	c, err := Load(path, true)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.Profiles["b"].Location(), path+" line 6"; got != want {
		t.Errorf("Location() = %q, want %q", got, want)
	}
	if got := (&Profile{Name: "x"}).Location(); got != "" {
		t.Errorf("a profile built in code: %q", got)
	}
}

// A tenant list in which one tenant could be taken for another is a
// config error that names the profile and both tenants.
func TestTenantsRefusedWhenAmbiguous(t *testing.T) {
	for _, c := range []struct{ tenants, want string }{
		{"[{id: a1, name: acme}, {id: b2, name: acme}]", `two tenants are named "acme" (ids a1 and b2)`},
		{"[{id: a1, name: x/y}]", "may not contain `/`"},
		{"[{id: a1, name: b2}, {id: b2, name: other}]", `"b2" is another tenant's id`},
		{"[{id: a1}, {id: a1}]", "listed twice"},
		{"[{name: acme}]", "has no `id`"},
		{"[{id: 'a 1'}]", "visible ASCII"},
		{"everyone", "want a list of {id, name} or `discover`"},
	} {
		_, err := Parse([]byte("profiles:\n  msp:\n    provider: aruba-central\n    tenants: " + c.tenants + "\n"))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("tenants %s: %v, want %q", c.tenants, err, c.want)
		}
	}
	cfg, err := Parse([]byte("profiles:\n  msp:\n    provider: aruba-central\n    tenants: [{id: a1, name: acme}, {id: a1x}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := cfg.Profile("msp")
	if got, err := p.Refer(p.Tenants.List, "acme"); err != nil || got.ID != "a1" {
		t.Errorf("by name: %+v %v", got, err)
	}
	if got, err := p.Refer(p.Tenants.List, "a1x"); err != nil || got.ID != "a1x" {
		t.Errorf("by id: %+v %v", got, err)
	}
	if _, err := p.Refer(p.Tenants.List, "initech"); !errors.Is(err, ErrTenantRefused) || !strings.Contains(err.Error(), "tokenbroker tenants msp") {
		t.Errorf("unlisted: %v", err)
	}
	cfg, err = Parse([]byte("profiles:\n  msp:\n    provider: aruba-central\n    tenants: discover\n    tenants_refresh: 10m\n"))
	if err != nil {
		t.Fatal(err)
	}
	if p, _ := cfg.Profile("msp"); !p.Tenants.Discover || !p.HasTenants() || p.TenantsRefresh != 10*time.Minute {
		t.Errorf("discover: %+v", p)
	}
}

// A discovered list keeps every tenant with a usable id, and drops only
// the names that would be ambiguous.
func TestDiscoveredTenantsKeepTheirIDs(t *testing.T) {
	tn := func(id, name string) Tenant { return Tenant{ID: id, Name: name} }
	got := Discovered([]Tenant{tn("a1", "acme"), tn("b2", "acme"), tn("c3", "x/y"), tn("d4", "a1"), tn("", "none"), tn("a1", "again"), tn("e 5", "bad"), tn("f6", "fine")})
	want := []Tenant{tn("a1", ""), tn("b2", ""), tn("c3", ""), tn("d4", ""), tn("f6", "fine")}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Discovered = %v, want %v", got, want)
	}
}

// Clients that could not work as written are config errors naming them.
func TestClientsRefusedWhenMalformed(t *testing.T) {
	for _, c := range []struct{ client, want string }{
		{"{key: k, profiles: [a], may: admin}", `may: "admin", want proxy or token`},
		{"{key: k}", "`profiles:` is empty"},
		{"{key: k, profiles: ['[']}", "not a valid pattern"},
		{"{key: k, profiles: [a], methods: [get]}", "upper-case HTTP method"},
		{"{key: k, profiles: [a], paths: [monitoring]}", "want a path prefix"},
		{"{key: k, profiles: [a], paths: [/a/../b]}", "want a path prefix"},
	} {
		_, err := Parse([]byte("clients:\n  job: " + c.client + "\nprofiles:\n  a: {provider: static, api_key: x}\n"))
		if err == nil || !strings.Contains(err.Error(), "clients.job") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.client, err, c.want)
		}
	}
	cfg, err := Parse([]byte("clients:\n  job: {key: short, profiles: [a, 'nope-*']}\nprofiles:\n  a: {provider: static, api_key: x}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cfg.Clients["job"].KeyHashes(); err == nil || !strings.Contains(err.Error(), "at least 16") {
		t.Errorf("a short key: %v", err)
	}
	if w := cfg.UnmatchedPatterns(); len(w) != 1 || !strings.Contains(w[0], `"nope-*" matches no profile`) {
		t.Errorf("unmatched patterns: %q", w)
	}
	if cfg.Clients["job"].May != MayProxy {
		t.Errorf("may defaults to %q, want proxy", cfg.Clients["job"].May)
	}
	for _, c := range []struct {
		p, prefix string
		want      bool
	}{{"/monitoring/v1/aps", "/monitoring/", true}, {"/monitoring", "/monitoring", true}, {"/monitoringx/v1", "/monitoring/", false}, {"/a", "/", true}} {
		if got := UnderPath(c.p, c.prefix); got != c.want {
			t.Errorf("UnderPath(%q, %q) = %v", c.p, c.prefix, got)
		}
	}
}
