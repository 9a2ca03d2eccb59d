package provider

import (
	"context"
	"net/url"

	"github.com/tokenbroker/tokenbroker/token"
)

const (
	tokenExchangeGrant = "urn:ietf:params:oauth:grant-type:token-exchange"
	accessTokenType    = "urn:ietf:params:oauth:token-type:access_token"
)

// tokenExchange is RFC 8693: a token for this profile in exchange for a
// subject token, given or taken from another profile (as an MSP trades its
// own token for a tenant workspace's on HPE GreenLake).
func (g *generic) tokenExchange(ctx context.Context) (*token.Token, error) {
	subject := ""
	if g.p.SubjectProfile != "" {
		if g.env.Token == nil {
			return nil, configErr(g.p, "subject_profile needs a broker to get %q's token", g.p.SubjectProfile)
		}
		t, err := g.env.Token(ctx, g.p.SubjectProfile)
		if err != nil {
			return nil, err
		}
		subject = t.AccessToken
	} else {
		s, err := g.secret(g.p.SubjectToken, "subject_token")
		if err != nil {
			return nil, err
		}
		subject = s
	}
	typ := g.p.SubjectTokenType
	if typ == "" {
		typ = accessTokenType
	}
	form := url.Values{"grant_type": {tokenExchangeGrant}, "subject_token": {subject}, "subject_token_type": {typ}}
	for k, v := range map[string]string{"audience": g.p.Audience, "resource": g.p.Resource} {
		if v != "" {
			form.Set(k, v)
		}
	}
	if len(g.p.Scopes) > 0 {
		form.Set("scope", joinScopes(g.p.Scopes))
	}
	return g.tokenCall(ctx, form, "token_exchange", "the subject token", nil, "")
}
