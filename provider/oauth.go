package provider

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/failure"
	"github.com/tokenbroker/tokenbroker/internal/httpx"
	"github.com/tokenbroker/tokenbroker/token"
)

const jwtBearerGrant = "urn:ietf:params:oauth:grant-type:jwt-bearer"

// oauthProvider is every OAuth2-speaking vendor, driven by its Vendor data.
type oauthProvider struct {
	v          *Vendor
	p          *config.Profile
	env        Env
	tokenURL   string
	hostBase   string // scheme://host of the token endpoint, for the vendor's other auth paths
	apiBase    string
	tokenField string
}

func newOAuth(p *config.Profile, v *Vendor, env Env) (*oauthProvider, error) {
	for _, f := range v.Required {
		if !fieldSet(p, f) {
			return nil, configErr(p, "%s needs `%s`", v.Display, f)
		}
	}
	o := &oauthProvider{v: v, p: p, env: env, tokenField: "access_token"}
	switch {
	case p.BaseURL != "":
		u, err := httpx.CheckURL(strings.TrimRight(p.BaseURL, "/"))
		if err != nil {
			return nil, configErr(p, "base_url: %v", err)
		}
		o.apiBase = u.String()
		o.hostBase = u.Scheme + "://" + u.Host
	case len(v.Regions) > 0:
		name := p.Region
		if v.RegionKey == "environment" {
			name = p.Environment
		}
		if name == "" {
			name = v.DefaultRegion
		}
		if name == "" {
			return nil, configErr(p, "%s needs `%s` (one of %s) or `base_url`", v.Display, v.RegionKey, v.regionNames())
		}
		r, ok := v.Regions[strings.ToLower(name)]
		if !ok {
			return nil, configErr(p, "unknown %s %s %q: use one of %s", v.Display, v.RegionKey, name, v.regionNames())
		}
		o.apiBase, o.hostBase = "https://"+r.APIHost, "https://"+r.TokenHost
	}
	o.tokenURL = o.hostBase + strings.ReplaceAll(v.TokenPath, "{tenant_id}", url.PathEscape(p.TenantID))
	if p.TokenURL != "" {
		u, err := httpx.CheckURL(p.TokenURL)
		if err != nil {
			return nil, configErr(p, "token_url: %v", err)
		}
		o.tokenURL = u.String()
		if o.hostBase == "" {
			o.hostBase = u.Scheme + "://" + u.Host
		}
	}
	return o, nil
}

// fieldSet reports whether a required profile field has a value.
func fieldSet(p *config.Profile, f string) bool {
	switch f {
	case "client_id":
		return p.ClientID.IsSet()
	case "client_secret":
		return p.ClientSecret.IsSet()
	case "tenant_id":
		return p.TenantID != ""
	case "jwt":
		return p.JWT.IsSet()
	case "api_key":
		return p.APIKey.IsSet()
	case "base_url":
		return p.BaseURL != ""
	case "token_url":
		return p.TokenURL != ""
	}
	return false
}

func (o *oauthProvider) Describe() Description {
	l := o.v.Limits
	if rl := o.p.RateLimit; rl != nil {
		if rl.PerSecond > 0 {
			l.PerSecond = rl.PerSecond
		}
		if rl.PerDay > 0 {
			l.PerDay = rl.PerDay
		}
	}
	return Description{
		Vendor: o.v.Display, APIBase: o.apiBase, Limits: l, TenantHeader: o.v.TenantHeader, Tenants: o.v.Tenants, CredentialPaths: o.v.CredentialPaths,
		Refreshable: o.v.Refreshable, RefreshIdle: o.v.RefreshIdle,
		Interactive:     !o.reobtainable(),
		RefreshFallback: o.v.RefreshFallback || (o.p.RefreshFallback != nil && *o.p.RefreshFallback),
		SeedOnly:        o.v.PrimaryGrant == "refresh_token" && o.p.RefreshToken.IsSet(),
	}
}

// Headers renders the vendor's header template and the tenant header,
// each name spelled as the vendor documents it (`TenantID`,
// `x-rks-tenantid`), not in Go's canonical form: some clients and servers
// look names up case-sensitively.
func (o *oauthProvider) Headers(tok *token.Token) http.Header {
	name, value := renderHeader(o.v.Header, tok.AccessToken)
	h := http.Header{name: {value}}
	if o.v.TenantHeader != "" && o.p.DelegateTenant != "" {
		h[o.v.TenantHeader] = []string{o.p.DelegateTenant}
	}
	return h
}

