package tokenbroker

import (
	"fmt"

	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/provider"
	"github.com/tokenbroker/tokenbroker/ratelimit"
	"github.com/tokenbroker/tokenbroker/store"
)

// Accounts holds the limits of vendor accounts, kept across brokers (and
// so across config reloads) by whoever runs the process; see
// ratelimit.Accounts.
type Accounts = ratelimit.Accounts

// AccountShare is one account's share of its limit held by this process.
type AccountShare = ratelimit.AccountShare

// NewAccounts returns an empty set of accounts for this process.
func NewAccounts() *Accounts { return ratelimit.NewAccounts(store.NewOwner()) }

// sharedLimits is the store's shared rate-limit state, when it has one.
func (b *Broker) sharedLimits() (store.Limits, bool) {
	st, err := b.store()
	if err != nil {
		return nil, false
	}
	l, ok := st.(store.Limits)
	return l, ok
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
func (b *Broker) limitsFor(name string) (*ratelimit.Account, error) {
	e, err := b.state(name)
	if err != nil {
		return nil, err
	}
	e.limitsOnce.Do(func() {
		e.limits, e.limitsErr = b.accountLimits(name)
		e.limitsMade.Store(true)
	})
	return e.limits, e.limitsErr
}

// account names the profile's vendor account and its limits' settings,
// and the entry they are kept under in Accounts.
func (b *Broker) account(name string) (key, entry string, cfg config.RateLimit, err error) {
	p, err := b.Provider(name)
	if err != nil {
		return "", "", cfg, err
	}
	prof, _ := b.cfg.Profile(name)
	d := p.Describe()
	key = accountKey(prof, d)
	cfg = config.RateLimit{PerSecond: d.Limits.PerSecond, PerDay: d.Limits.PerDay, MaxWait: ratelimit.DefaultMaxWait, Margin: ratelimit.DefaultMargin}
	if o := prof.RateLimit; o != nil {
		if o.MaxWait > 0 {
			cfg.MaxWait = o.MaxWait
		}
		if o.Margin > 0 {
			cfg.Margin = o.Margin
		}
	}
	// The same account with other settings (a reload that changed them) is
	// counted afresh.
	return key, fmt.Sprintf("%s\x00%v", key, cfg), cfg, nil
}

// accountLimits finds or makes the limits of the profile's vendor account.
func (b *Broker) accountLimits(name string) (*ratelimit.Account, error) {
	key, entry, cfg, err := b.account(name)
	if err != nil {
		return nil, err
	}
	if a, ok := b.limits.Lookup(entry); ok {
		return a, nil
	}
	spec := ratelimit.AccountSpec{Key: key, Profile: name, PerSecond: cfg.PerSecond, Margin: cfg.Margin, MaxWait: cfg.MaxWait, Clock: b.opts.Clock,
		Warn: func(msg string) { b.opts.Warn(fmt.Sprintf("account %s: %s", key, msg)) }}
	if shared, ok := b.sharedLimits(); ok {
		spec.Shared = shared
	}
	return b.limits.Account(entry, spec), nil
}

// JoinLimits takes this process's share of every configured profile's
// account limit now, rather than at its first call, so that the replicas'
// shares are balanced before calls come (serve does this at start).
func (b *Broker) JoinLimits() {
	for _, name := range b.cfg.Names() {
		b.limitsFor(name)
	}
}

// Quota reports the profile's daily quota as this process last heard it
// from the vendor. It only looks: a process that has not called the
// account (`tokenbroker status`) makes no limits for it, and so takes no
// share of it from the replicas.
func (b *Broker) Quota(name string) (remaining, limit int, known bool) {
	if e := b.profiles[name]; e != nil && e.limitsMade.Load() { // every proxied call asks
		if e.limits == nil {
			return 0, 0, false
		}
		return e.limits.Remaining()
	}
	_, entry, _, err := b.account(name)
	if err != nil {
		return 0, 0, false
	}
	a, ok := b.limits.Lookup(entry)
	if !ok {
		return 0, 0, false
	}
	return a.Remaining()
}
