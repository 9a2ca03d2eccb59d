package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/tokenbroker/tokenbroker/internal/httpx"
	"github.com/tokenbroker/tokenbroker/token"
)

// request is one call to a vendor endpoint that x/oauth2 cannot express:
// parameters in the query string (Aruba), JSON bodies (Aruba's login
// steps), or an empty body (Catalyst Center).
type request struct {
	Method string
	URL    string
	Query  url.Values // added to the URL's query string
	Form   url.Values // sent as application/x-www-form-urlencoded
	JSON   any        // sent as application/json
	Basic  *clientAuth
	Header http.Header
}

type clientAuth struct{ ID, Secret string }

// response is a vendor answer read whole (within the body cap).
type response struct {
	Status int
	Header http.Header
	Body   []byte
	raw    *http.Response
}

// call sends req and reads the answer. A non-2xx answer is returned as an
// *oauth2.RetrieveError, the same error x/oauth2's flows return, so errors
// are classed in one place.
func call(ctx context.Context, hc *http.Client, req request) (*response, error) {
	u, err := url.Parse(req.URL)
	if err != nil {
		return nil, err
	}
	if len(req.Query) > 0 {
		q := u.Query()
		for k, vs := range req.Query {
			for _, v := range vs {
				q.Add(k, v)
			}
		}
		u.RawQuery = q.Encode()
	}
	var body io.Reader
	ctype := ""
	switch {
	case req.Form != nil:
		body, ctype = strings.NewReader(req.Form.Encode()), "application/x-www-form-urlencoded"
	case req.JSON != nil:
		b, err := json.Marshal(req.JSON)
		if err != nil {
			return nil, err
		}
		body, ctype = bytes.NewReader(b), "application/json"
	}
	hr, err := http.NewRequestWithContext(ctx, req.Method, u.String(), body)
	if err != nil {
		return nil, err
	}
	for k, vs := range req.Header {
		hr.Header[k] = vs
	}
	if ctype != "" {
		hr.Header.Set("Content-Type", ctype)
	}
	hr.Header.Set("Accept", "application/json")
	if req.Basic != nil {
		// RFC 6749 2.3.1: form-encode before Basic, as x/oauth2 does.
		hr.SetBasicAuth(url.QueryEscape(req.Basic.ID), url.QueryEscape(req.Basic.Secret))
	}
	resp, err := hc.Do(hr)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	out := &response{Status: resp.StatusCode, Header: resp.Header, Body: b, raw: resp}
	if resp.StatusCode/100 != 2 {
		re := &oauth2.RetrieveError{Response: resp, Body: b}
		var e struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		if json.Unmarshal(b, &e) == nil {
			re.ErrorCode, re.ErrorDescription = e.Error, e.Description
		}
		return out, re
	}
	return out, nil
}

// fields decodes a JSON object answer.
func (r *response) fields() (map[string]any, error) {
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(r.Body))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil, errInvalidJSON
	}
	return m, nil
}

var (
	errInvalidJSON = errors.New("answered invalid JSON")
	errNoToken     = errors.New("answered without an access token")
)

// extraFields are the non-secret response fields worth keeping.
var extraFields = []string{
	"scope", "owner_id", "endpoint_id", "appname", "authenticated_userid",
	"credential_id", "id", "refresh_token_expires_in",
}

// lookup reads one response field.
type lookup func(string) any

// build turns a token response into a Token. now is when the request was
// sent, so expiry errs on the early side.
func build(get lookup, tokenField, grant string, now time.Time) (*token.Token, error) {
	at := str(get(tokenField))
	if at == "" {
		return nil, errNoToken
	}
	t := &token.Token{
		AccessToken:  at,
		TokenType:    str(get("token_type")),
		RefreshToken: str(get("refresh_token")),
		Scope:        str(get("scope")),
		ObtainedAt:   now,
		Grant:        grant,
	}
	if s, ok := seconds(get("expires_in")); ok && s > 0 {
		t.Expiry = now.Add(s)
	} else {
		t.Expiry = jwtExpiry(at, now)
	}
	// refresh_token_expires_in is RingCentral's and Aruba's; Keycloak says
	// refresh_expires_in (0 there means an offline token that never ends).
	for _, f := range []string{"refresh_token_expires_in", "refresh_expires_in"} {
		if s, ok := seconds(get(f)); ok && s > 0 && t.RefreshExpiry.IsZero() {
			t.RefreshExpiry = now.Add(s)
		}
	}
	if id := str(get("id_token")); id != "" && tokenField != "id_token" {
		// An OpenID id_token is kept (sealed, with the other secrets) and
		// handed out on request: `token --id-token`, ?id_token=true.
		t.Secrets = map[string]string{"id_token": id}
	}
	for _, f := range extraFields {
		if v := get(f); v != nil && f != "scope" {
			if t.Extra == nil {
				t.Extra = map[string]any{}
			}
			t.Extra[f] = plain(v)
		}
	}
	return t, nil
}

