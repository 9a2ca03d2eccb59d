// Package config reads tokenbroker's YAML configuration: where state lives,
// the master key, and the profiles. It checks only what every profile shares;
// each provider validates its own fields.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/tokenbroker/tokenbroker/failure"
	"github.com/tokenbroker/tokenbroker/internal/httpx"
)

// Config is the whole file.
type Config struct {
	State    string              `yaml:"state"`
	Key      Secret              `yaml:"key"`
	Profiles map[string]*Profile `yaml:"profiles"`
	// Clients are the consumers of `serve` with keys of their own, each
	// with only the access it needs; the broker key stays the
	// administrator's.
	Clients map[string]*Client `yaml:"clients"`
	// Serve bounds what callers of `serve` may hold; zero fields take the
	// defaults (DefaultServe).
	Serve Serve `yaml:"serve"`

	// Path is where the config was read from, empty when built in code.
	Path string `yaml:"-"`

	src *source // the text it was parsed from, for the lines in errors
}

// Profile is one named credential. Field names are the YAML keys DESIGN.md fixes.
type Profile struct {
	Name string  `yaml:"-"`
	src  *source // the config text, for Location

	Provider       string `yaml:"provider"`
	Region         string `yaml:"region"`
	BaseURL        string `yaml:"base_url"`
	TokenURL       string `yaml:"token_url"`
	TenantID       string `yaml:"tenant_id"`
	ClientID       Secret `yaml:"client_id"`
	ClientSecret   Secret `yaml:"client_secret"`
	DelegateTenant string `yaml:"delegate_tenant"`
	CustomerID     string `yaml:"customer_id"`
	Username       Secret `yaml:"username"`
	Password       Secret `yaml:"password"`
	JWT            Secret `yaml:"jwt"`
	APIKey         Secret `yaml:"api_key"`
	Environment    string `yaml:"environment"`
	Grant          string `yaml:"grant"`
	Issuer         string `yaml:"issuer"`
	RedirectURL    string `yaml:"redirect_url"`
	RevocationURL  string `yaml:"revocation_url"`
	// IntrospectionURL is an RFC 7662 endpoint that `inspect` asks about
	// the token (oauth2; optional when discovered).
	IntrospectionURL string `yaml:"introspection_url"`
	// AuthorizationURL is the authorization endpoint of the
	// authorization_code grant (oauth2; optional when discovered).
	AuthorizationURL string `yaml:"authorization_url"`
	// JWKSURL is where the server's signing keys are, for verifying an
	// id_token when there is no issuer to discover it from.
	JWKSURL string `yaml:"jwks_url"`
	// TLSClientCert and TLSClientKey are a client certificate (PEM, secret
	// references) presented on this profile's token and API calls (RFC
	// 8705 mutual TLS), on connections of the profile's own.
	TLSClientCert Secret `yaml:"tls_client_cert"`
	TLSClientKey  Secret `yaml:"tls_client_key"`
	// AuthorizationParams are added to a login's authorization request
	// (prompt, login_hint, acr_values, ...).
	AuthorizationParams map[string]string `yaml:"authorization_params"`
	// DeviceURL is the device authorization endpoint of the device_code
	// grant (oauth2; optional when discovered).
	DeviceURL string `yaml:"device_url"`
	// Token exchange (RFC 8693, oauth2 grant token_exchange): the subject is
	// SubjectToken, or the access token of the profile SubjectProfile.
	SubjectToken     Secret `yaml:"subject_token"`
	SubjectProfile   string `yaml:"subject_profile"`
	SubjectTokenType string `yaml:"subject_token_type"` // default urn:ietf:params:oauth:token-type:access_token
	Audience         string `yaml:"audience"`
	// RefreshFallback lets a generic profile present the refresh token
	// before the newest when the newest is refused. Off by default: servers
	// with refresh-token reuse detection (Hydra, Okta, Auth0) revoke the
	// whole chain when an old one comes back.
	RefreshFallback *bool  `yaml:"refresh_fallback"`
	Resource        string `yaml:"resource"`
	Assertion       Secret `yaml:"assertion"`
	PrivateKey      Secret `yaml:"private_key"`
	AuthStyle       string `yaml:"auth_style"`
	// AssertionClaims are the claims of the JWTs tokenbroker signs with
	// private_key: jwt_bearer assertions (RFC 7523) and private_key_jwt client
	// authentication (which fills iss, sub and aud itself).
	AssertionClaims *AssertionClaims `yaml:"assertion_claims"`
	Scopes          []string         `yaml:"scopes"`
	Header          string           `yaml:"header"`
	TokenField      string           `yaml:"token_field"`
	// RefreshToken seeds the refresh_token grant of a generic oauth2
	// profile until a stored token replaces it.
	RefreshToken Secret `yaml:"refresh_token"`
	// MSP asks Aruba's login flow to mint client credentials for
	// customer_id with the profile's (MSP) client id first (seed 004 step 2).
	MSP bool `yaml:"msp"`
	// RenewOn401Every is how often, at most, a vendor API's 401 renews the
	// token (default 30s); other 401s are passed on as they are.
	RenewOn401Every time.Duration `yaml:"renew_on_401_every"`
	RateLimit       *RateLimit    `yaml:"rate_limit"`
	Webhooks        []Webhook     `yaml:"webhooks"`
	// Tenants are an MSP profile's customers: calls for one of them
	// (PROFILE/TENANT, or the proxy's X-Tokenbroker-Tenant header) use
	// the profile's one token with the vendor's tenant header.
	Tenants Tenants `yaml:"tenants"`
	// TenantsRefresh is how often `tenants: discover` asks the vendor
	// again (DefaultTenantsRefresh when zero).
	TenantsRefresh time.Duration `yaml:"tenants_refresh"`
	// Sinks are files `serve` keeps holding the current token.
	Sinks []Sink `yaml:"sinks"`
	// ProxyListen is an address where `serve` proxies this profile's API
	// at the root, for SDKs that keep only a host (pycentral).
	ProxyListen string `yaml:"proxy_listen"`
}

