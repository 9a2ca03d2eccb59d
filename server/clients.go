package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	tokenbroker "github.com/tokenbroker/tokenbroker"
	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/failure"
	"github.com/tokenbroker/tokenbroker/proxy"
	"github.com/tokenbroker/tokenbroker/store"
)

// clientSet is the clients of the current configuration by the digests
// of their keys: only digests are kept.
type clientSet struct {
	keys []clientKey
}

type clientKey struct {
	hash   [32]byte
	client *config.Client
}

// newClientSet resolves the clients' keys. A key that two clients share,
// or that is the broker key, is refused: a call must name one caller.
func newClientSet(cfg *config.Config, brokerKey [32]byte) (*clientSet, error) {
	cs := &clientSet{}
	owner := map[[32]byte]string{}
	for _, name := range cfg.ClientNames() {
		c := cfg.Clients[name]
		hashes, err := c.KeyHashes()
		if err != nil {
			return nil, err
		}
		for _, h := range hashes {
			if h == brokerKey {
				return nil, failure.New(failure.Config, "clients.%s: its key is the broker key; give it a key of its own (`tokenbroker clients add %s`)", name, name)
			}
			if other, dup := owner[h]; dup && other != name {
				return nil, failure.New(failure.Config, "clients.%s and clients.%s have the same key: a key must name one client", other, name)
			}
			owner[h] = name
			cs.keys = append(cs.keys, clientKey{hash: h, client: c})
		}
	}
	return cs, nil
}

// find returns the client whose key this is, comparing with every key in
// constant time.
func (cs *clientSet) find(key []byte) *config.Client {
	if cs == nil || len(key) == 0 {
		return nil
	}
	h := sha256.Sum256(key)
	var found *config.Client
	for _, k := range cs.keys {
		if subtle.ConstantTimeCompare(h[:], k.hash[:]) == 1 {
			found = k.client
		}
	}
	return found
}

// callerKey is the context key of the caller of a request.
type callerKey struct{}

// clientOf is the client that made the request, nil for the administrator
// (the broker key).
func clientOf(r *http.Request) *config.Client {
	c, _ := r.Context().Value(callerKey{}).(*config.Client)
	return c
}

// refusal is a client's call refused before anything was sent.
type refusal struct {
	client, rule, profile, msg string
}

// refuse answers 403 naming the client, the rule and what to change, and
// counts and audits it (one audit record per client and rule per 10 s,
// with a count, so a script in a loop cannot flood the log).
func (s *Server) refuse(w http.ResponseWriter, rf refusal) {
	s.metrics.counter("tokenbroker_client_refusals_total", "client", rf.client, "rule", rf.rule).Inc()
	if n, ok := s.refusals.Allow(rf.client+"\x00"+rf.rule, time.Now()); ok && s.opts.Store != nil {
		msg := rf.msg
		if n > 0 {
			msg += fmt.Sprintf(" (and %d more like it)", n)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		s.opts.Store.Append(ctx, store.Event{Time: time.Now(), Profile: rf.profile, Action: "client_refused", Outcome: "failed",
			ErrorClass: "forbidden", Error: msg, Client: rf.client})
		cancel()
	}
	writeJSON(w, http.StatusForbidden, map[string]string{"error": "forbidden", "client": rf.client, "rule": rf.rule, "message": rf.msg})
}

// adminOnly refuses a client a route that is the administrator's.
func (s *Server) adminOnly(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if c := clientOf(r); c != nil {
			s.refuse(w, refusal{client: c.Name, rule: "admin", msg: fmt.Sprintf("client %q may not use %s %s: it is the administrator's, called with the broker key; clients reach GET /v1/profiles, their token routes (may: token) and the proxy",
				c.Name, r.Method, r.URL.Path)})
			return
		}
		next(w, r)
	}
}