// jwtExpiry is when an access token that is a JWT expires, for answers
// without expires_in (Catalyst Center's): its lifetime (exp - iat) counted
// from when the request was sent, so the server's clock does not matter;
// without iat, exp itself if it is still ahead. Zero when the token is no
// JWT or says nothing usable: it is then used until rejected.
func jwtExpiry(accessToken string, now time.Time) time.Time {
	claims, ok := token.Claims(accessToken)
	if !ok {
		return time.Time{}
	}
	exp, ok := token.ClaimTime(claims, "exp")
	if !ok {
		return time.Time{}
	}
	if iat, ok := token.ClaimTime(claims, "iat"); ok && exp.After(iat) {
		return now.Add(exp.Sub(iat))
	}
	if exp.After(now) {
		return exp
	}
	return time.Time{}
}

// seconds reads a duration given as a JSON number or a numeric string.
func seconds(v any) (time.Duration, bool) {
	f, ok := number(v)
	if !ok || f > float64(1<<62)/float64(time.Second) {
		return 0, false
	}
	return time.Duration(f * float64(time.Second)), true
}

// number reads a JSON number or a numeric string.
func number(v any) (float64, bool) {
	var f float64
	var err error
	switch x := v.(type) {
	case json.Number:
		f, err = x.Float64()
	case float64:
		f = x
	case int64:
		f = float64(x)
	case string:
		f, err = strconv.ParseFloat(strings.TrimSpace(x), 64)
	default:
		return 0, false
	}
	return f, err == nil
}

func str(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	}
	return ""
}

func plain(v any) any {
	if n, ok := v.(json.Number); ok {
		if i, err := n.Int64(); err == nil {
			return i
		}
		f, _ := n.Float64()
		return f
	}
	return v
}

// fromOAuth2 converts x/oauth2's token, taking expiry from expires_in on our
// clock rather than x/oauth2's wall clock, so tests can step time.
func fromOAuth2(ot *oauth2.Token, grant string, now time.Time) (*token.Token, error) {
	get := func(k string) any {
		switch k {
		case "access_token":
			return ot.AccessToken
		case "token_type":
			return ot.TokenType
		case "refresh_token":
			return ot.RefreshToken
		case "expires_in":
			if ot.ExpiresIn != 0 {
				return float64(ot.ExpiresIn)
			}
			return ot.Extra("expires_in") // x/oauth2 leaves ExpiresIn unset for a string
		}
		return ot.Extra(k)
	}
	return build(get, "access_token", grant, now)
}

// viaOAuth2 runs a call of x/oauth2 on hc and gives back the types of the
// failures x/oauth2 turns into text: what the client raised (an HTML page,
// a body over the cap, a refused redirect), and for a 2xx answer it read
// and refused, whether it was not JSON or had no access token.
func viaOAuth2[T any](ctx context.Context, hc *http.Client, tokenAnswer bool, call func(context.Context) (T, error)) (T, error) {
	cctx, cause := httpx.WithCause(context.WithValue(ctx, oauth2.HTTPClient, hc))
	v, err := call(cctx)
	var re *oauth2.RetrieveError
	if err == nil || errors.As(err, &re) {
		return v, err
	}
	err = cause.Explain(err)
	if errors.Is(err, httpx.ErrHTML) || errors.Is(err, httpx.ErrTooLarge) {
		return v, err
	}
	if status, body, whole := cause.Answer(); whole && status/100 == 2 {
		switch {
		case !json.Valid(body):
			err = httpx.Because(err, errInvalidJSON)
		case tokenAnswer:
			err = httpx.Because(err, errNoToken)
		}
	}
	return v, err
}

// clientCredentials runs the client_credentials grant, or another
// assertion-style grant through it (grant_type may be overridden by
// EndpointParams, which x/oauth2 allows for this purpose).
func clientCredentials(ctx context.Context, hc *http.Client, cfg clientcredentials.Config, grant string, now time.Time) (*token.Token, error) {
	ot, err := viaOAuth2(ctx, hc, true, cfg.Token)
	if err != nil {
		return nil, err
	}
	return fromOAuth2(ot, grant, now)
}

// refreshGrant runs the standard refresh_token grant. x/oauth2 keeps the
// old refresh token when the answer has none.
func refreshGrant(ctx context.Context, hc *http.Client, cfg oauth2.Config, refreshToken string, now time.Time) (*token.Token, error) {
	ot, err := viaOAuth2(ctx, hc, true, func(ctx context.Context) (*oauth2.Token, error) {
		return cfg.TokenSource(ctx, &oauth2.Token{RefreshToken: refreshToken}).Token()
	})
	if err != nil {
		return nil, err
	}
	return fromOAuth2(ot, "refresh_token", now)
}
