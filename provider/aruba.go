package provider

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/failure"
	"github.com/tokenbroker/tokenbroker/token"
)

// aruba adds Aruba Central's OAuth grant (seed 004, steps 1-6) to the
// data-driven provider: login with a CSRF token and session cookie, the
// optional MSP client-credentials step, an auth code exchanged within 300 s,
// and the delete call.
type aruba struct{ *oauthProvider }

// Paths of the OAuth grant on the gateway host.
const (
	arubaLoginPath  = "/oauth2/authorize/central/api/login"
	arubaMSPPath    = "/oauth2/authorize/central/api/client_credentials"
	arubaAuthPath   = "/oauth2/authorize/central/api"
	arubaStepPerSec = 1 // seed 004: the first three steps allow 1 call/s each
	// arubaStepMargin is added to the step's second: two calls paced
	// exactly a second apart may reach the vendor less than a second apart
	// when the first was delayed on the way.
	arubaStepMargin   = 150 * time.Millisecond
	arubaDefaultScope = "all"
)

// arubaStepEvery is the pace of each of Aruba's first three login steps
// per gateway endpoint, so repeated logins never draw a 429.
const arubaStepEvery = time.Second/arubaStepPerSec + arubaStepMargin

// stepAttempts bounds the retries of a login step that drew a 429: another
// process (or person) may have used the step within the same second.
const stepAttempts = 3

