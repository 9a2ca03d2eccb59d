package ratelimit

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	tbclock "github.com/tokenbroker/tokenbroker/clock"
	"github.com/tokenbroker/tokenbroker/internal/wait"
)

// Store is rate-limit state kept for every replica sharing it (the
// store's Limits): per-call reservations, and the daily quota.
type Store interface {
	// Reserve takes the next of n slots per rolling window for key and
	// says how long to wait for it; *Refused when longer than maxWait.
	Reserve(ctx context.Context, key string, n int, window, maxWait time.Duration) (time.Duration, error)
	// SpendQuota records that key's daily quota is spent until resetAt.
	SpendQuota(ctx context.Context, key string, resetAt time.Time) error
	// QuotaSpent says until when key's quota is spent (zero: it is not).
	QuotaSpent(ctx context.Context, key string) (time.Time, error)
}

// AccountSpec is what an Account is made from.
type AccountSpec struct {
	Key       string  // whom the vendor counts calls against
	Profile   string  // the first profile that calls it, shown by Shares
	PerSecond float64 // the vendor's per-second limit; 0 when it has none
	Margin    time.Duration
	MaxWait   time.Duration
	// Shared is the replicas' shared state; nil when this process counts
	// alone. A Shared that is also a Leaser is shared by leased shares.
	Shared Store
	Clock  Clock
	Warn   func(string)
}

// Account is one vendor account's limits: every profile that calls the
// same API as the same customer shares them, as the vendor counts them
// together. It is safe for concurrent use.
type Account struct {
	key     string
	maxWait time.Duration
	margin  time.Duration
	now     func() time.Time
	window  waiter // nil when the vendor has no per-second limit
	quota   Quota
	shared  Store

	quotaChecked atomic.Int64 // unix nanoseconds of the last look at the shared quota
}

// waiter is a rate limit a call waits on: local, or shared by replicas.
// waitTurn sleeps until the call's turn and gives the turn's time.
type waiter interface {
	waitTurn(ctx context.Context) (time.Time, error)
}

// Limited says whether calls wait for a turn (the vendor has a
// per-second limit).
func (a *Account) Limited() bool { return a.window != nil }

// Turn waits for a call's turn and gives the turn's time, which the call
// must be sent at: one sent well after it could squeeze one more call
// into the vendor's window. *Refused when the turn is too far off, or the
// replicas' shared limit cannot be reached.
func (a *Account) Turn(ctx context.Context) (time.Time, error) {
	if a.window == nil {
		return a.now(), nil
	}
	return a.window.waitTurn(ctx)
}

// Lateness is how long after its turn a call may still be sent: half the
// margin the window is widened by (the other half is for the network),
// and at least 10 ms.
func (a *Account) Lateness() time.Duration { return max(10*time.Millisecond, a.margin/2) }

// MaxWait is how long a call may queue for its turn.
func (a *Account) MaxWait() time.Duration { return a.maxWait }

// Remaining is the daily quota as this process last heard it.
func (a *Account) Remaining() (remaining, limit int, known bool) { return a.quota.Remaining() }

// quotaCheckEvery bounds how often a replica asks the store whether another
// replica saw the daily quota spent.
const quotaCheckEvery = 5 * time.Second

// CheckQuota refuses a call (*Refused) when the daily quota is spent, as
// this replica or (through the store) another one last heard from the
// vendor.
func (a *Account) CheckQuota(ctx context.Context, now time.Time) error {
	if err := a.quota.Check(now); err != nil || a.shared == nil {
		return err
	}
	last := a.quotaChecked.Load()
	if now.UnixNano()-last < int64(quotaCheckEvery) || !a.quotaChecked.CompareAndSwap(last, now.UnixNano()) {
		return nil
	}
	if until, err := a.shared.QuotaSpent(ctx, a.key); err == nil && until.After(now) {
		a.quota.Spend(until)
		return a.quota.Check(now)
	}
	return nil
}

// ObserveQuota records the vendor's quota headers, and tells the other
// replicas when the quota is spent.
func (a *Account) ObserveQuota(ctx context.Context, h map[string][]string, now time.Time) {
	a.quota.Observe(h, now)
	if a.shared == nil {
		return
	}
	if rem, _, known := a.quota.Remaining(); known && rem <= 0 {
		a.shared.SpendQuota(ctx, a.key, a.quota.ResetAt())
	}
}

