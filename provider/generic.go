package provider

import (
	"context"
	"net/url"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/failure"
	"github.com/tokenbroker/tokenbroker/internal/httpx"
	"github.com/tokenbroker/tokenbroker/token"
)

// newGeneric builds a Vendor from the profile itself, so any OAuth2 API
// (Catalyst Center's {"Token": ...} sent as X-Auth-Token included) needs
// configuration, not code.
func newGeneric(p *config.Profile, env Env) (Provider, error) {
	where := p.TokenURL
	if where == "" {
		if p.Issuer == "" {
			return nil, configErr(p, "an oauth2 profile needs `token_url` or `issuer` (OpenID discovery)")
		}
		where = p.Issuer
	}
	u, err := httpx.CheckURL(where)
	if err != nil {
		return nil, configErr(p, "token_url/issuer: %v", err)
	}
	v := &Vendor{
		ID: "oauth2", Display: "OAuth2 at " + u.Host,
		Refreshable: true, Header: bearer,
		RejectHint: "check client_id and client_secret (and auth_style) for profile " + p.Name,
	}
	switch p.Grant {
	case "", "client_credentials":
		v.PrimaryGrant = "client_credentials"
		v.Required = []string{"client_id", "client_secret"}
	case "refresh_token":
		v.PrimaryGrant = "refresh_token"
		v.Required = []string{"client_id"}
	case "authorization_code":
		// Only `login` gets the first token; refreshes keep it alive.
		v.PrimaryGrant = ""
		v.Required = []string{"client_id"}
	case "jwt_bearer":
		v.PrimaryGrant = "jwt_bearer"
		v.Required = []string{"client_id"}
	case "device_code":
		v.PrimaryGrant = "" // only `login`; refreshes keep it alive
		v.Required = []string{"client_id"}
	case "token_exchange":
		if !p.SubjectToken.IsSet() && p.SubjectProfile == "" {
			return nil, configErr(p, "the token_exchange grant needs `subject_token` or `subject_profile`")
		}
		if p.SubjectProfile == p.Name {
			return nil, configErr(p, "subject_profile cannot be the profile itself")
		}
		v.PrimaryGrant = "token_exchange"
		v.Required = []string{"client_id"}
	default:
		return nil, configErr(p, "grant %q is not supported yet: use client_credentials, refresh_token, authorization_code, device_code or jwt_bearer", p.Grant)
	}
	switch p.AuthStyle {
	case "", "basic":
		// RFC 6749 2.3.1 says servers must support Basic: the pinned default.
		v.ClientAuth = oauth2.AuthStyleInHeader
	case "body":
		v.ClientAuth = oauth2.AuthStyleInParams
	case "private_key_jwt":
		if !p.PrivateKey.IsSet() {
			return nil, configErr(p, "auth_style private_key_jwt needs `private_key`")
		}
		v.ClientAuth = oauth2.AuthStyleInParams
		v.Required = []string{"client_id"}
	case "tls_client_auth":
		// RFC 8705 2.1: the client is its certificate; client_id goes in
		// the body.
		if !p.TLSClientCert.IsSet() || !p.TLSClientKey.IsSet() {
			return nil, configErr(p, "auth_style tls_client_auth needs `tls_client_cert` and `tls_client_key`")
		}
		v.ClientAuth = oauth2.AuthStyleInParams
		v.Required = []string{"client_id"}
	case "client_secret_jwt":
		// RFC 7523 2.2 with an HMAC (HS256) keyed by the client secret.
		if !p.ClientSecret.IsSet() {
			return nil, configErr(p, "auth_style client_secret_jwt needs `client_secret`")
		}
		v.ClientAuth = oauth2.AuthStyleInParams
	default:
		return nil, configErr(p, "auth_style %q: use basic, body, private_key_jwt, client_secret_jwt or tls_client_auth", p.AuthStyle)
	}
	for k := range p.AuthorizationParams {
		switch k {
		case "client_id", "redirect_uri", "response_type", "state", "code_challenge", "code_challenge_method", "scope":
			return nil, configErr(p, "authorization_params: %q is set by tokenbroker itself", k)
		}
	}
	if p.Header != "" {
		if err := checkHeader(p.Header); err != nil {
			return nil, configErr(p, "header: %v", err)
		}
		v.Header = p.Header
	}
	if p.RateLimit != nil {
		v.Limits = Limits{PerSecond: p.RateLimit.PerSecond, PerDay: p.RateLimit.PerDay}
	}
	o, err := newOAuth(p, v, env)
	if err != nil {
		return nil, err
	}
	if p.TokenField != "" {
		o.tokenField = p.TokenField
	}
	g := &generic{oauthProvider: o, public: !p.ClientSecret.IsSet() && p.AuthStyle != "private_key_jwt" && p.AuthStyle != "tls_client_auth" && v.PrimaryGrant != "client_credentials" && v.PrimaryGrant != "jwt_bearer" && v.PrimaryGrant != "token_exchange",
		endpoints: endpoints{Token: o.tokenURL, Revocation: p.RevocationURL, Introspection: p.IntrospectionURL,
			Authorization: p.AuthorizationURL, Device: p.DeviceURL, JWKS: p.JWKSURL, Issuer: p.Issuer}}
	switch p.Grant {
	case "authorization_code":
		return &authCode{g}, nil
	case "device_code":
		return &deviceCode{g}, nil
	}
	for _, u := range []string{p.RevocationURL, p.IntrospectionURL, p.JWKSURL} {
		if u != "" {
			if _, err := httpx.CheckURL(u); err != nil {
				return nil, configErr(p, "%v", err)
			}
		}
	}
	return g, nil
}

