package tokenbroker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/internal/wait"
	"github.com/tokenbroker/tokenbroker/provider"
	"github.com/tokenbroker/tokenbroker/ratelimit"
	"github.com/tokenbroker/tokenbroker/store"
)

// limits are one vendor account's: every profile that calls the same API
// as the same customer shares them, as the vendor counts them together.
type limits struct {
	key    string
	window waiter // nil when the vendor has no per-second limit
	quota  ratelimit.Quota
	cfg    config.RateLimit
	shared store.Limits // set when replicas share limits through the store

	quotaChecked atomic.Int64 // unix nanoseconds of the last look at the shared quota
}

// waiter is a rate limit a call waits on: local, or shared by replicas.
type waiter interface {
	Wait(ctx context.Context) (time.Duration, error)
}

// sharedWindow is ratelimit.Window's reservation kept in the store, so the
// vendor's limit holds across all replicas together. When the store cannot
// be reached it falls back to the local window (per replica) rather than
// stopping every call.
type sharedWindow struct {
	st      store.Limits
	key     string
	n       int
	window  time.Duration
	maxWait time.Duration
	now     func() time.Time
	warn    func(string)
	// down is when the store may next be tried (Unix ns), 0 while it
	// answers. While it does not, this replica calls the account not at
	// all: the other replicas still share the vendor's whole limit, and
	// this one taking a share of its own would exceed it (it doubled the
	// vendor's calls in a partition once). Its callers get tokenbroker's
	// 429, and /readyz, which cannot read the state either, says not
	// ready, so a load balancer drains it.
	down atomic.Int64
}

// storeRetry is how often a replica whose shared limit is unavailable
// tries the store again (one caller tries; the others are refused).
const storeRetry = time.Second

func (w *sharedWindow) Wait(ctx context.Context) (time.Duration, error) {
	now := w.now()
	if until := w.down.Load(); until != 0 {
		if now.UnixNano() < until || !w.down.CompareAndSwap(until, now.Add(storeRetry).UnixNano()) {
			return 0, w.refusal()
		}
		// This caller tries the store; the others are refused meanwhile.
	}
	d, err := w.st.Reserve(ctx, w.key, w.n, w.window, w.maxWait)
	var refused *ratelimit.Refused
	if errors.As(err, &refused) {
		w.up()
		return 0, refused
	}
	if err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if w.down.Swap(w.now().Add(storeRetry).UnixNano()) == 0 {
			w.warn("the shared rate limit is unavailable (" + err.Error() + "): calls to this account from this replica are refused until the state answers again, so that the replicas together stay within the vendor's limit")
		}
		return 0, w.refusal()
	}
	w.up()
	return d, wait.Sleep(ctx, d)
}

// up notes that the store answers, saying so once after an outage.
func (w *sharedWindow) up() {
	if w.down.Load() != 0 && w.down.Swap(0) != 0 {
		w.warn("the shared rate limit is available again: calls to this account go on")
	}
}

func (w *sharedWindow) refusal() error {
	return &ratelimit.Refused{RetryAfter: storeRetry, Reason: "the shared rate limit is unavailable (the state cannot be reached from this replica)"}
}

// quotaCheckEvery bounds how often a replica asks the store whether another
// replica saw the daily quota spent.
const quotaCheckEvery = 5 * time.Second

// checkQuota refuses a call when the daily quota is spent, as this replica
// or (through the store) another one last heard from the vendor.
func (l *limits) checkQuota(ctx context.Context, now time.Time) error {
	if err := l.quota.Check(now); err != nil || l.shared == nil {
		return err
	}
	last := l.quotaChecked.Load()
	if now.UnixNano()-last < int64(quotaCheckEvery) || !l.quotaChecked.CompareAndSwap(last, now.UnixNano()) {
		return nil
	}
	if until, err := l.shared.QuotaSpent(ctx, l.key); err == nil && until.After(now) {
		l.quota.Spend(until)
		return l.quota.Check(now)
	}
	return nil
}

// observeQuota records the vendor's quota headers, and tells the other
// replicas when the quota is spent.
func (l *limits) observeQuota(ctx context.Context, h map[string][]string, now time.Time) {
	l.quota.Observe(h, now)
	if l.shared == nil {
		return
	}
	if rem, _, known := l.quota.Remaining(); known && rem <= 0 {
		l.shared.SpendQuota(ctx, l.key, l.quota.ResetAt())
	}
}

// sharedLimit is this replica's leased share of an account's limit
// (ratelimit.Share): calls within it need no round trip to the state, and
// a replica cut off from the state keeps it only until its lease ends.
// Beside an older release that reserves every call in the state, it
// reserves every call there too (legacy).
type sharedLimit struct {
	share  *ratelimit.Share
	legacy *sharedWindow
}

func (s *sharedLimit) Wait(ctx context.Context) (time.Duration, error) {
	if s.share.Legacy() {
		return s.legacy.Wait(ctx)
	}
	return s.share.Wait(ctx)
}