// sharedWindow is Window's reservation kept in the store, so the vendor's
// limit holds across all replicas together. When the store cannot be
// reached this replica calls the account not at all: the other replicas
// still share the vendor's whole limit, and this one taking a share of
// its own would exceed it (it doubled the vendor's calls in a partition
// once). Its callers get tokenbroker's 429, and /readyz, which cannot read
// the state either, says not ready, so a load balancer drains it.
type sharedWindow struct {
	st      Store
	key     string
	n       int
	window  time.Duration
	maxWait time.Duration
	now     func() time.Time
	warn    func(string)
	// down is when the store may next be tried (Unix ns), 0 while it
	// answers.
	down atomic.Int64
}

// StoreRetry is how often a replica whose shared limit is unavailable
// tries the store again (one caller tries; the others are refused).
const StoreRetry = time.Second

// waitTurn reserves the call's slot in the store. The turn is counted
// from the store's answer: the store itself takes a new slot when its
// answer comes late.
func (w *sharedWindow) waitTurn(ctx context.Context) (time.Time, error) {
	now := w.now()
	if until := w.down.Load(); until != 0 {
		if now.UnixNano() < until || !w.down.CompareAndSwap(until, now.Add(StoreRetry).UnixNano()) {
			return time.Time{}, w.refusal()
		}
		// This caller tries the store; the others are refused meanwhile.
	}
	d, err := w.st.Reserve(ctx, w.key, w.n, w.window, w.maxWait)
	var refused *Refused
	if errors.As(err, &refused) {
		w.up()
		return time.Time{}, refused
	}
	if err != nil {
		if ctx.Err() != nil {
			return time.Time{}, ctx.Err()
		}
		if w.down.Swap(w.now().Add(StoreRetry).UnixNano()) == 0 {
			w.warn("the shared rate limit is unavailable (" + err.Error() + "): calls to this account from this replica are refused until the state answers again, so that the replicas together stay within the vendor's limit")
		}
		return time.Time{}, w.refusal()
	}
	w.up()
	return w.now().Add(d), wait.Sleep(ctx, d)
}

// up notes that the store answers, saying so once after an outage.
func (w *sharedWindow) up() {
	if w.down.Load() != 0 && w.down.Swap(0) != 0 {
		w.warn("the shared rate limit is available again: calls to this account go on")
	}
}

func (w *sharedWindow) refusal() error {
	return &Refused{RetryAfter: StoreRetry, Reason: "the shared rate limit is unavailable (the state cannot be reached from this replica)"}
}

// sharedLimit is this replica's leased share of an account's limit
// (Share): calls within it need no round trip to the state, and a replica
// cut off from the state keeps it only until its lease ends. Beside an
// older release that reserves every call in the state, it reserves every
// call there too (legacy).
type sharedLimit struct {
	share  *Share
	legacy *sharedWindow
}

func (s *sharedLimit) waitTurn(ctx context.Context) (time.Time, error) {
	if s.share.Legacy() {
		return s.legacy.waitTurn(ctx)
	}
	return s.share.waitTurn(ctx)
}

// Accounts holds the limits of vendor accounts by entry (the account and
// its limits' settings), so that a configuration reload that keeps a
// profile's limits keeps what was counted against them, and this process's
// shares of them, which it renews until Close. Whoever runs the process
// owns it. It is safe for concurrent use.
type Accounts struct {
	m      sync.Map   // entry -> *Account
	making sync.Mutex // one account is made at a time, so shares of one account are made in order
	// Steps paces vendors' login steps (Aruba's 1 call/s), kept here for
	// the same reason.
	Steps  Pacer
	holder string // this process's name on shares

	mu        sync.Mutex
	ctx       context.Context // ends at Close: the shares' renewals stop
	cancel    context.CancelFunc
	renewing  bool                     // the renewal of the shares runs
	byAccount map[string]*accountShare // this process's one share of each account
	runs      sync.WaitGroup
}

