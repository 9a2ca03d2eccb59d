package provider

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

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
	Issuer        string `json:"issuer"`
}

// discoveryTimeout bounds the discovery request.
const discoveryTimeout = 15 * time.Second

// discover fills the endpoints the profile does not set from the issuer's
// OpenID (or RFC 8414) metadata, once. A document naming another issuer is
// refused: it would send the client's credentials to whoever served it.
func (g *generic) discover(ctx context.Context) error {
	if g.p.Issuer == "" {
		return nil
	}
	g.once.Do(func() {
		issuer := strings.TrimRight(g.p.Issuer, "/")
		var doc endpoints
		var err error
		for _, path := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
			if doc, err = g.fetchMetadata(ctx, issuer+path); err == nil {
				break
			}
		}
		if err != nil {
			g.found = &failure.Error{Kind: failure.Config, Profile: g.p.Name, Endpoint: issuer, Msg: "OpenID discovery failed", Err: err,
				Hint: "check `issuer`, or set `token_url` (and `revocation_url`, `introspection_url`) instead"}
			return
		}
		if strings.TrimRight(doc.Issuer, "/") != issuer {
			g.found = &failure.Error{Kind: failure.Config, Profile: g.p.Name, Endpoint: issuer,
				Msg:  "the discovery document names another issuer (" + doc.Issuer + ")",
				Hint: "set `issuer` to the server's own issuer URL; tokenbroker will not send credentials to endpoints another issuer announces"}
			return
		}
		for _, f := range []struct {
			have *string
			doc  string
		}{{&g.endpoints.Token, doc.Token}, {&g.endpoints.Revocation, doc.Revocation}, {&g.endpoints.Introspection, doc.Introspection},
			{&g.endpoints.Authorization, doc.Authorization}, {&g.endpoints.Device, doc.Device}} {
			if *f.have == "" && f.doc != "" {
				if _, err := httpx.CheckURL(f.doc); err != nil {
					g.found = &failure.Error{Kind: failure.Config, Profile: g.p.Name, Endpoint: issuer, Msg: "the discovery document has an unusable endpoint", Err: err}
					return
				}
				*f.have = f.doc
			}
		}
		if g.endpoints.Token == "" {
			g.found = &failure.Error{Kind: failure.Config, Profile: g.p.Name, Endpoint: issuer, Msg: "the discovery document has no token_endpoint"}
			return
		}
		g.tokenURL = g.endpoints.Token
	})
	return g.found
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
		return doc, errors.New("the discovery document is not JSON")
	}
	return doc, nil
}
