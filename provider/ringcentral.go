package provider

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/tokenbroker/tokenbroker/failure"
	"github.com/tokenbroker/tokenbroker/token"
)

// jwtWarnAhead is how early an expiring JWT credential is reported.
const jwtWarnAhead = 30 * 24 * time.Hour

// ringCentral adds RingCentral's JWT credential checks and revoke. A JWT
// credential is bound to one environment; each exchange opens a session and
// the oldest of about five die, so it is exchanged only when no refresh
// token works.
type ringCentral struct{ *oauthProvider }

func newRingCentral(base *oauthProvider) (Provider, error) {
	return &ringCentral{base}, nil
}

// Obtain implements Provider, checking the JWT credential before an exchange.
func (r *ringCentral) Obtain(ctx context.Context, prev *token.Token) (*token.Token, error) {
	if !prev.RefreshUsable(r.env.Now()) {
		if err := r.checkJWT(); err != nil {
			return nil, err
		}
	}
	t, err := r.oauthProvider.Obtain(ctx, prev)
	return t, r.explain(err)
}

// checkJWT reads the credential's claims, when it decodes, to warn before it
// expires and to catch a credential made for the other environment.
func (r *ringCentral) checkJWT() error {
	jwt, err := r.secret(r.p.JWT, "jwt")
	if err != nil {
		return err
	}
	claims, ok := token.Claims(jwt)
	if !ok {
		return nil // not decodable: the server decides
	}
	if exp, ok := token.ClaimTime(claims, "exp"); ok {
		now := r.env.Now()
		switch {
		case !now.Before(exp):
			return &failure.Error{Kind: failure.Rejected, Profile: r.p.Name,
				Msg:  "the RingCentral JWT credential expired on " + exp.UTC().Format(time.DateOnly),
				Hint: "create a new JWT credential in the RingCentral Developer Console and update `jwt`"}
		case exp.Sub(now) < jwtWarnAhead:
			r.env.Warn("profile " + r.p.Name + ": the RingCentral JWT credential expires on " +
				exp.UTC().Format(time.DateOnly) + "; create a new one before then")
		}
	}
	if r.p.BaseURL == "" {
		if aud, _ := claims["aud"].(string); aud != "" {
			u, err := url.Parse(aud)
			if err == nil && u.Host != "" && !strings.EqualFold("https://"+u.Host, r.hostBase) {
				return r.wrongEnvironment()
			}
		}
	}
	return nil
}

// explain turns the server's audience complaint into plain words.
func (r *ringCentral) explain(err error) error {
	if failure.KindOf(err) != failure.Rejected {
		return err
	}
	msg := strings.ToLower(err.Error())
	if strings.Contains(msg, "environment") || strings.Contains(msg, "audience") {
		return r.wrongEnvironment()
	}
	return err
}

func (r *ringCentral) wrongEnvironment() error {
	env := r.p.Environment
	if env == "" {
		env = r.v.DefaultRegion
	}
	other := "sandbox"
	if env == "sandbox" {
		other = "production"
	}
	return &failure.Error{Kind: failure.Rejected, Profile: r.p.Name, Endpoint: r.tokenURL,
		Msg:  "the JWT credential belongs to the other RingCentral environment (this profile uses " + env + ")",
		Hint: "set `environment: " + other + "` or create a JWT credential for " + env}
}

// Revoke implements Revoker: it ends the whole session. It is not retried.
func (r *ringCentral) Revoke(ctx context.Context, tok *token.Token, _ Prompter) error {
	c, err := r.client(tok)
	if err != nil {
		return err
	}
	t := tok.RefreshToken
	if t == "" {
		t = tok.AccessToken
	}
	endpoint := r.hostBase + r.v.RevokePath
	if r.p.RevocationURL != "" {
		endpoint = r.p.RevocationURL
	}
	_, err = call(ctx, r.env.HTTP, request{Method: http.MethodPost, URL: endpoint, Basic: &c, Form: url.Values{"token": {t}}})
	return classify(err, r.site(endpoint, "the revoke request"))
}