// scope checks that a client may use the profile, or tenant, named.
func (s *Server) scope(w http.ResponseWriter, r *http.Request, c *config.Client, profile, tenantRef string) bool {
	var tenant *config.Tenant
	if tenantRef != "" {
		if _, t, err := s.Broker().Tenant(r.Context(), profile+"/"+tenantRef); err == nil {
			tenant = t
		}
	}
	if c.Covers(profile, tenant) {
		return true
	}
	name := profile
	if tenantRef != "" {
		name += "/" + tenantRef
	}
	s.refuse(w, refusal{client: c.Name, rule: "profiles", profile: profile,
		msg: fmt.Sprintf("client %q may not use %q: its profiles are %q; add %q to clients.%s.profiles to allow it", c.Name, name, c.Profiles, name, c.Name)})
	return false
}

// tokenGate lets a client read a token only with may: token, for a profile
// or tenant it may use.
func (s *Server) tokenGate(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c := clientOf(r)
		if c == nil {
			next(w, r)
			return
		}
		if c.May != config.MayToken {
			s.refuse(w, refusal{client: c.Name, rule: "may", profile: r.PathValue("name"),
				msg: fmt.Sprintf("client %q may only call through the proxy (may: proxy), never read a token; set clients.%s.may: token to let it", c.Name, c.Name)})
			return
		}
		if s.scope(w, r, c, r.PathValue("name"), r.PathValue("tenant")) {
			next(w, r)
		}
	}
}

// proxyGate holds a client's proxied call to its rules: the profile or
// tenant, the methods and path prefixes, and never the vendor's credential
// endpoints. The proxy's own path rule has already refused what could
// escape; a path it would refuse is left for it to answer.
func (s *Server) proxyGate(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c := clientOf(r)
		if c == nil {
			next(w, r)
			return
		}
		name, rest, err := proxy.Split(r.URL)
		if err != nil {
			next(w, r)
			return
		}
		vendorPath, err := url.PathUnescape(rest)
		if err != nil {
			next(w, r)
			return
		}
		vendorPath = "/" + vendorPath
		if !s.scope(w, r, c, name, r.Header.Get(tokenbroker.TenantHeader)) {
			return
		}
		if rule, ok := c.AllowsCall(r.Method, vendorPath); !ok {
			what := map[string]string{"methods": fmt.Sprintf("its methods are %q", c.Methods), "paths": fmt.Sprintf("its paths are %q", c.Paths)}[rule]
			s.refuse(w, refusal{client: c.Name, rule: rule, profile: name,
				msg: fmt.Sprintf("client %q may not call %s %s on %q: %s; change clients.%s.%s to allow it", c.Name, r.Method, vendorPath, name, what, c.Name, rule)})
			return
		}
		if p, err := s.Broker().Provider(name); err == nil {
			for _, pat := range p.Describe().CredentialPaths {
				if underPattern(vendorPath, pat) {
					s.refuse(w, refusal{client: c.Name, rule: "credentials", profile: name,
						msg: fmt.Sprintf("client %q may not call %s on %q: it hands out the vendor's credentials; a client that needs the token reads it from the token API (set clients.%s.may: token)", c.Name, vendorPath, name, c.Name)})
					return
				}
			}
			// Last, so that only calls that will be made spend the budget.
			if wait, why := s.budgets.admit(c, name, p.Describe().Limits.PerSecond, time.Now()); why != "" {
				s.refuseBudget(w, c, wait, why)
				return
			}
		}
		next(w, r)
	}
}

// underPattern says whether p is at or below pattern, segment by segment
// (each pattern segment a path.Match pattern).
func underPattern(p, pattern string) bool {
	ps, pat := strings.Split(strings.Trim(p, "/"), "/"), strings.Split(strings.Trim(pattern, "/"), "/")
	if len(pat) > len(ps) {
		return false
	}
	for i, seg := range pat {
		if ok, _ := path.Match(seg, ps[i]); !ok {
			return false
		}
	}
	return true
}