// Serve is the `serve:` block: what one caller may hold of the daemon.
type Serve struct {
	// MaxConnections is how many caller connections may be open at once;
	// beyond it new ones are closed at accept (and counted).
	MaxConnections int `yaml:"max_connections"`
	// ReadHeaderTimeout bounds how long a caller may take to send a
	// request's head.
	ReadHeaderTimeout time.Duration `yaml:"read_header_timeout"`
	// IdleTimeout closes a kept-alive connection that sends nothing more.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// WriteTimeout bounds writing an answer; for a streamed proxied answer
	// it bounds each write, so a caller that stops reading is let go.
	WriteTimeout time.Duration `yaml:"write_timeout"`
}

// DefaultServe is what `serve` allows when the config does not say.
var DefaultServe = Serve{MaxConnections: 1024, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second, WriteTimeout: 60 * time.Second}

// WithDefaults fills the fields left zero from DefaultServe.
func (s Serve) WithDefaults() Serve {
	if s.MaxConnections <= 0 {
		s.MaxConnections = DefaultServe.MaxConnections
	}
	if s.ReadHeaderTimeout <= 0 {
		s.ReadHeaderTimeout = DefaultServe.ReadHeaderTimeout
	}
	if s.IdleTimeout <= 0 {
		s.IdleTimeout = DefaultServe.IdleTimeout
	}
	if s.WriteTimeout <= 0 {
		s.WriteTimeout = DefaultServe.WriteTimeout
	}
	return s
}

// RateLimit overrides a vendor's default limits.
type RateLimit struct {
	PerSecond float64 `yaml:"per_second"`
	PerDay    int     `yaml:"per_day"`
	// MaxWait is how long a call may queue for its slot before it is
	// answered 429 (default 10s).
	MaxWait time.Duration `yaml:"max_wait"`
	// Margin widens the one-second window against network jitter (default 25ms).
	Margin time.Duration `yaml:"margin"`
}

// AssertionClaims configure a signed JWT assertion.
type AssertionClaims struct {
	Issuer   string        `yaml:"iss"`
	Subject  string        `yaml:"sub"`
	Audience string        `yaml:"aud"`      // default: the token endpoint
	Lifetime time.Duration `yaml:"lifetime"` // default 5m
	KeyID    string        `yaml:"kid"`
	// Algorithm picks the signature: RS256 (default for RSA keys) or PS256;
	// EC keys sign ES256/ES384, Ed25519 keys EdDSA.
	Algorithm string `yaml:"alg"`
	// Certificate is the key's X.509 certificate (PEM, a secret reference):
	// its SHA-256 thumbprint goes in the x5t#S256 header, as Microsoft
	// Entra identifies a certificate credential.
	Certificate Secret `yaml:"certificate"`
}

// Webhook is an Aruba Central webhook received by `serve`.
type Webhook struct {
	ID    string `yaml:"id"`
	Token Secret `yaml:"token"`
	Sink  string `yaml:"sink"`
}

