package tokenbroker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/failure"
	"github.com/tokenbroker/tokenbroker/store"
)

// tenantList is one discovery's list of an MSP profile's tenants, never
// changed once made: a new discovery replaces it whole.
type tenantList struct {
	list  []config.Tenant
	byRef map[string]int // id or name -> index in list: calls name tenants by either
	at    time.Time      // when the vendor was asked (zero for a listed one)
	read  time.Time      // when this process read it from the state
}

func newTenantList(list []config.Tenant, at, read time.Time) *tenantList {
	tl := &tenantList{list: list, byRef: make(map[string]int, 2*len(list)), at: at, read: read}
	for i, t := range list {
		tl.byRef[t.ID] = i
	}
	for i, t := range list {
		if _, isID := tl.byRef[t.Name]; t.Name != "" && !isID {
			tl.byRef[t.Name] = i // an id wins over a name, as in config.Profile.Refer
		}
	}
	return tl
}

// tenantsReread is how long a process trusts the discovered list it read
// before it looks at the state again (another replica may have discovered).
const tenantsReread = time.Minute

// maxTenants bounds a discovery: pages are asked for until this many.
const maxTenants = 100_000

// Tenant resolves PROFILE, or PROFILE/TENANT (the tenant by id or name,
// listed in the config or discovered): the profile, and the tenant for
// the latter. A tenant the profile was not given is refused, with
// config.ErrTenantRefused in the error.
func (b *Broker) Tenant(ctx context.Context, name string) (*config.Profile, *config.Tenant, error) {
	pname, ref, isTenant := strings.Cut(name, "/")
	p, err := b.cfg.Profile(pname)
	if err != nil || !isTenant {
		return p, nil, err
	}
	tl, err := b.tenantList(ctx, pname)
	if err != nil {
		return nil, nil, err
	}
	if i, ok := tl.byRef[ref]; ok {
		t := tl.list[i]
		return p, &t, nil
	}
	_, err = p.Refer(tl.list, ref) // says why, and how to see the tenants
	return nil, nil, err
}

// Tenants returns a profile's tenants: its list, or the last discovered
// one with when it was discovered (nil and zero before any discovery).
func (b *Broker) Tenants(ctx context.Context, name string) ([]config.Tenant, time.Time, error) {
	tl, err := b.tenantList(ctx, name)
	if err != nil {
		return nil, time.Time{}, err
	}
	return tl.list, tl.at, nil
}

// tenantList is the profile's tenants with their index: the config's, or
// the discovered ones as last read (again after tenantsReread).
func (b *Broker) tenantList(ctx context.Context, name string) (*tenantList, error) {
	e, err := b.state(name)
	if err != nil {
		return nil, err
	}
	if !e.prof.Tenants.Discover {
		return e.listed, nil
	}
	now := b.opts.Now()
	cur := e.tenants.Load()
	if cur != nil && now.Sub(cur.read) < tenantsReread {
		return cur, nil
	}
	tl, err := b.tenantLists()
	if err != nil {
		return nil, err
	}
	raw, at, err := tl.TenantList(ctx, name)
	if err != nil {
		if cur != nil {
			return cur, nil // the state is away: the list in hand still holds
		}
		return nil, failure.WithProfile(err, name)
	}
	var list []config.Tenant
	if raw != nil {
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, &failure.Error{Kind: failure.Other, Profile: name, Msg: "the stored tenant list is unreadable", Err: err,
				Hint: "run `tokenbroker tenants " + name + " --refresh` to discover the tenants again"}
		}
	}
	next := newTenantList(list, at, now)
	e.tenants.Store(next)
	return next, nil
}

func (b *Broker) tenantLists() (store.TenantLists, error) {
	st, err := b.store()
	if err != nil {
		return nil, err
	}
	tl, ok := st.(store.TenantLists)
	if !ok {
		return nil, failure.New(failure.Config, "the state keeps no discovered tenants: list them under `tenants:`")
	}
	return tl, nil
}

// DiscoverTenants asks the vendor's MSP API for the profile's tenants now,
// a page at a time through the profile's own client (so within its rate
// limit and quota, like any call), and keeps the list in the state,
// replacing the last one whole. It returns the list.
func (b *Broker) DiscoverTenants(ctx context.Context, name string) ([]config.Tenant, error) {
	e, err := b.state(name)
	if err != nil {
		return nil, err
	}
	if !e.prof.Tenants.Discover {
		return nil, failure.New(failure.Config, "profile %q lists its tenants: only `tenants: discover` asks the vendor", name)
	}
	p, err := b.Provider(name)
	if err != nil {
		return nil, err
	}
	d := p.Describe()
	if d.Tenants == nil {
		return nil, &failure.Error{Kind: failure.Config, Profile: name, Msg: d.Vendor + "'s API documents no call that lists an MSP's tenants",
			Hint: "list them under `tenants:` ({id, name})"}
	}
	tl, err := b.tenantLists() // before any call: the list must have somewhere to go
	if err != nil {
		return nil, err
	}
	hc, err := b.HTTPClient(name)
	if err != nil {
		return nil, err
	}
	started := b.opts.Now()
	var all []config.Tenant
	for offset := 0; offset < maxTenants; {
		page, total, err := b.tenantPage(ctx, hc, name, d.APIBase, d.Tenants.Page(offset), d.Tenants.Parse)
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
		offset += len(page)
		if len(page) == 0 || offset >= total {
			break
		}
	}
	list := config.Discovered(all)
	raw, _ := json.Marshal(list)
	if err := tl.PutTenantList(ctx, name, raw, started); err != nil {
		return nil, failure.WithProfile(err, name)
	}
	e.tenants.Store(newTenantList(list, started, b.opts.Now()))
	return list, nil
}

// tenantPage asks for one page of the tenant list.
func (b *Broker) tenantPage(ctx context.Context, hc *http.Client, name, base, path string, parse func([]byte) ([]config.Tenant, int, error)) ([]config.Tenant, int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+path, nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return nil, 0, err
	}
	endpoint := strings.TrimRight(base, "/") + path
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return nil, 0, &failure.Error{Kind: failure.Rejected, Profile: name, Endpoint: endpoint,
			Msg:  fmt.Sprintf("the vendor refused to list the MSP's customers (HTTP %d): this profile's token has no MSP rights", resp.StatusCode),
			Hint: "use the MSP account's own credentials for this profile, or list the tenants under `tenants:`"}
	case resp.StatusCode != http.StatusOK:
		// The vendor's text, cut short and scrubbed of the profile's secrets.
		text := string(body[:min(len(body), 300)])
		return nil, 0, b.scrub(name, b.cached(name), &failure.Error{Kind: failure.Protocol, Profile: name, Endpoint: endpoint,
			Msg: fmt.Sprintf("listing the MSP's customers answered HTTP %d: %s", resp.StatusCode, text)})
	}
	page, total, err := parse(body)
	if err != nil {
		return nil, 0, &failure.Error{Kind: failure.Protocol, Profile: name, Endpoint: endpoint, Msg: err.Error()}
	}
	return page, total, nil
}
