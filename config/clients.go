package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/tokenbroker/tokenbroker/failure"
)

// Client is one consumer of `serve` with a key of its own and only the
// access it needs (`clients:`).
type Client struct {
	Name string `yaml:"-"`
	// Key and Keys are its keys, each a secret reference or `sha256:<hex>`
	// of the key; two at once let a key be rotated.
	Key  Secret   `yaml:"key"`
	Keys []Secret `yaml:"keys"`
	// Profiles are path.Match patterns of the profiles and MSP tenants it
	// may use: a profile's name covers its tenants, `msp/acme` or `msp/*`
	// names some or all.
	Profiles []string `yaml:"profiles"`
	// May is what it may do: `proxy` (calls through the proxy, never reads
	// a token; the default) or `token` (also reads tokens and headers).
	May string `yaml:"may"`
	// Methods and Paths, when set, bound its proxied calls: the HTTP
	// methods, and prefixes of the vendor path by whole segments.
	Methods []string `yaml:"methods"`
	Paths   []string `yaml:"paths"`
	// RateShare is the part of each profile's rate limit (0 to 1) and
	// PerDay the proxied calls a day (UTC) the client may take, so that one
	// script cannot spend an MSP's budget for everyone; 0 is no bound of
	// its own. They hold per replica.
	RateShare float64 `yaml:"rate_share"`
	PerDay    int     `yaml:"per_day"`
}

// What a client may do.
const (
	MayProxy = "proxy"
	MayToken = "token"
)

// KeyHashes resolves the client's keys to their SHA-256 digests: only
// digests are kept in memory.
func (c *Client) KeyHashes() ([][32]byte, error) {
	var out [][32]byte
	for _, k := range append([]Secret{c.Key}, c.Keys...) {
		if !k.IsSet() {
			continue
		}
		if hexed, ok := strings.CutPrefix(string(k), "sha256:"); ok {
			b, err := hex.DecodeString(hexed)
			if err != nil || len(b) != sha256.Size {
				return nil, failure.New(failure.Config, "clients.%s: %q is not sha256: followed by 64 hex digits", c.Name, string(k)[:min(len(k), 16)]+"...")
			}
			out = append(out, [32]byte(b))
			continue
		}
		v, err := k.Resolve()
		if err != nil {
			return nil, failure.New(failure.Config, "clients.%s: its key: %v", c.Name, err)
		}
		if len(v) < 16 {
			return nil, failure.New(failure.Config, "clients.%s: a key must have at least 16 characters (`tokenbroker clients add %s` makes one)", c.Name, c.Name)
		}
		out = append(out, sha256.Sum256([]byte(v)))
	}
	if len(out) == 0 {
		return nil, failure.New(failure.Config, "clients.%s has no key: set `key:` (`tokenbroker clients add %s` makes one)", c.Name, c.Name)
	}
	return out, nil
}

// Covers says whether the client may use profile, or its tenant (by id or
// name) when tenant is given.
func (c *Client) Covers(profile string, tenant *Tenant) bool {
	for _, p := range c.Profiles {
		if ok, _ := path.Match(p, profile); ok {
			return true // a profile covers its tenants
		}
		if tenant == nil {
			continue
		}
		for _, n := range []string{tenant.ID, tenant.Name} {
			if ok, _ := path.Match(p, profile+"/"+n); ok && n != "" {
				return true
			}
		}
	}
	return false
}

// Sees says whether profile is the client's to see: it may use the
// profile, or some of its tenants (a pattern such as msp/acme or msp/*).
func (c *Client) Sees(profile string) bool {
	if c.Covers(profile, nil) {
		return true
	}
	for _, p := range c.Profiles {
		if prof, _, ok := strings.Cut(p, "/"); ok {
			if m, _ := path.Match(prof, profile); m {
				return true
			}
		}
	}
	return false
}

// AllowsCall checks a proxied call's method and vendor path (clean, with
// its leading slash) against the client's rules, and says which failed.
func (c *Client) AllowsCall(method, vendorPath string) (rule string, ok bool) {
	if len(c.Methods) > 0 && !slices.Contains(c.Methods, method) {
		return "methods", false
	}
	if len(c.Paths) == 0 {
		return "", true
	}
	for _, p := range c.Paths {
		if UnderPath(vendorPath, p) {
			return "", true
		}
	}
	return "paths", false
}

// UnderPath says whether p is prefix or below it, by whole segments:
// /monitoring/ admits /monitoring/v1/aps, not /monitoringx.
func UnderPath(p, prefix string) bool {
	prefix = "/" + strings.Trim(prefix, "/")
	if prefix == "/" {
		return true
	}
	return p == prefix || strings.HasPrefix(p, prefix+"/")
}

// checkClients refuses clients that could not work as written.
func (c *Config) checkClients() error {
	for name, cl := range c.Clients {
		if cl == nil {
			return failure.New(failure.Config, "clients.%s is empty: it needs a key and profiles", name)
		}
		cl.Name = name
		switch cl.May {
		case "":
			cl.May = MayProxy
		case MayProxy, MayToken:
		default:
			return failure.New(failure.Config, "clients.%s: may: %q, want proxy or token", name, cl.May)
		}
		if len(cl.Profiles) == 0 {
			return failure.New(failure.Config, "clients.%s: `profiles:` is empty: name the profiles it may use", name)
		}
		for _, p := range cl.Profiles {
			if _, err := path.Match(p, ""); err != nil {
				return failure.New(failure.Config, "clients.%s: profiles: %q is not a valid pattern (%v)", name, p, err)
			}
		}
		for i, m := range cl.Methods {
			if m != strings.ToUpper(m) || m == "" || strings.ContainsAny(m, " \t/") {
				return failure.New(failure.Config, "clients.%s: methods: %q, want an upper-case HTTP method such as GET", name, m)
			}
			cl.Methods[i] = m
		}
		if cl.RateShare < 0 || cl.RateShare > 1 || cl.PerDay < 0 {
			return failure.New(failure.Config, "clients.%s: rate_share is a part from 0 to 1 and per_day a count of calls", name)
		}
		for _, p := range cl.Paths {
			if !strings.HasPrefix(p, "/") || strings.Contains(p, "..") || strings.Contains(p, "//") {
				return failure.New(failure.Config, "clients.%s: paths: %q, want a path prefix such as /monitoring/", name, p)
			}
		}
	}
	return nil
}

// ClientNames lists the clients in name order.
func (c *Config) ClientNames() []string {
	names := make([]string, 0, len(c.Clients))
	for n := range c.Clients {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// UnmatchedPatterns lists, per client, the profile patterns that match no
// profile (a typo, most likely), for a warning at start.
func (c *Config) UnmatchedPatterns() []string {
	var out []string
	for _, name := range c.ClientNames() {
		for _, p := range c.Clients[name].Profiles {
			prof, _, _ := strings.Cut(p, "/")
			found := false
			for pn := range c.Profiles {
				if ok, _ := path.Match(prof, pn); ok {
					found = true
					break
				}
			}
			if !found {
				out = append(out, fmt.Sprintf("clients.%s: %q matches no profile", name, p))
			}
		}
	}
	return out
}