// NewAccounts returns an empty set of accounts; holder names this process
// on its shares of the limits.
func NewAccounts(holder string) *Accounts {
	ctx, cancel := context.WithCancel(context.Background())
	return &Accounts{holder: holder, ctx: ctx, cancel: cancel}
}

// Close gives this process's shares of the limits up, so that the other
// replicas can use them at once, and stops renewing them.
func (a *Accounts) Close() {
	a.cancel()
	a.runs.Wait()
}

// Lookup returns the account kept under entry, if one was made.
func (a *Accounts) Lookup(entry string) (*Account, bool) {
	v, ok := a.m.Load(entry)
	if !ok {
		return nil, false
	}
	return v.(*Account), true
}

// Account returns the account kept under entry, making it from spec the
// first time.
func (a *Accounts) Account(entry string, spec AccountSpec) *Account {
	if acc, ok := a.Lookup(entry); ok {
		return acc
	}
	a.making.Lock()
	defer a.making.Unlock()
	if acc, ok := a.Lookup(entry); ok {
		return acc
	}
	spec.Clock = tbclock.Or(spec.Clock)
	acc := &Account{key: spec.Key, maxWait: spec.MaxWait, margin: spec.Margin, shared: spec.Shared, now: spec.Clock.Now}
	var leaser Leaser
	if spec.PerSecond > 0 {
		local := PerSecond(spec.PerSecond, spec.Margin, spec.MaxWait, spec.Clock).Paced()
		acc.window = local
		if spec.Shared != nil {
			n, per := local.Size()
			sw := &sharedWindow{st: spec.Shared, key: spec.Key, n: n, window: per, maxWait: spec.MaxWait, now: spec.Clock.Now, warn: spec.Warn}
			acc.window = sw
			if l, ok := spec.Shared.(Leaser); ok {
				acc.window = &sharedLimit{share: a.shareFor(spec.Key, spec.Profile, n, per, spec.MaxWait, spec.Clock, spec.Warn), legacy: sw}
				leaser = l
			}
		}
	}
	a.m.Store(entry, acc)
	if leaser != nil {
		a.renew(leaser)
	}
	return acc
}

// renew makes sure this process's shares are renewed, all together in one
// round trip a second, until Close.
func (a *Accounts) renew(l Leaser) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.renewing || a.ctx.Err() != nil {
		return
	}
	a.renewing = true
	a.runs.Add(1)
	go func() {
		defer a.runs.Done()
		Renew(a.ctx, l, a.shares)
	}()
}

// shares lists this process's shares of the limits.
func (a *Accounts) shares() []*Share {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]*Share, 0, len(a.byAccount))
	for _, s := range a.byAccount {
		out = append(out, s.share)
	}
	return out
}

// shareFor returns this process's one share of an account's limit. A
// reload that changed the limit's size makes a new one: the old one stops
// being used at once, and the new one, renewed as the same holder, gives
// up what the old one held before it takes its own part.
func (a *Accounts) shareFor(account, profile string, n int, window, maxWait time.Duration, clock Clock, warn func(string)) *Share {
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
	sh := NewShare(account, a.holder, n, window, maxWait, clock, warn)
	a.byAccount[account] = &accountShare{share: sh, profile: profile, n: n, window: window}
	return sh
}

// accountShare is the share of one account, and what it was made for.
type accountShare struct {
	share   *Share
	profile string // the first profile that called the account
	n       int
	window  time.Duration
}

// AccountShare is one account's share of its limit held by this process.
type AccountShare struct {
	Profile string // the first profile that called the account
	ShareState
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

// Pacer paces calls to each endpoint to one per interval, so that steps a
// vendor allows once a second (Aruba's first three login steps) never
// draw a 429. The zero value is ready.
type Pacer struct {
	m sync.Map // endpoint -> *rate.Limiter
}

// Wait waits for endpoint's next slot; every is the interval between
// slots, fixed by the first call for the endpoint.
func (p *Pacer) Wait(ctx context.Context, endpoint string, every time.Duration) error {
	l, _ := p.m.LoadOrStore(endpoint, rate.NewLimiter(rate.Every(every), 1))
	return l.(*rate.Limiter).Wait(ctx)
}