// step sends one of the first three OAuth steps, paced, and retries a 429
// after a second (or the server's Retry-After). The steps create nothing
// that a retry could duplicate.
func (a *aruba) step(ctx context.Context, req request) (*response, error) {
	for attempt := 1; ; attempt++ {
		if err := a.env.Pacer.Wait(ctx, req.URL, arubaStepEvery); err != nil {
			return nil, err
		}
		resp, err := call(ctx, a.env.HTTP, req)
		if err == nil || resp == nil || resp.Status != http.StatusTooManyRequests || attempt == stepAttempts {
			return resp, err
		}
		wait := retryAfter(resp.raw)
		if wait <= 0 {
			wait = time.Second
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

// session is a logged-in gateway session.
type session struct{ csrf, cookie string }

func (s session) header() http.Header {
	return http.Header{"X-Csrf-Token": {s.csrf}, "Cookie": {"session=" + s.cookie}}
}

// Login implements Loginer.
func (a *aruba) Login(ctx context.Context, in Prompter) (*token.Token, error) {
	if a.p.CustomerID == "" {
		return nil, configErr(a.p, "Aruba Central login needs `customer_id`")
	}
	c, err := a.client(nil)
	if err != nil {
		return nil, err
	}
	sess, err := a.login(ctx, c.ID, in)
	if err != nil {
		return nil, err
	}
	var minted map[string]string
	if a.p.MSP {
		if c, err = a.mspClient(ctx, sess, c.ID); err != nil {
			return nil, err
		}
		minted = map[string]string{"client_id": c.ID, "client_secret": c.Secret}
	}
	code, err := a.authCode(ctx, sess, c.ID)
	if err != nil {
		return nil, err
	}
	t, err := a.exchange(ctx, c, code)
	if err != nil {
		return nil, err
	}
	t.Secrets = minted
	return t, nil
}

// login is step 1: JSON credentials in, csrftoken and session cookies out.
func (a *aruba) login(ctx context.Context, clientID string, in Prompter) (session, error) {
	user, err := ask(a.p, a.p.Username, "username", "Aruba Central username", false, in)
	if err != nil {
		return session{}, err
	}
	pass, err := ask(a.p, a.p.Password, "password", "Aruba Central password", true, in)
	if err != nil {
		return session{}, err
	}
	endpoint := a.hostBase + arubaLoginPath
	resp, err := a.step(ctx, request{
		Method: http.MethodPost, URL: endpoint,
		Query: url.Values{"client_id": {clientID}},
		JSON:  map[string]string{"username": user, "password": pass},
	})
	if err != nil {
		return session{}, classify(err, a.loginSite(endpoint, "the username or password"))
	}
	var s session
	for _, ck := range resp.raw.Cookies() {
		switch ck.Name {
		case "csrftoken":
			s.csrf = ck.Value
		case "session":
			s.cookie = ck.Value
		}
	}
	if s.csrf == "" || s.cookie == "" {
		return session{}, &failure.Error{Kind: failure.Protocol, Profile: a.p.Name, Endpoint: endpoint,
			Msg: "login answered without the csrftoken and session cookies"}
	}
	return s, nil
}

// mspClient is step 2: an MSP mints client credentials for its customer.
func (a *aruba) mspClient(ctx context.Context, s session, mspClientID string) (clientAuth, error) {
	endpoint := a.hostBase + arubaMSPPath
	resp, err := a.step(ctx, request{
		Method: http.MethodPost, URL: endpoint, Header: s.header(),
		Query: url.Values{"client_id": {mspClientID}},
		JSON:  map[string]string{"customer_id": a.p.CustomerID},
	})
	if err != nil {
		return clientAuth{}, classify(err, a.loginSite(endpoint, "the MSP client credentials request"))
	}
	m, err := resp.fields()
	if err != nil || str(m["client_id"]) == "" || str(m["client_secret"]) == "" {
		return clientAuth{}, &failure.Error{Kind: failure.Protocol, Profile: a.p.Name, Endpoint: endpoint,
			Msg: "the MSP step answered without client_id and client_secret"}
	}
	return clientAuth{str(m["client_id"]), str(m["client_secret"])}, nil
}

// authCode is step 3; the code must be exchanged within 300 s.
func (a *aruba) authCode(ctx context.Context, s session, clientID string) (string, error) {
	endpoint := a.hostBase + arubaAuthPath
	if err := a.env.Pacer.Wait(ctx, endpoint, arubaStepEvery); err != nil {
		return "", err
	}
	scope := arubaDefaultScope
	if slices.Contains(a.p.Scopes, "read") && !slices.Contains(a.p.Scopes, "all") {
		scope = "read"
	}
	resp, err := call(ctx, a.env.HTTP, request{
		Method: http.MethodPost, URL: endpoint, Header: s.header(),
		Query: url.Values{"client_id": {clientID}, "response_type": {"code"}, "scope": {scope}},
		JSON:  map[string]string{"customer_id": a.p.CustomerID},
	})
	if err != nil {
		return "", classify(err, a.loginSite(endpoint, "the authorization code request"))
	}
	m, err := resp.fields()
	if err != nil || str(m["auth_code"]) == "" {
		return "", &failure.Error{Kind: failure.Protocol, Profile: a.p.Name, Endpoint: endpoint,
			Msg: "the authorization step answered without auth_code"}
	}
	return str(m["auth_code"]), nil
}

// exchange is step 4, with parameters in the query string like refresh.
func (a *aruba) exchange(ctx context.Context, c clientAuth, code string) (*token.Token, error) {
	now := a.env.Now()
	req := request{Method: http.MethodPost, URL: a.tokenURL, Query: url.Values{
		"grant_type": {"authorization_code"}, "code": {code},
	}}
	a.placeClient(&req, c)
	s := a.loginSite(a.tokenURL, "the authorization code")
	resp, err := call(ctx, a.env.HTTP, req)
	if err != nil {
		return nil, classify(err, s)
	}
	t, err := a.parse(resp, "authorization_code", now)
	if err != nil {
		return nil, classify(err, s)
	}
	a.carryOver(t, nil, "")
	return t, nil
}

// Revoke implements Revoker with step 6, which needs a logged-in session.
func (a *aruba) Revoke(ctx context.Context, tok *token.Token, in Prompter) error {
	if a.p.CustomerID == "" {
		return configErr(a.p, "revoking an Aruba Central token needs `customer_id`")
	}
	if tok.Grant == "import" && !a.p.Username.IsSet() {
		// The delete call needs a login session, which an SSO user (the
		// reason to import a token) cannot open: forget it here and say
		// where it is revoked.
		return fmt.Errorf("%w: Central deletes a token only in a login session, which an imported token's SSO user cannot open; "+
			"delete it in Central (API Gateway > My Apps & Tokens), or set `username` and `password` to delete it from here", ErrNoRevocation)
	}
	c, err := a.client(nil)
	if err != nil {
		return err
	}
	sess, err := a.login(ctx, c.ID, in)
	if err != nil {
		return err
	}
	endpoint := a.hostBase + a.v.RevokePath
	if a.p.RevocationURL != "" {
		endpoint = a.p.RevocationURL
	}
	_, err = call(ctx, a.env.HTTP, request{
		Method: http.MethodDelete, URL: endpoint, Header: sess.header(),
		JSON: map[string]string{"customer_id": a.p.CustomerID, "access_token": tok.AccessToken},
	})
	s := a.loginSite(endpoint, "the delete request")
	s.endpointName, s.missingHint = "token delete call", "set `revocation_url` to the delete call's URL (the path is weakly documented)"
	return classify(err, s)
}

func (a *aruba) loginSite(endpoint, what string) site {
	s := a.site(endpoint, what)
	s.hint = "check username, password, client_id and customer_id; SSO users cannot use this grant: download a token and run `tokenbroker import " + a.p.Name + " FILE`"
	return s
}

// ask resolves a secret reference, or asks at the terminal when none is set.
func ask(p *config.Profile, s config.Secret, field, label string, secret bool, in Prompter) (string, error) {
	if s.IsSet() {
		v, err := s.Resolve()
		if err != nil {
			return "", configErr(p, "%s: %v", field, err)
		}
		return v, nil
	}
	if in == nil {
		return "", configErr(p, "`%s` is not set and there is no terminal to ask: set it to env:NAME or file:PATH", field)
	}
	v, err := in.Prompt(label, secret)
	if errors.Is(err, ErrNoTerminal) {
		return "", configErr(p, "`%s` is not set and there is no terminal to ask: set it to env:NAME or file:PATH", field)
	}
	if err != nil {
		return "", configErr(p, "reading %s: %v", field, err)
	}
	return v, nil
}