// renderHeader splits "Name: value {token}" and fills in the token.
func renderHeader(tmpl, tok string) (string, string) {
	name, value, _ := strings.Cut(tmpl, ":")
	return strings.TrimSpace(name), strings.ReplaceAll(strings.TrimSpace(value), "{token}", tok)
}

func (o *oauthProvider) site(endpoint, what string) site {
	return site{
		profile: o.p.Name, vendor: o.v.Display, endpoint: endpoint, what: what,
		hint: strings.ReplaceAll(o.v.RejectHint, "{profile}", o.p.Name),
	}
}

// secret resolves a secret reference, naming the profile and field on error.
func (o *oauthProvider) secret(s config.Secret, field string) (string, error) {
	if !s.IsSet() {
		return "", configErr(o.p, "`%s` is not set", field)
	}
	v, err := s.Resolve()
	if err != nil {
		return "", configErr(o.p, "%s: %v", field, err)
	}
	return v, nil
}

// client returns the client credentials to present: the ones a flow minted
// and stored with the token (Aruba MSP), else the profile's.
func (o *oauthProvider) client(prev *token.Token) (clientAuth, error) {
	if prev != nil && prev.Secrets["client_id"] != "" {
		return clientAuth{prev.Secrets["client_id"], prev.Secrets["client_secret"]}, nil
	}
	id, err := o.secret(o.p.ClientID, "client_id")
	if err != nil {
		return clientAuth{}, err
	}
	sec, err := o.secret(o.p.ClientSecret, "client_secret")
	return clientAuth{id, sec}, err
}

// Obtain implements Provider.
func (o *oauthProvider) Obtain(ctx context.Context, prev *token.Token) (*token.Token, error) {
	if o.v.Refreshable && prev.RefreshUsable(o.env.Now()) {
		t, err := o.refresh(ctx, prev, prev.RefreshToken)
		if failure.KindOf(err) != failure.Rejected || !o.reobtainable() {
			return t, err
		}
		// The refresh token is dead but the primary grant needs none:
		// start over rather than stop.
	}
	return o.primary(ctx, prev)
}

// reobtainable reports whether the primary grant works without a person.
func (o *oauthProvider) reobtainable() bool {
	return o.v.PrimaryGrant == "client_credentials" || o.v.PrimaryGrant == "jwt_bearer" || o.v.PrimaryGrant == "token_exchange"
}

func (o *oauthProvider) primary(ctx context.Context, prev *token.Token) (*token.Token, error) {
	switch o.v.PrimaryGrant {
	case "client_credentials":
		return o.clientCredentials(ctx, nil)
	case "jwt_bearer":
		jwt, err := o.secret(o.p.JWT, "jwt")
		if err != nil {
			return nil, err
		}
		return o.clientCredentials(ctx, url.Values{"grant_type": {jwtBearerGrant}, "assertion": {jwt}})
	case "refresh_token":
		seed, err := o.secret(o.p.RefreshToken, "refresh_token")
		if err != nil {
			return nil, &failure.Error{Kind: failure.Rejected, Profile: o.p.Name, Msg: "no refresh token stored",
				Hint: "set `refresh_token` or run `tokenbroker import " + o.p.Name + " FILE`"}
		}
		return o.refresh(ctx, prev, seed)
	}
	return nil, &failure.Error{Kind: failure.Rejected, Profile: o.p.Name,
		Msg:  "no usable token stored: " + o.v.Display + " hands out tokens only by login or download",
		Hint: strings.ReplaceAll(o.v.RejectHint, "{profile}", o.p.Name)}
}

