package tokenbroker

import (
	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/provider"
	"github.com/tokenbroker/tokenbroker/ratelimit"
)

// limits are one vendor account's: every profile that calls the same API
// as the same customer shares them, as the vendor counts them together.
type limits struct {
	key    string
	window *ratelimit.Window // nil when the vendor has no per-second limit
	quota  ratelimit.Quota
	cfg    config.RateLimit
}

// accountKey names whom the vendor counts calls against: Aruba counts per
// customer (an MSP's calls to tenants count against the MSP).
func accountKey(p *config.Profile, d provider.Description) string {
	who := p.CustomerID
	if who == "" {
		who = p.TenantID
	}
	if who == "" {
		who = string(p.ClientID)
	}
	if who == "" {
		who = "profile:" + p.Name
	}
	return p.Provider + "|" + d.APIBase + "|" + who
}

// limitsFor returns the shared limits of a profile's account.
func (b *Broker) limitsFor(name string) (*limits, error) {
	p, err := b.Provider(name)
	if err != nil {
		return nil, err
	}
	prof, _ := b.cfg.Profile(name)
	d := p.Describe()
	key := accountKey(prof, d)
	if l, ok := b.limits.Load(key); ok {
		return l.(*limits), nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if l, ok := b.limits.Load(key); ok {
		return l.(*limits), nil
	}
	cfg := config.RateLimit{PerSecond: d.Limits.PerSecond, PerDay: d.Limits.PerDay, MaxWait: ratelimit.DefaultMaxWait, Margin: ratelimit.DefaultMargin}
	if o := prof.RateLimit; o != nil {
		if o.MaxWait > 0 {
			cfg.MaxWait = o.MaxWait
		}
		if o.Margin > 0 {
			cfg.Margin = o.Margin
		}
	}
	l := &limits{key: key, cfg: cfg}
	if cfg.PerSecond > 0 {
		l.window = ratelimit.PerSecond(cfg.PerSecond, cfg.Margin, cfg.MaxWait, b.opts.Clock)
	}
	b.limits.Store(key, l)
	return l, nil
}

// Quota reports the profile's daily quota as the vendor last reported it.
func (b *Broker) Quota(name string) (remaining, limit int, known bool) {
	l, err := b.limitsFor(name)
	if err != nil {
		return 0, 0, false
	}
	return l.quota.Remaining()
}
