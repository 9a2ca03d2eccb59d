package provider

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/tokenbroker/tokenbroker/failure"
	"github.com/tokenbroker/tokenbroker/internal/httpx"
	"github.com/tokenbroker/tokenbroker/token"
)

// Browser opens a URL for the person logging in; the CLI implements it
// (and `--no-browser` makes it only print the URL).
type Browser interface {
	OpenURL(url string) error
}

// loginTimeout bounds how long `login` waits for the person.
const loginTimeout = 5 * time.Minute

// authCode is a generic oauth2 profile with the authorization_code grant
// and PKCE (S256): `login` listens on a loopback redirect, sends the person
// to the authorization endpoint, checks `state` and exchanges the code.
type authCode struct{ *generic }

// Login implements Loginer.
func (a *authCode) Login(ctx context.Context, in Prompter) (*token.Token, error) {
	if err := a.discover(ctx); err != nil {
		return nil, err
	}
	if a.endpoints.Authorization == "" {
		return nil, configErr(a.p, "the authorization_code grant needs `authorization_url` or an `issuer` that announces one")
	}
	redirect := a.p.RedirectURL
	if redirect == "" {
		redirect = "http://127.0.0.1:0/callback"
	}
	ru, err := url.Parse(redirect)
	if err != nil || ru.Scheme != "http" || !httpx.IsLoopback(ru.Hostname()) {
		return nil, configErr(a.p, "redirect_url must be http on a loopback address (127.0.0.1 or localhost), e.g. http://127.0.0.1:0/callback")
	}
	ln, err := net.Listen("tcp", ru.Host)
	if err != nil {
		return nil, configErr(a.p, "redirect_url %s: %v", redirect, err)
	}
	defer ln.Close()
	ru.Host = ln.Addr().String() // the random port, when 0 was asked for
	if ru.Path == "" {
		ru.Path = "/"
	}

	id, err := a.secret(a.p.ClientID, "client_id")
	if err != nil {
		return nil, err
	}
	cfg := oauth2.Config{ClientID: id, RedirectURL: ru.String(), Scopes: a.p.Scopes,
		Endpoint: oauth2.Endpoint{AuthURL: a.endpoints.Authorization, TokenURL: a.tokenURL}}
	state, verifier := random(24), oauth2.GenerateVerifier()
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}
	if a.p.Audience != "" {
		opts = append(opts, oauth2.SetAuthURLParam("audience", a.p.Audience))
	}
	for k, v := range a.p.AuthorizationParams {
		opts = append(opts, oauth2.SetAuthURLParam(k, v))
	}
	nonce := ""
	if a.wantsOpenID() {
		nonce = random(18)
		opts = append(opts, oauth2.SetAuthURLParam("nonce", nonce))
	}
	authURL := cfg.AuthCodeURL(state, opts...)

	type result struct {
		tok *token.Token
		err error
	}
	got := make(chan result, 1)
	var once sync.Once
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != ru.Path {
			http.NotFound(w, r)
			return
		}
		q := r.URL.Query()
		var res result
		switch {
		case subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(state)) != 1:
			res.err = &failure.Error{Kind: failure.Rejected, Profile: a.p.Name, Msg: "the redirect came back with a wrong state: refused (a forged or stale login)",
				Hint: "run `tokenbroker login " + a.p.Name + "` again"}
		case q.Get("error") != "":
			res.err = &failure.Error{Kind: failure.Rejected, Profile: a.p.Name, Msg: "the authorization server refused: " + q.Get("error") + " " + q.Get("error_description"),
				Hint: "approve the request in the browser, or check the client's redirect URIs and scopes"}
		case q.Get("code") == "":
			res.err = &failure.Error{Kind: failure.Protocol, Profile: a.p.Name, Msg: "the redirect carried no code"}
		}
		first := false
		once.Do(func() {
			first = true
			if res.err == nil {
				// The code is exchanged before the page says anything, so
				// "logged in" is only shown once it is true.
				res.tok, res.err = a.tokenCall(ctx, url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")},
					"redirect_uri": {ru.String()}, "code_verifier": {verifier}}, "authorization_code", "the authorization code", nil, "")
				if res.err == nil {
					if id := a.idTokenOf(res.tok); id != "" {
						if err := a.verifyIDToken(ctx, id, nonce); err != nil {
							res.tok, res.err = nil, err
						}
					}
				}
			}
			got <- res
		})
		switch {
		case !first:
			http.Error(w, "tokenbroker: this login was already answered; run `tokenbroker login` again if it failed", http.StatusConflict)
		case res.err != nil:
			// The reason goes to the terminal, where the vendor's text is
			// scrubbed of the profile's secrets first.
			http.Error(w, "tokenbroker: the login failed; the terminal says why.", http.StatusBadRequest)
		default:
			fmt.Fprintln(w, "tokenbroker: logged in; you may close this window.")
		}
	})}
	go srv.Serve(ln)
	defer srv.Close()

	a.env.Warn("open this URL to log in to profile " + a.p.Name + ": " + authURL)
	if b, ok := in.(Browser); ok {
		if err := b.OpenURL(authURL); err != nil {
			a.env.Warn("could not open a browser (" + err.Error() + "); open the URL above yourself")
		}
	}
	wctx, cancel := context.WithTimeout(ctx, loginTimeout)
	defer cancel()
	select {
	case res := <-got:
		return res.tok, res.err
	case <-wctx.Done():
		return nil, &failure.Error{Kind: failure.Other, Profile: a.p.Name, Msg: "no login came back in time", Err: wctx.Err()}
	}
}

func random(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(errors.New("crypto/rand failed: " + err.Error()))
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
