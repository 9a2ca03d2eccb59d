package provider

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"net/url"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/token"
)

// clientAssertionType is RFC 7523's client authentication by a signed JWT.
const clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// defaultAssertionLifetime is how long a signed assertion is valid.
const defaultAssertionLifetime = 5 * time.Minute

// signingKey reads `private_key` (PEM: PKCS#8, PKCS#1 RSA or SEC1 EC) and
// picks the JWS algorithm that fits it.
func (g *generic) signingKey() (crypto.Signer, jwt.SigningMethod, error) {
	text, err := g.secret(g.p.PrivateKey, "private_key")
	if err != nil {
		return nil, nil, err
	}
	block, _ := pem.Decode([]byte(text))
	if block == nil {
		return nil, nil, configErr(g.p, "private_key is not a PEM key: give a PKCS#8, PKCS#1 (RSA) or SEC1 (EC) private key")
	}
	var key any
	if key, err = x509.ParsePKCS8PrivateKey(block.Bytes); err != nil {
		if key, err = x509.ParsePKCS1PrivateKey(block.Bytes); err != nil {
			key, err = x509.ParseECPrivateKey(block.Bytes)
		}
	}
	if err != nil {
		return nil, nil, configErr(g.p, "private_key does not parse as a private key: %v", err)
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return k, jwt.SigningMethodRS256, nil
	case *ecdsa.PrivateKey:
		switch k.Curve.Params().BitSize {
		case 256:
			return k, jwt.SigningMethodES256, nil
		case 384:
			return k, jwt.SigningMethodES384, nil
		}
	}
	return nil, nil, configErr(g.p, "private_key: use an RSA or an EC P-256/P-384 key")
}

// signAssertion signs claims with the profile's private key, adding iat,
// exp and a fresh jti.
func (g *generic) signAssertion(claims jwt.MapClaims) (string, error) {
	key, method, err := g.signingKey()
	if err != nil {
		return "", err
	}
	c := g.p.AssertionClaims
	if c == nil {
		c = &config.AssertionClaims{}
	}
	life := c.Lifetime
	if life <= 0 {
		life = defaultAssertionLifetime
	}
	now := g.env.Now()
	claims["iat"], claims["exp"], claims["jti"] = now.Unix(), now.Add(life).Unix(), random(18)
	t := jwt.NewWithClaims(method, claims)
	if c.KeyID != "" {
		t.Header["kid"] = c.KeyID
	}
	s, err := t.SignedString(key)
	if err != nil {
		return "", configErr(g.p, "signing the assertion: %v", err)
	}
	return s, nil
}

// jwtBearer is RFC 7523's grant: a ready assertion from `assertion`, or one
// signed here from `private_key` and `assertion_claims`.
func (g *generic) jwtBearer(ctx context.Context) (*token.Token, error) {
	assertion, err := "", error(nil)
	if g.p.Assertion.IsSet() {
		assertion, err = g.secret(g.p.Assertion, "assertion")
	} else {
		c := g.p.AssertionClaims
		if c == nil || c.Issuer == "" || c.Subject == "" {
			return nil, configErr(g.p, "the jwt_bearer grant needs `assertion`, or `private_key` with `assertion_claims` iss and sub")
		}
		aud := c.Audience
		if aud == "" {
			aud = g.tokenURL
		}
		assertion, err = g.signAssertion(jwt.MapClaims{"iss": c.Issuer, "sub": c.Subject, "aud": aud})
	}
	if err != nil {
		return nil, err
	}
	form := url.Values{"grant_type": {jwtBearerGrant}, "assertion": {assertion}}
	if len(g.p.Scopes) > 0 {
		form.Set("scope", joinScopes(g.p.Scopes))
	}
	return g.tokenCall(ctx, form, "jwt_bearer", "the assertion", nil, "")
}

// tokenCall posts a grant to the token endpoint and reads the token,
// carrying over from prev what the answer leaves out (used is the refresh
// token presented, if any).
func (g *generic) tokenCall(ctx context.Context, form url.Values, grant, what string, prev *token.Token, used string) (*token.Token, error) {
	now := g.env.Now()
	s := g.site(g.tokenURL, what)
	resp, err := g.clientCall(ctx, g.tokenURL, form)
	if err != nil {
		return nil, classify(err, s)
	}
	t, err := g.parse(resp, grant, now)
	if err != nil {
		return nil, classify(err, s)
	}
	g.carryOver(t, prev, used)
	return t, nil
}

// authenticate puts the client's authentication on a request as the
// profile says: a signed client assertion, the secret (Basic or body), or
// for a public client just its id.
func (g *generic) authenticate(req *request) error {
	id, err := g.secret(g.p.ClientID, "client_id")
	if err != nil {
		return err
	}
	switch {
	case g.p.AuthStyle == "private_key_jwt":
		a, err := g.signAssertion(jwt.MapClaims{"iss": id, "sub": id, "aud": g.tokenURL})
		if err != nil {
			return err
		}
		req.Form.Set("client_id", id)
		req.Form.Set("client_assertion_type", clientAssertionType)
		req.Form.Set("client_assertion", a)
	case g.p.ClientSecret.IsSet():
		c, err := g.client(nil)
		if err != nil {
			return err
		}
		g.placeClient(req, c)
	default:
		req.Form.Set("client_id", id)
	}
	return nil
}

func joinScopes(s []string) string {
	out := ""
	for i, v := range s {
		if i > 0 {
			out += " "
		}
		out += v
	}
	return out
}
