package provider

import (
	"context"
	"net/http"
	"strings"

	"golang.org/x/net/http/httpguts"

	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/internal/httpx"
	"github.com/tokenbroker/tokenbroker/token"
)

// static is a fixed API key from a secret reference (Mist, Meraki), attached
// by a header template. It never expires and is never stored: the secret
// reference is the source of truth.
type static struct {
	p       *config.Profile
	env     Env
	header  string
	apiBase string
}

func newStatic(p *config.Profile, env Env) (Provider, error) {
	if !p.APIKey.IsSet() {
		return nil, configErr(p, "a static profile needs `api_key`")
	}
	s := &static{p: p, env: env, header: bearer}
	if p.Header != "" {
		if err := checkHeader(p.Header); err != nil {
			return nil, configErr(p, "header: %v", err)
		}
		s.header = p.Header
	}
	if p.BaseURL != "" {
		u, err := httpx.CheckURL(strings.TrimRight(p.BaseURL, "/"))
		if err != nil {
			return nil, configErr(p, "base_url: %v", err)
		}
		s.apiBase = u.String()
	}
	return s, nil
}

func (s *static) Obtain(context.Context, *token.Token) (*token.Token, error) {
	key, err := s.p.APIKey.Resolve()
	if err != nil {
		return nil, configErr(s.p, "api_key: %v", err)
	}
	if !httpguts.ValidHeaderFieldValue(key) {
		return nil, configErr(s.p, "api_key holds a control character (a CR or LF inside it?), which no header may carry")
	}
	return &token.Token{AccessToken: key, Grant: "static", ObtainedAt: s.env.Now()}, nil
}

func (s *static) Headers(tok *token.Token) http.Header {
	name, value := renderHeader(s.header, tok.AccessToken)
	return http.Header{name: {value}} // spelled as configured
}

func (s *static) Describe() Description {
	d := Description{Vendor: "static key", APIBase: s.apiBase, Stateless: true}
	if rl := s.p.RateLimit; rl != nil {
		d.Limits = Limits{PerSecond: rl.PerSecond, PerDay: rl.PerDay}
	}
	return d
}
