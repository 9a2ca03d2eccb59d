package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/tokenbroker/tokenbroker/failure"
	"github.com/tokenbroker/tokenbroker/internal/httpx"
)

// endpoints of an authorization server, configured or discovered.
type endpoints struct {
	Token         string `json:"token_endpoint"`
	Authorization string `json:"authorization_endpoint"`
	Revocation    string `json:"revocation_endpoint"`
	Introspection string `json:"introspection_endpoint"`
	Device        string `json:"device_authorization_endpoint"`
	JWKS          string `json:"jwks_uri"`
	Issuer        string `json:"issuer"`
}

// discoveryTimeout bounds the discovery request.
const discoveryTimeout = 15 * time.Second

// discover fills the endpoints the profile does not set from the issuer's
// OpenID (or RFC 8414) metadata. A document naming another issuer is
// refused: it would send the client's credentials to whoever served it.
// What a document that answered says, good or wrong, is kept; an issuer
// that could not be reached (down, timing out, 5xx, 429) is transient: the
// call fails as unreachable and discovery is tried again, no more often
// than discoveryBackoff allows.
func (g *generic) discover(ctx context.Context) error {
	if g.p.Issuer == "" {
		return nil
	}
	g.discoveryMu.Lock()
	defer g.discoveryMu.Unlock()
	if g.discovered {
		return g.found
	}
	now := g.env.Now()
	if g.transient != nil && now.Before(g.retryAt) {
		return g.transient
	}
	issuer := strings.TrimRight(g.p.Issuer, "/")
	var doc endpoints
	var err error
	for _, path := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
		if doc, err = g.fetchMetadata(ctx, issuer+path); err == nil {
			break
		}
	}
	if err != nil && unreachable(err) {
		g.failures++
		wait := min(discoveryBackoff<<min(g.failures-1, 6), discoveryBackoffMax)
		g.retryAt = now.Add(wait)
		g.transient = &failure.Error{Kind: failure.Unreachable, Profile: g.p.Name, Endpoint: issuer,
			Msg: "OpenID discovery could not reach the issuer", Err: err,
			Hint: fmt.Sprintf("tokenbroker tries again in %s; check the network and `issuer`", wait)}
		return g.transient
	}
	g.discovered, g.transient = true, nil
	g.found = g.applyMetadata(issuer, doc, err)
	return g.found
}

// discoveryBackoff is the first wait after an unreachable issuer; it
// doubles with each failure up to discoveryBackoffMax.
const (
	discoveryBackoff    = 5 * time.Second
	discoveryBackoffMax = 5 * time.Minute
)

// unreachable says whether a failed metadata fetch is the network's or the
// server's passing trouble rather than an answer.
func unreachable(err error) bool {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		return status >= 500 || status == http.StatusTooManyRequests || status == http.StatusRequestTimeout
	}
	return !errors.Is(err, errInvalidJSON) && !errors.Is(err, httpx.ErrHTML) && !errors.Is(err, httpx.ErrTooLarge) &&
		!errors.Is(err, httpx.ErrPlainHTTP) && !errors.Is(err, httpx.ErrRedirect) && !httpx.IsTLSVerification(err)
}

// applyMetadata takes the endpoints of a document that answered, or says
// why it cannot be used.
func (g *generic) applyMetadata(issuer string, doc endpoints, err error) error {
	if err != nil {
		return &failure.Error{Kind: failure.Config, Profile: g.p.Name, Endpoint: issuer, Msg: "OpenID discovery failed", Err: err,
			Hint: "check `issuer`, or set `token_url` (and `revocation_url`, `introspection_url`) instead"}
	}
	if strings.TrimRight(doc.Issuer, "/") != issuer {
		return &failure.Error{Kind: failure.Config, Profile: g.p.Name, Endpoint: issuer,
			Msg:  "the discovery document names another issuer (" + doc.Issuer + ")",
			Hint: "set `issuer` to the server's own issuer URL; tokenbroker will not send credentials to endpoints another issuer announces"}
	}
	for _, f := range []struct {
		have *string
		doc  string
	}{{&g.endpoints.Token, doc.Token}, {&g.endpoints.Revocation, doc.Revocation}, {&g.endpoints.Introspection, doc.Introspection},
		{&g.endpoints.Authorization, doc.Authorization}, {&g.endpoints.Device, doc.Device}, {&g.endpoints.JWKS, doc.JWKS}} {
		if *f.have == "" && f.doc != "" {
			if _, err := httpx.CheckURL(f.doc); err != nil {
				return &failure.Error{Kind: failure.Config, Profile: g.p.Name, Endpoint: issuer, Msg: "the discovery document has an unusable endpoint", Err: err}
			}
			*f.have = f.doc
		}
	}
	if g.endpoints.Token == "" {
		return &failure.Error{Kind: failure.Config, Profile: g.p.Name, Endpoint: issuer, Msg: "the discovery document has no token_endpoint"}
	}
	g.tokenURL = g.endpoints.Token
	g.endpoints.Issuer = doc.Issuer // what an id_token's iss must say, exactly
	return nil
}

func (g *generic) fetchMetadata(ctx context.Context, url string) (endpoints, error) {
	var doc endpoints
	ctx, cancel := context.WithTimeout(ctx, discoveryTimeout)
	defer cancel()
	resp, err := call(ctx, g.env.HTTP, request{Method: http.MethodGet, URL: url})
	if err != nil {
		return doc, httpx.WithoutURL(err)
	}
	if err := json.Unmarshal(resp.Body, &doc); err != nil {
		return doc, httpx.Because(errors.New("the discovery document is not JSON"), errInvalidJSON)
	}
	return doc, nil
}
