package provider

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/tokenbroker/tokenbroker/token"
)

// ErrNoRevocation means the provider has no way to revoke at the vendor
// (no revocation endpoint configured or discovered).
var ErrNoRevocation = errors.New("no revocation endpoint")

// Introspector is a provider that can ask the server about a token.
type Introspector interface {
	Introspect(ctx context.Context, tok *token.Token) (map[string]any, error)
}

// Revoke implements Revoker by RFC 7009: the refresh token when there is one
// (which ends the grant), else the access token.
func (g *generic) Revoke(ctx context.Context, tok *token.Token, _ Prompter) error {
	if err := g.discover(ctx); err != nil {
		return err
	}
	if g.endpoints.Revocation == "" {
		return ErrNoRevocation
	}
	form := url.Values{"token": {tok.AccessToken}, "token_type_hint": {"access_token"}}
	if tok.RefreshToken != "" {
		form = url.Values{"token": {tok.RefreshToken}, "token_type_hint": {"refresh_token"}}
	}
	_, err := g.clientCall(ctx, g.endpoints.Revocation, form)
	return classify(err, g.site(g.endpoints.Revocation, "the revocation request"))
}

// Introspect implements Introspector by RFC 7662.
func (g *generic) Introspect(ctx context.Context, tok *token.Token) (map[string]any, error) {
	if err := g.discover(ctx); err != nil {
		return nil, err
	}
	if g.endpoints.Introspection == "" {
		return nil, nil
	}
	resp, err := g.clientCall(ctx, g.endpoints.Introspection, url.Values{"token": {tok.AccessToken}, "token_type_hint": {"access_token"}})
	if err != nil {
		return nil, classify(err, g.site(g.endpoints.Introspection, "the introspection request"))
	}
	m, err := resp.fields()
	if err != nil {
		return nil, classify(err, g.site(g.endpoints.Introspection, "the introspection request"))
	}
	for k, v := range m {
		m[k] = plain(v)
	}
	return m, nil
}

// clientCall posts a form to an endpoint with the client authenticated.
func (g *generic) clientCall(ctx context.Context, endpoint string, form url.Values) (*response, error) {
	req := request{Method: http.MethodPost, URL: endpoint, Form: form}
	if err := g.authenticate(&req); err != nil {
		return nil, err
	}
	return call(ctx, g.env.HTTP, req)
}