func (o *oauthProvider) clientCredentials(ctx context.Context, params url.Values) (*token.Token, error) {
	c, err := o.client(nil)
	if err != nil {
		return nil, err
	}
	grant := "client_credentials"
	if g := params.Get("grant_type"); g == jwtBearerGrant {
		grant = "jwt_bearer"
	}
	now := o.env.Now()
	s := o.site(o.tokenURL, "the credentials")
	if o.tokenField != "access_token" {
		// x/oauth2 insists on access_token; read the vendor's own field.
		form := url.Values{"grant_type": {"client_credentials"}}
		if len(o.p.Scopes) > 0 {
			form.Set("scope", strings.Join(o.p.Scopes, " "))
		}
		req := request{Method: http.MethodPost, URL: o.tokenURL, Form: form}
		o.placeClient(&req, c)
		resp, err := call(ctx, o.env.HTTP, req)
		if err != nil {
			return nil, classify(err, s)
		}
		t, err := o.parse(resp, grant, now)
		return t, classify(err, s)
	}
	cfg := clientcredentials.Config{
		ClientID: c.ID, ClientSecret: c.Secret, TokenURL: o.tokenURL,
		Scopes: o.p.Scopes, EndpointParams: params, AuthStyle: o.v.ClientAuth,
	}
	t, err := clientCredentials(ctx, o.env.HTTP, cfg, grant, now)
	return t, classify(err, s)
}

// placeClient puts client credentials where the vendor wants them.
func (o *oauthProvider) placeClient(req *request, c clientAuth) {
	if o.v.ClientAuth == oauth2.AuthStyleInHeader {
		req.Basic = &c
		return
	}
	vals := req.Form
	if o.v.RefreshInQuery {
		vals = req.Query
	}
	vals.Set("client_id", c.ID)
	vals.Set("client_secret", c.Secret)
}

// parse reads a token answer from a custom call.
func (o *oauthProvider) parse(resp *response, grant string, now time.Time) (*token.Token, error) {
	m, err := resp.fields()
	if err != nil {
		return nil, err
	}
	return build(func(k string) any { return m[k] }, o.tokenField, grant, now)
}

// refresh presents refreshToken and carries over what the answer leaves out.
func (o *oauthProvider) refresh(ctx context.Context, prev *token.Token, refreshToken string) (*token.Token, error) {
	c, err := o.client(prev)
	if err != nil {
		return nil, err
	}
	now := o.env.Now()
	s := o.site(o.tokenURL, "the refresh token")
	var t *token.Token
	if o.v.RefreshInQuery || o.tokenField != "access_token" {
		req := request{Method: http.MethodPost, URL: o.tokenURL, Query: url.Values{}, Form: url.Values{}}
		params := req.Form
		if o.v.RefreshInQuery {
			params = req.Query
			req.Form = nil
		}
		params.Set("grant_type", "refresh_token")
		params.Set("refresh_token", refreshToken)
		o.placeClient(&req, c)
		resp, cerr := call(ctx, o.env.HTTP, req)
		if cerr != nil {
			return nil, classify(cerr, s)
		}
		t, err = o.parse(resp, "refresh_token", now)
	} else {
		cfg := oauth2.Config{ClientID: c.ID, ClientSecret: c.Secret,
			Endpoint: oauth2.Endpoint{TokenURL: o.tokenURL, AuthStyle: o.v.ClientAuth}}
		t, err = refreshGrant(ctx, o.env.HTTP, cfg, refreshToken, now)
	}
	if err != nil {
		return nil, classify(err, s)
	}
	o.carryOver(t, prev, refreshToken)
	return t, nil
}

// carryOver keeps what a refresh answer does not repeat: the refresh token
// when none came back, the fallback to the one just used when it rotated,
// minted client credentials, and the vendor's descriptive fields.
func (o *oauthProvider) carryOver(t, prev *token.Token, used string) {
	if t.RefreshToken == "" {
		t.RefreshToken = used
		if prev != nil {
			t.RefreshExpiry = prev.RefreshExpiry
		}
	} else if t.RefreshToken != used {
		t.PrevRefreshToken = used
	}
	if t.RefreshExpiry.IsZero() && o.v.RefreshIdle > 0 {
		t.RefreshExpiry = t.ObtainedAt.Add(o.v.RefreshIdle)
	}
	if prev == nil {
		return
	}
	// Minted client credentials and the last id_token carry over; what the
	// answer brought anew (a fresh id_token) wins.
	for k, v := range prev.Secrets {
		if t.Secrets[k] == "" {
			if t.Secrets == nil {
				t.Secrets = map[string]string{}
			}
			t.Secrets[k] = v
		}
	}
	for k, v := range prev.Extra {
		if _, ok := t.Extra[k]; !ok {
			if t.Extra == nil {
				t.Extra = map[string]any{}
			}
			t.Extra[k] = v
		}
	}
}
