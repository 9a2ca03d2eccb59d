package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v3"
	"github.com/golang-jwt/jwt/v5"

	"github.com/tokenbroker/tokenbroker/failure"
	"github.com/tokenbroker/tokenbroker/token"
)

// idTokenAlgs are the signatures an id_token may carry: asymmetric only,
// so a server's keys published in its JWKS are what proves it.
var idTokenAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// wantsOpenID reports whether the login asks for an OpenID id_token.
func (g *generic) wantsOpenID() bool { return slices.Contains(g.p.Scopes, "openid") }

// idTokenOf is the id_token a login's answer carried, "" when none.
func (g *generic) idTokenOf(t *token.Token) string {
	if g.tokenField == "id_token" {
		return t.AccessToken
	}
	return t.Secrets["id_token"]
}

// verifyIDToken checks a login's id_token as OpenID Connect Core 3.1.3.7
// says: signed by a key of the server's JWKS, issued by the issuer, for
// this client, not expired on tokenbroker's clock, and carrying the nonce
// the authorization request sent. Without a JWKS (no discovery, no
// jwks_url) it cannot be checked and is handed on as it came, with a
// warning.
func (g *generic) verifyIDToken(ctx context.Context, raw, nonce string) error {
	fail := func(err error) error {
		return &failure.Error{Kind: failure.Protocol, Profile: g.p.Name, Endpoint: g.tokenURL,
			Msg: "the login's id_token does not verify", Err: err,
			Hint: "check `issuer` (or jwks_url) and client_id; a login is not accepted with an id_token that fails its checks"}
	}
	if g.endpoints.JWKS == "" {
		g.env.Warn("profile " + g.p.Name + ": the id_token is not verified: the server announces no jwks_uri (set `issuer` or `jwks_url`)")
		return nil
	}
	keys, err := g.fetchJWKS(ctx)
	if err != nil {
		return fail(err)
	}
	id, err := g.secret(g.p.ClientID, "client_id")
	if err != nil {
		return err
	}
	opts := []jwt.ParserOption{jwt.WithValidMethods(idTokenAlgs), jwt.WithAudience(id), jwt.WithExpirationRequired(),
		jwt.WithTimeFunc(g.env.Now), jwt.WithLeeway(time.Minute)}
	if iss := strings.TrimSpace(g.endpoints.Issuer); iss != "" {
		opts = append(opts, jwt.WithIssuer(iss))
	}
	claims := jwt.MapClaims{}
	_, err = jwt.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		for _, k := range keys.Keys {
			if (kid == "" || k.KeyID == kid) && k.Use != "enc" && k.Valid() {
				if pub := k.Public(); pub.Key != nil {
					return pub.Key, nil
				}
			}
		}
		return nil, fmt.Errorf("no key %q in the server's JWKS", kid)
	}, opts...)
	if err != nil {
		return fail(err)
	}
	if got, _ := claims["nonce"].(string); nonce != "" && got != nonce {
		return fail(errors.New("its nonce is not the one this login sent (a replayed or injected id_token)"))
	}
	return nil
}

// fetchJWKS reads the server's signing keys.
func (g *generic) fetchJWKS(ctx context.Context) (*jose.JSONWebKeySet, error) {
	ctx, cancel := context.WithTimeout(ctx, discoveryTimeout)
	defer cancel()
	resp, err := call(ctx, g.env.HTTP, request{Method: http.MethodGet, URL: g.endpoints.JWKS})
	if err != nil {
		return nil, fmt.Errorf("the JWKS at %s could not be read: %w", stripQuery(g.endpoints.JWKS), err)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(resp.Body, &set); err != nil || len(set.Keys) == 0 {
		return nil, fmt.Errorf("the JWKS at %s holds no keys", stripQuery(g.endpoints.JWKS))
	}
	return &set, nil
}
