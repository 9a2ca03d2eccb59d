// Package provider speaks each vendor's token protocol. A Provider knows
// nothing of stores or caches: given a profile and the previous token it
// obtains a new one, and says how to attach it to a request.
//
// Vendor differences are data (vendors.go); the few flows that are not data
// (Aruba's login, RingCentral's JWT checks) live in one file per vendor.
package provider

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/failure"
	"github.com/tokenbroker/tokenbroker/internal/httpx"
	"github.com/tokenbroker/tokenbroker/internal/wait"
	"github.com/tokenbroker/tokenbroker/ratelimit"
	"github.com/tokenbroker/tokenbroker/token"
)

// Provider obtains tokens for one profile. Implementations must be safe for
// concurrent use, though the broker calls Obtain for a profile only once at a time.
type Provider interface {
	// Obtain returns a new token: by the refresh grant when prev holds a
	// usable refresh token, else by the primary grant. It never changes prev.
	Obtain(ctx context.Context, prev *token.Token) (*token.Token, error)
	// Headers are the header lines that attach tok to an API request,
	// tenant headers included.
	Headers(tok *token.Token) http.Header
	// Describe says what the profile talks to.
	Describe() Description
}

// Description is what the broker, `status` and the proxy need to know about a
// profile's vendor.
type Description struct {
	Vendor string // display name, "Aruba Central"
	// TenantHeader is the vendor's header naming the customer an MSP's
	// call is for (`TenantID`, `x-rks-tenantid`); "" when it has none.
	TenantHeader string
	// Tenants lists an MSP's tenants; nil when the vendor's API cannot.
	Tenants *TenantDirectory
	// CredentialPaths are API paths that hand out credentials (segment
	// patterns, see Vendor.CredentialPaths).
	CredentialPaths []string
	APIBase         string // the upstream the proxy and `curl` may reach; may be empty
	Limits          Limits
	// Refreshable means the vendor issues refresh tokens, which must be
	// kept alive (RefreshIdle) and never re-obtained while they work.
	Refreshable bool
	RefreshIdle time.Duration
	// Interactive means a token can only be had by `login` or `import`.
	Interactive bool
	// RefreshFallback means the refresh token before the newest may be
	// presented when the newest is refused (see Vendor.RefreshFallback).
	RefreshFallback bool
	// SeedOnly means the first token comes from a configured refresh_token
	// seed, which is single-use: it is presented only when a person says so
	// (`import --refresh-token`), never by a renewal on its own.
	SeedOnly bool
	// Stateless means the token comes from configuration (a static key)
	// and is not stored.
	Stateless bool
}

// Limits are a vendor's request limits; zero means none known.
type Limits struct {
	PerSecond float64
	PerDay    int
}

// Loginer is a provider with an interactive grant (`tokenbroker login`).
type Loginer interface {
	Login(ctx context.Context, in Prompter) (*token.Token, error)
}

// Importer is a provider that accepts a token downloaded from the vendor's UI.
type Importer interface {
	Import(data []byte) (*token.Token, error)
}

// Revoker is a provider that can revoke a token at the vendor.
type Revoker interface {
	Revoke(ctx context.Context, tok *token.Token, in Prompter) error
}

// ErrNoTerminal is a Prompter's answer when nobody is at a terminal.
var ErrNoTerminal = errors.New("no terminal to ask")

// Prompter asks a person for a value, when one is at a terminal.
type Prompter interface {
	Prompt(label string, secret bool) (string, error)
}

// Env is what a provider may use from the outside world.
type Env struct {
	HTTP *http.Client     // hardened client; default httpx.New with RejectHTML
	Now  func() time.Time // default time.Now
	Warn func(string)     // where warnings go (stderr in the CLI); may be nil
	// Sleep waits between polls (device code); a real timer when nil.
	Sleep func(ctx context.Context, d time.Duration) error
	// Token gives another profile's token (token exchange's subject_profile).
	Token func(ctx context.Context, profile string) (*token.Token, error)
	// Pacer paces Aruba's login steps; give every provider of a process
	// the same one (the Broker does). A provider of its own when nil.
	Pacer *ratelimit.Pacer
}

func (e Env) withDefaults() Env {
	if e.HTTP == nil {
		// Token endpoints never reuse a connection (httpx.New), so a client
		// per provider holds no idle connections.
		e.HTTP = httpx.New(httpx.Options{RejectHTML: true})
	}
	if e.Pacer == nil {
		e.Pacer = &ratelimit.Pacer{}
	}
	if e.Now == nil {
		e.Now = time.Now
	}
	if e.Warn == nil {
		e.Warn = func(string) {}
	}
	if e.Sleep == nil {
		e.Sleep = wait.Sleep
	}
	return e
}

// New builds the provider for a profile, validating its fields. Errors are
// failure.Config and name the profile and the field.
func New(p *config.Profile, env Env) (Provider, error) {
	env = env.withDefaults()
	if v := vendors[p.Provider]; p.HasTenants() && (v == nil || v.TenantHeader == "") {
		return nil, configErr(p, "`tenants:` needs a vendor with a tenant header (Aruba Central's TenantID, RUCKUS One's x-rks-tenantid); %s has none", p.Provider)
	}
	switch p.Provider {
	case "static":
		return newStatic(p, env)
	case "oauth2":
		return newGeneric(p, env)
	}
	v, ok := vendors[p.Provider]
	if !ok {
		return nil, configErr(p, "unknown provider %q: use one of %s", p.Provider, providerNames())
	}
	base, err := newOAuth(p, v, env)
	if err != nil {
		return nil, err
	}
	switch p.Provider {
	case "aruba-central":
		return &aruba{base}, nil
	case "ringcentral":
		return newRingCentral(base)
	}
	return base, nil
}

func configErr(p *config.Profile, format string, args ...any) error {
	e := failure.New(failure.Config, format, args...)
	e.Profile = p.Name
	if where := p.Location(); where != "" {
		e.Msg += " (" + where + ")"
	}
	return e
}
