package config

import (
	"errors"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/tokenbroker/tokenbroker/failure"
)

// ErrTenantRefused is in the error for a tenant the profile was not given
// (or any tenant, for a profile without tenants).
var ErrTenantRefused = errors.New("tenant refused")

// Resolve finds what name stands for: a profile, or PROFILE/TENANT (the
// tenant by its id or its name), with the tenant then non-nil.
func (c *Config) Resolve(name string) (*Profile, *Tenant, error) {
	pname, ref, isTenant := strings.Cut(name, "/")
	p, err := c.Profile(pname)
	if err != nil || !isTenant {
		return p, nil, err
	}
	t, err := p.Refer(ref)
	if err != nil {
		return nil, nil, err
	}
	return p, &t, nil
}

// Refer finds one of the profile's tenants by id or name, or says why not
// and how to see them.
func (p *Profile) Refer(ref string) (Tenant, error) {
	refuse := func(msg string) error {
		return &failure.Error{Kind: failure.Config, Profile: p.Name, Msg: msg, Err: ErrTenantRefused,
			Hint: "list the profile's tenants with `tokenbroker tenants " + p.Name + "` (or GET /v1/profiles/" + p.Name + "/tenants)"}
	}
	if len(p.Tenants) == 0 {
		return Tenant{}, refuse("the profile has no tenants (add them under `tenants:`)")
	}
	if t, ok := p.Tenant(ref); ok {
		return t, nil
	}
	return Tenant{}, refuse(fmt.Sprintf("%q is not one of the profile's %d tenants", ref, len(p.Tenants)))
}

// Tenant is one customer of an MSP profile: calls for it go out with the
// MSP's one token and the vendor's tenant header set to ID.
type Tenant struct {
	ID   string `yaml:"id" json:"id"`
	Name string `yaml:"name" json:"name,omitempty"`
}

// Tenants is a profile's `tenants:` list.
type Tenants []Tenant

// UnmarshalYAML takes the list; `tenants: discover` is named as not
// supported by this release rather than read as an empty list.
func (t *Tenants) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		return fmt.Errorf("line %d: tenants: %q is not supported by this release: list the tenants ({id: ..., name: ...})", n.Line, n.Value)
	}
	var list []Tenant
	if err := n.Decode(&list); err != nil {
		return err
	}
	*t = list
	return nil
}

// Tenant finds one of the profile's tenants by its id or its name.
func (p *Profile) Tenant(ref string) (Tenant, bool) {
	for _, t := range p.Tenants {
		if t.ID == ref || (t.Name != "" && t.Name == ref) {
			return t, true
		}
	}
	return Tenant{}, false
}

// checkTenants refuses a list in which a tenant could be taken for
// another: ids and names are unique, a name is not another's id, has no
// `/` (PROFILE/TENANT), and an id is a plain header value.
func (p *Profile) checkTenants() error {
	ids, names := map[string]bool{}, map[string]string{}
	for _, t := range p.Tenants {
		switch {
		case t.ID == "":
			return failure.New(failure.Config, "profile %q (%s): a tenant has no `id`", p.Name, p.Location())
		case strings.ContainsFunc(t.ID, func(r rune) bool { return r <= ' ' || r >= 0x7f || r == '/' }):
			return failure.New(failure.Config, "profile %q (%s): tenant id %q may hold only visible ASCII without `/`", p.Name, p.Location(), t.ID)
		case ids[t.ID]:
			return failure.New(failure.Config, "profile %q (%s): tenant id %q is listed twice", p.Name, p.Location(), t.ID)
		case strings.Contains(t.Name, "/"):
			return failure.New(failure.Config, "profile %q (%s): tenant name %q may not contain `/`", p.Name, p.Location(), t.Name)
		}
		if other, dup := names[t.Name]; dup && t.Name != "" {
			return failure.New(failure.Config, "profile %q (%s): two tenants are named %q (ids %s and %s)", p.Name, p.Location(), t.Name, other, t.ID)
		}
		ids[t.ID] = true
		if t.Name != "" {
			names[t.Name] = t.ID
		}
	}
	for _, t := range p.Tenants {
		if t.Name != "" && ids[t.Name] && names[t.Name] != t.Name {
			return failure.New(failure.Config, "profile %q (%s): tenant name %q is another tenant's id", p.Name, p.Location(), t.Name)
		}
	}
	return nil
}