// Names lists profile names in a stable order.
func (c *Config) Names() []string {
	names := make([]string, 0, len(c.Profiles))
	for n := range c.Profiles {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ErrUnknownProfile is in the error for a name the config does not define.
var ErrUnknownProfile = errors.New("unknown profile")

// Profile finds a profile by name, with a usage error that lists the known ones.
func (c *Config) Profile(name string) (*Profile, error) {
	if p, ok := c.Profiles[name]; ok {
		return p, nil
	}
	known := strings.Join(c.Names(), ", ")
	if known == "" {
		known = "none"
	}
	where := c.Path
	if where == "" {
		where = "the configuration"
	}
	return nil, &failure.Error{Kind: failure.Config, Msg: fmt.Sprintf("unknown profile %q: %s defines %s", name, where, known), Err: ErrUnknownProfile}
}

// Warnings lists what is allowed but unwise in the file as a whole.
func (c *Config) Warnings() []string {
	if c.Key.Inline() {
		return []string{"key is written inline; prefer env:NAME or file:PATH"}
	}
	return nil
}

// Warnings lists what is allowed but unwise in a profile, such as inline
// secrets. Client ids and usernames are identifiers, not secrets; and a
// profile whose endpoints are all on loopback (an emulator, a test) holds
// test values, not secrets.
func (p *Profile) Warnings() []string {
	if p.loopbackOnly() {
		return nil
	}
	var w []string
	for field, s := range p.secrets() {
		if s.Inline() && field != "client_id" && field != "username" {
			w = append(w, fmt.Sprintf("profile %q: %s is written inline; prefer env:NAME or file:PATH", p.Name, field))
		}
	}
	sort.Strings(w)
	return w
}

func (p *Profile) loopbackOnly() bool {
	urls := []string{}
	for _, u := range []string{p.BaseURL, p.TokenURL} {
		if u != "" {
			urls = append(urls, u)
		}
	}
	for _, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil || !httpx.IsLoopback(u.Hostname()) {
			return false
		}
	}
	return len(urls) > 0
}

func (p *Profile) secrets() map[string]Secret {
	return map[string]Secret{
		"client_id": p.ClientID, "client_secret": p.ClientSecret, "username": p.Username,
		"password": p.Password, "jwt": p.JWT, "api_key": p.APIKey,
		"assertion": p.Assertion, "private_key": p.PrivateKey, "refresh_token": p.RefreshToken,
		"subject_token": p.SubjectToken,
	}
}

// SecretValues resolves the profile's secret fields, those that resolve,
// so that vendor text can be scrubbed of them before it is logged, stored
// or shown. Client ids and usernames are identifiers, not secrets.
func (p *Profile) SecretValues() []string {
	var out []string
	for field, s := range p.secrets() {
		if field == "client_id" || field == "username" || !s.IsSet() {
			continue
		}
		if v, err := s.Resolve(); err == nil && v != "" {
			out = append(out, v)
		}
	}
	return out
}

// DefaultPath is where the config is looked for when neither --config nor
// $TOKENBROKER_CONFIG says.
func DefaultPath() string {
	if p := os.Getenv("TOKENBROKER_CONFIG"); p != "" {
		return p
	}
	return filepath.Join(defaultConfigDir(), "tokenbroker", "config.yaml")
}

// DefaultState is the SQLite state path when the config does not say.
func DefaultState() string {
	return "sqlite:" + filepath.Join(defaultStateDir(), "tokenbroker", "state.db")
}

// Load reads and parses the config at path. A missing file at the default
// path is not an error: it yields an empty config, so `emulate` and `demo`
// work on a fresh machine.
func Load(path string, explicit bool) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) && !explicit {
			return &Config{Profiles: map[string]*Profile{}, State: DefaultState()}, nil
		}
		return nil, failure.New(failure.Config, "cannot read config %s: %v", path, unwrapPathError(err))
	}
	c, err := Parse(data)
	if err != nil {
		var fe *failure.Error
		if errors.As(err, &fe) {
			fe.Msg = path + ": " + fe.Msg
		}
		return nil, err
	}
	c.Path, c.src.path = path, path
	if err := c.checkExecSafe(path); err != nil {
		return nil, err
	}
	return c, nil
}

// Parse decodes YAML strictly: unknown keys are errors, so a typo is caught
// before it becomes a confusing vendor error.
func Parse(data []byte) (*Config, error) {
	c := &Config{}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return nil, failure.New(failure.Config, "invalid YAML: %s", strings.TrimPrefix(err.Error(), "yaml: "))
	}
	if c.State == "" {
		c.State = DefaultState()
	}
	if sv := c.Serve; sv.MaxConnections < 0 || sv.ReadHeaderTimeout < 0 || sv.IdleTimeout < 0 || sv.WriteTimeout < 0 {
		return nil, failure.New(failure.Config, "serve: max_connections and the timeouts must be positive (leave one out for its default)")
	}
	if c.Profiles == nil {
		c.Profiles = map[string]*Profile{}
	}
	if err := c.checkClients(); err != nil {
		return nil, err
	}
	c.src = &source{data: data}
	for name, p := range c.Profiles {
		if p == nil {
			p = &Profile{Name: name, src: c.src}
			return nil, failure.New(failure.Config, "profile %q (%s) is empty: it needs at least `provider`", name, p.Location())
		}
		p.Name, p.src = name, c.src
		if p.Provider == "" {
			return nil, failure.New(failure.Config, "profile %q (%s): `provider` is missing", name, p.Location())
		}
		if err := p.checkTenants(); err != nil {
			return nil, err
		}
		if err := checkSinks("profile "+strconv.Quote(name), p.Sinks); err != nil {
			return nil, err
		}
		for _, t := range p.Tenants.List {
			if err := checkSinks(fmt.Sprintf("profile %q tenant %q", name, t.ID), t.Sinks); err != nil {
				return nil, err
			}
		}
	}
	if err := c.checkProxyListen(); err != nil {
		return nil, err
	}
	return c, nil
}
