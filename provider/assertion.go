package provider

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
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
	alg := ""
	if c := g.p.AssertionClaims; c != nil {
		alg = c.Algorithm
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		switch alg {
		case "", "RS256":
			return k, jwt.SigningMethodRS256, nil
		case "PS256":
			return k, jwt.SigningMethodPS256, nil
		}
		return nil, nil, configErr(g.p, "assertion_claims.alg %q does not fit an RSA key: use RS256 or PS256", alg)
	case *ecdsa.PrivateKey:
		switch k.Curve.Params().BitSize {
		case 256:
			return k, jwt.SigningMethodES256, nil
		case 384:
			return k, jwt.SigningMethodES384, nil
		}
	case ed25519.PrivateKey:
		return k, jwt.SigningMethodEdDSA, nil
	}
	return nil, nil, configErr(g.p, "private_key: use an RSA, an EC P-256/P-384 or an Ed25519 key")
}

// thumbprint is the x5t#S256 header of the configured certificate (RFC
// 7515 4.1.8), or "" when none is configured.
func (g *generic) thumbprint() (string, error) {
	c := g.p.AssertionClaims
	if c == nil || !c.Certificate.IsSet() {
		return "", nil
	}
	text, err := g.secret(c.Certificate, "assertion_claims.certificate")
	if err != nil {
		return "", err
	}
	block, _ := pem.Decode([]byte(text))
	if block == nil || block.Type != "CERTIFICATE" {
		return "", configErr(g.p, "assertion_claims.certificate is not a PEM certificate")
	}
	if _, err := x509.ParseCertificate(block.Bytes); err != nil {
		return "", configErr(g.p, "assertion_claims.certificate does not parse: %v", err)
	}
	sum := sha256.Sum256(block.Bytes)
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

// signAssertion signs claims with the profile's private key (or, for a
// client_secret_jwt client's own assertion, its secret), adding iat, exp
// and a fresh jti.
func (g *generic) signAssertion(claims jwt.MapClaims, clientAuth bool) (string, error) {
	var key any
	var method jwt.SigningMethod
	if clientAuth && g.p.AuthStyle == "client_secret_jwt" {
		// A client assertion keyed by the secret; a jwt_bearer grant's
		// assertion is still signed with the private key.
		sec, err := g.secret(g.p.ClientSecret, "client_secret")
		if err != nil {
			return "", err
		}
		key, method = []byte(sec), jwt.SigningMethodHS256
	} else {
		k, m, err := g.signingKey()
		if err != nil {
			return "", err
		}
		key, method = k, m
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
	if method != jwt.SigningMethodHS256 {
		x5t, err := g.thumbprint()
		if err != nil {
			return "", err
		}
		if x5t != "" {
			t.Header["x5t#S256"] = x5t
		}
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
		assertion, err = g.signAssertion(jwt.MapClaims{"iss": c.Issuer, "sub": c.Subject, "aud": aud}, false)
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
	case g.p.AuthStyle == "private_key_jwt" || g.p.AuthStyle == "client_secret_jwt":
		aud := g.tokenURL
		if c := g.p.AssertionClaims; c != nil && c.Audience != "" && g.v.PrimaryGrant != "jwt_bearer" {
			aud = c.Audience // some servers want their issuer, not the token URL
		}
		a, err := g.signAssertion(jwt.MapClaims{"iss": id, "sub": id, "aud": aud}, true)
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