// Accounts holds the limits of vendor accounts by account key and the
// limits' own settings, so that a configuration reload that keeps a
// profile's limits keeps what was counted against them, and this
// process's shares of them, which it renews until Close. It is safe for
// concurrent use.
type Accounts struct {
	m      sync.Map // account key + settings -> *limits
	steps  provider.Pacer
	holder string // this process's name on shares

	mu        sync.Mutex
	ctx       context.Context // ends at Close: the shares' renewals stop
	cancel    context.CancelFunc
	renewing  bool                     // the renewal of the shares runs
	byAccount map[string]*accountShare // this process's one share of each account
	runs      sync.WaitGroup
}

// NewAccounts returns an empty set of accounts.
func NewAccounts() *Accounts {
	ctx, cancel := context.WithCancel(context.Background())
	return &Accounts{holder: store.NewOwner(), ctx: ctx, cancel: cancel}
}

// Close gives this process's shares of the limits up, so that the other
// replicas can use them at once, and stops renewing them.
func (a *Accounts) Close() {
	a.cancel()
	a.runs.Wait()
}

// renew makes sure this process's shares are renewed, all together in one
// round trip a second, until Close.
func (a *Accounts) renew(l ratelimit.Leaser) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.renewing || a.ctx.Err() != nil {
		return
	}
	a.renewing = true
	a.runs.Add(1)
	go func() {
		defer a.runs.Done()
		ratelimit.Renew(a.ctx, l, a.shares)
	}()
}

// shares lists this process's shares of the limits.
func (a *Accounts) shares() []*ratelimit.Share {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]*ratelimit.Share, 0, len(a.byAccount))
	for _, s := range a.byAccount {
		out = append(out, s.share)
	}
	return out
}

// shareFor returns this process's one share of an account's limit. A
// reload that changed the limit's size makes a new one: the old one stops
// being used at once, and the new one, renewed as the same holder, gives
// up what the old one held before it takes its own part.
func (a *Accounts) shareFor(account, profile string, n int, window, maxWait time.Duration, clock ratelimit.Clock, warn func(string)) *ratelimit.Share {
	a.mu.Lock()
	defer a.mu.Unlock()
	if old := a.byAccount[account]; old != nil {
		if old.n == n && old.window == window {
			return old.share
		}
		old.share.Stop()
	}
	if a.byAccount == nil {
		a.byAccount = map[string]*accountShare{}
	}
	sh := ratelimit.NewShare(account, a.holder, n, window, maxWait, clock, warn)
	a.byAccount[account] = &accountShare{share: sh, profile: profile, n: n, window: window}
	return sh
}

// accountShare is the share of one account, and what it was made for.
type accountShare struct {
	share   *ratelimit.Share
	profile string // the first profile that called the account
	n       int
	window  time.Duration
}

// AccountShare is one account's share of its limit held by this process.
type AccountShare struct {
	Profile string // the first profile that called the account
	ratelimit.ShareState
}

// Shares reports this process's shares of the limits, by account.
func (a *Accounts) Shares() []AccountShare {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]AccountShare, 0, len(a.byAccount))
	for _, s := range a.byAccount {
		out = append(out, AccountShare{Profile: s.profile, ShareState: s.share.State()})
	}
	return out
}

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
func (b *Broker) limitsFor(name string) (*limits, error) {
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
func (b *Broker) accountLimits(name string) (*limits, error) {
	key, entry, cfg, err := b.account(name)
	if err != nil {
		return nil, err
	}
	if l, ok := b.limits.m.Load(entry); ok {
		return l.(*limits), nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if l, ok := b.limits.m.Load(entry); ok {
		return l.(*limits), nil
	}
	l := &limits{key: key, cfg: cfg}
	var renew func() // starts renewing this replica's share
	if shared, ok := b.sharedLimits(); ok {
		l.shared = shared
	}
	if cfg.PerSecond > 0 {
		local := ratelimit.PerSecond(cfg.PerSecond, cfg.Margin, cfg.MaxWait, b.opts.Clock).Paced()
		l.window = local
		if l.shared != nil {
			n, per := local.Size()
			warn := func(msg string) { b.opts.Warn(fmt.Sprintf("account %s: %s", key, msg)) }
			sw := &sharedWindow{st: l.shared, key: key, n: n, window: per, maxWait: cfg.MaxWait, now: b.opts.Now, warn: warn}
			l.window = sw
			if leaser, ok := l.shared.(ratelimit.Leaser); ok {
				l.window = &sharedLimit{share: b.limits.shareFor(key, name, n, per, cfg.MaxWait, b.opts.Clock, warn), legacy: sw}
				renew = func() { b.limits.renew(leaser) }
			}
		}
	}
	if l, loaded := b.limits.m.LoadOrStore(entry, l); loaded {
		return l.(*limits), nil // another broker of the same Accounts made it first
	}
	if renew != nil {
		renew()
	}
	return l, nil
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
		return e.limits.quota.Remaining()
	}
	_, entry, _, err := b.account(name)
	if err != nil {
		return 0, 0, false
	}
	l, ok := b.limits.m.Load(entry)
	if !ok {
		return 0, 0, false
	}
	return l.(*limits).quota.Remaining()
}
