package server

import (
	"context"
	"time"

	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/internal/wait"
	"github.com/tokenbroker/tokenbroker/store"
)

// discoverTenantsEvery checks, this often, which MSP profiles with
// `tenants: discover` are due to ask the vendor again.
const discoverTenantsEvery = time.Minute

// discoverTenants keeps the discovered tenant lists fresh until ctx ends:
// a profile is asked again once its list is older than its
// tenants_refresh (a replica that finds a fresh list in the state, written
// by another, does not ask). A failure is logged and tried again at the
// next check, keeping the last list.
func (s *Server) discoverTenants(ctx context.Context) {
	failing := map[string]bool{}
	for {
		b := s.Broker()
		for _, name := range b.Config().Names() {
			p, _ := b.Config().Profile(name)
			if !p.Tenants.Discover {
				continue
			}
			every := p.TenantsRefresh
			if every <= 0 {
				every = config.DefaultTenantsRefresh
			}
			_, at, err := b.Tenants(ctx, name)
			if err == nil && !at.IsZero() && time.Since(at) < every {
				continue
			}
			list, err := b.DiscoverTenants(ctx, name)
			switch {
			case err != nil && ctx.Err() == nil && !failing[name]:
				failing[name] = true
				s.opts.Log.Warn("tenant discovery failed; the last list is kept", "profile", name, "error", err)
			case err == nil:
				failing[name] = false
				s.opts.Log.Info("tenants discovered", "profile", name, "tenants", len(list))
			}
		}
		if wait.Sleep(ctx, discoverTenantsEvery) != nil {
			return
		}
	}
}

// tenantCallsEvery is how often serve adds its tenant call counts to the
// state, where `tokenbroker tenants` reads them.
const tenantCallsEvery = 30 * time.Second

// flushTenantCalls adds the tenants' call counts to the state every
// tenantCallsEvery, and once more when ctx ends.
func (s *Server) flushTenantCalls(ctx context.Context) {
	tc, ok := s.opts.Store.(store.TenantCalls)
	if !ok {
		return
	}
	flush := func() {
		fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		for profile, calls := range s.tenantCalls.take() {
			if err := tc.AddTenantCalls(fctx, profile, calls); err != nil {
				s.opts.Log.Warn("tenant call counts not stored", "profile", profile, "error", err)
			}
		}
	}
	for wait.Sleep(ctx, tenantCallsEvery) == nil {
		flush()
	}
	flush()
}
