package config

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/tokenbroker/tokenbroker/failure"
)

// ErrTenantRefused is in the error for a tenant the profile was not given
// (or any tenant, for a profile without tenants).
var ErrTenantRefused = errors.New("tenant refused")

// Refer finds the tenant ref (an id or a name) in list, the profile's
// tenants, or says why not and how to see them.
func (p *Profile) Refer(list []Tenant, ref string) (Tenant, error) {
	refuse := func(msg string) error {
		hint := "list the profile's tenants with `tokenbroker tenants " + p.Name + "` (or GET /v1/profiles/" + p.Name + "/tenants)"
		if p.Tenants.Discover {
			hint = "the profile's tenants are discovered: `tokenbroker tenants " + p.Name + " --refresh` asks the vendor again"
		}
		return &failure.Error{Kind: failure.Config, Profile: p.Name, Msg: msg, Err: ErrTenantRefused, Hint: hint}
	}
	if !p.HasTenants() {
		return Tenant{}, refuse("the profile has no tenants (add them under `tenants:`)")
	}
	for _, t := range list {
		if t.ID == ref || (t.Name != "" && t.Name == ref) {
			return t, nil
		}
	}
	return Tenant{}, refuse(fmt.Sprintf("%q is not one of the profile's %d tenants", ref, len(list)))
}

// HasTenants says whether the profile is an MSP's with tenants, listed or
// discovered.
func (p *Profile) HasTenants() bool { return len(p.Tenants.List) > 0 || p.Tenants.Discover }

// Tenant is one customer of an MSP profile: calls for it go out with the
// MSP's one token and the vendor's tenant header set to ID.
type Tenant struct {
	ID   string `yaml:"id" json:"id"`
	Name string `yaml:"name" json:"name,omitempty"`
	// Sinks are files `serve` keeps holding the MSP's token for this
	// tenant (listed tenants only).
	Sinks []Sink `yaml:"sinks" json:"-"`
	// ProxyListen is an address where `serve` proxies the MSP's API for
	// this tenant at the root (listed tenants only).
	ProxyListen string `yaml:"proxy_listen" json:"-"`
}

// Tenants is a profile's `tenants:`: a list, or `discover` (the vendor's
// MSP API lists them; see TenantsRefresh).
type Tenants struct {
	List     []Tenant
	Discover bool
}

// UnmarshalYAML takes the list or the word `discover`.
func (t *Tenants) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		if n.Value != "discover" {
			return fmt.Errorf("line %d: tenants: want a list of {id, name} or `discover`, not %q", n.Line, n.Value)
		}
		t.Discover = true
		return nil
	}
	return n.Decode(&t.List)
}

// DefaultTenantsRefresh is how often discovered tenants are asked for again.
const DefaultTenantsRefresh = time.Hour

// checkTenants refuses a list in which a tenant could be taken for
// another: ids and names are unique, a name is not another's id, has no
// `/` (PROFILE/TENANT), and an id is a plain header value.
func (p *Profile) checkTenants() error {
	// Location parses the file again for line numbers: only an error needs it.
	return CheckTenants(p.Name, p.Location, p.Tenants.List)
}

// Discovered keeps what can be used of a list the vendor gave: tenants with
// a plain id, each once; a name that is shared, holds `/` or is another's
// id is dropped (the tenant is then reached by its id), since the vendor's
// names are not ours to refuse.
func Discovered(list []Tenant) []Tenant {
	ids, count := map[string]bool{}, map[string]int{}
	var out []Tenant
	for _, t := range list {
		if t.ID == "" || ids[t.ID] || strings.ContainsFunc(t.ID, func(r rune) bool { return r <= ' ' || r >= 0x7f || r == '/' }) {
			continue
		}
		ids[t.ID] = true
		count[t.Name]++
		out = append(out, t)
	}
	for i, t := range out {
		if count[t.Name] > 1 || strings.Contains(t.Name, "/") || (ids[t.Name] && t.Name != t.ID) {
			out[i].Name = ""
		}
	}
	return out
}

// CheckTenants applies checkTenants' rules to a list; where says where the
// list is written, for the error.
func CheckTenants(profile string, where func() string, list []Tenant) error {
	ids, names := map[string]bool{}, map[string]string{}
	for _, t := range list {
		switch {
		case t.ID == "":
			return failure.New(failure.Config, "profile %q (%s): a tenant has no `id`", profile, where())
		case strings.ContainsFunc(t.ID, func(r rune) bool { return r <= ' ' || r >= 0x7f || r == '/' }):
			return failure.New(failure.Config, "profile %q (%s): tenant id %q may hold only visible ASCII without `/`", profile, where(), t.ID)
		case ids[t.ID]:
			return failure.New(failure.Config, "profile %q (%s): tenant id %q is listed twice", profile, where(), t.ID)
		case strings.Contains(t.Name, "/"):
			return failure.New(failure.Config, "profile %q (%s): tenant name %q may not contain `/`", profile, where(), t.Name)
		}
		if other, dup := names[t.Name]; dup && t.Name != "" {
			return failure.New(failure.Config, "profile %q (%s): two tenants are named %q (ids %s and %s)", profile, where(), t.Name, other, t.ID)
		}
		ids[t.ID] = true
		if t.Name != "" {
			names[t.Name] = t.ID
		}
	}
	for _, t := range list {
		if t.Name != "" && ids[t.Name] && names[t.Name] != t.Name {
			return failure.New(failure.Config, "profile %q (%s): tenant name %q is another tenant's id", profile, where(), t.Name)
		}
	}
	return nil
}