// generic is the configurable OAuth2 provider: endpoints given or found by
// OpenID discovery, a public client when there is no secret, RFC 7009
// revocation and RFC 7662 introspection.
type generic struct {
	*oauthProvider
	public bool

	discoveryMu sync.Mutex // guards what discovery found
	discovered  bool       // a document answered: found says whether it is usable
	found       error
	transient   error     // the last unreachable issuer's failure, until retryAt
	retryAt     time.Time // when discovery may be tried again
	failures    int       // unreachable attempts in a row
	endpoints   endpoints
}

// Obtain implements Provider. Every call to the authorization server goes
// through tokenCall or clientCall, so the client authenticates the one way
// its profile says (a secret in Basic or the body, a signed assertion, or
// none for a public client) on every grant, not only the first.
func (g *generic) Obtain(ctx context.Context, prev *token.Token) (*token.Token, error) {
	if err := g.discover(ctx); err != nil {
		return nil, err
	}
	if prev.RefreshUsable(g.env.Now()) || g.v.PrimaryGrant == "refresh_token" {
		t, err := g.refresh(ctx, prev)
		if failure.KindOf(err) != failure.Rejected || !g.reobtainable() || g.v.PrimaryGrant == "refresh_token" {
			return t, err
		}
		// The refresh token is dead but the primary grant needs none:
		// start over rather than stop.
	}
	switch g.v.PrimaryGrant {
	case "jwt_bearer":
		return g.jwtBearer(ctx)
	case "token_exchange":
		return g.tokenExchange(ctx)
	case "client_credentials":
		return g.clientCredentialsGrant(ctx)
	}
	return g.oauthProvider.Obtain(ctx, nil) // says what the profile needs: a login
}

// refresh runs the refresh_token grant with the stored refresh token, or
// the configured seed when none is stored.
func (g *generic) refresh(ctx context.Context, prev *token.Token) (*token.Token, error) {
	rt := ""
	if prev.RefreshUsable(g.env.Now()) {
		rt = prev.RefreshToken
	} else if seed, err := g.secret(g.p.RefreshToken, "refresh_token"); err == nil {
		rt = seed
	} else {
		return g.oauthProvider.Obtain(ctx, prev)
	}
	return g.tokenCall(ctx, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, "refresh_token", "the refresh token", prev, rt)
}

// clientCredentialsGrant is RFC 6749 4.4, with the profile's scopes and
// audience.
func (g *generic) clientCredentialsGrant(ctx context.Context) (*token.Token, error) {
	form := url.Values{"grant_type": {"client_credentials"}}
	g.requested(form)
	what := "the credentials"
	if g.p.AuthStyle == "private_key_jwt" {
		what = "the client assertion"
	}
	return g.tokenCall(ctx, form, "client_credentials", what, nil, "")
}

// requested adds what the profile asks for to a grant or an authorization
// request: its scopes and its audience (Hydra, Auth0 and Okta take
// `audience` on every grant, not only on token exchange).
func (g *generic) requested(form url.Values) {
	if len(g.p.Scopes) > 0 {
		form.Set("scope", joinScopes(g.p.Scopes))
	}
	if g.p.Audience != "" {
		form.Set("audience", g.p.Audience)
	}
}

// checkHeader validates a header template such as "X-Auth-Token: {token}".
func checkHeader(tmpl string) error {
	name, value, ok := strings.Cut(tmpl, ":")
	if !ok || strings.TrimSpace(name) == "" || strings.ContainsAny(strings.TrimSpace(name), " \t") {
		return errHeader
	}
	if !strings.Contains(value, "{token}") {
		return errHeader
	}
	return nil
}

var errHeader = headerError("must look like \"Name: value with {token}\", e.g. \"Authorization: Bearer {token}\"")

type headerError string

func (e headerError) Error() string { return string(e) }
