// Package tokenbroker obtains, stores, refreshes and hands out API access
// tokens. A Broker serves every profile of a configuration; Token is the one
// call most code needs.
package tokenbroker

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	tbclock "github.com/tokenbroker/tokenbroker/clock"
	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/failure"
	"github.com/tokenbroker/tokenbroker/internal/httpx"
	"github.com/tokenbroker/tokenbroker/provider"
	"github.com/tokenbroker/tokenbroker/ratelimit"
	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/token"
)

// Token is an access token with everything needed to renew it.
type Token = token.Token

// DefaultRefreshFraction is the share of a token's lifetime after which it
// is renewed ahead of expiry.
const DefaultRefreshFraction = 0.8

// refreshJitter is the share of the lifetime by which the refresh point is
// moved earlier, differently for each token, so that tokens obtained
// together (a replica starting with 10,000 tenants) do not renew together.
const refreshJitter = 0.15

// Options configure a Broker.
type Options struct {
	// Store is where tokens live. Open opens the configured one when nil.
	Store store.Store
	// OpenStore opens the store lazily on first need, so commands that need
	// none stay fast. Used when Store is nil.
	OpenStore func() (store.Store, error)
	HTTP      *http.Client // outbound client for token endpoints
	// Clock is the one time source of the broker and its rate limits (and
	// of serve's refresher and webhooks, which take it from here); the wall
	// clock when nil.
	Clock tbclock.Clock
	// Now sets the time alone (waits stay on the wall clock); used when
	// Clock is nil. New sets it to Clock's Now.
	Now  func() time.Time
	Warn func(string) // warnings (stderr in the CLI)
	// RefreshFraction of the lifetime after which a token is renewed;
	// DefaultRefreshFraction when zero. Jitter of up to 15% of the lifetime
	// is subtracted so that many tokens do not renew at once.
	RefreshFraction float64
	// Observer is told of token requests and rate-limit waits (metrics).
	Observer Observer
	// API is the transport for vendor API calls (proxy, HTTPClient);
	// a pooled, hardened one when nil.
	API http.RoundTripper
	// LeaseTTL bounds how long a renewal may hold a profile's lease before
	// others may take it over; DefaultLeaseTTL when zero.
	LeaseTTL time.Duration
	// Accounts keeps each vendor account's rate-limit window and daily
	// quota. Give the brokers of one process the same Accounts (serve does,
	// across reloads) so that a new broker does not start the vendor's
	// count from zero; each broker keeps its own when nil.
	Accounts *Accounts
}

// DefaultLeaseTTL outlasts a token request's timeout (30 s) with a margin.
const DefaultLeaseTTL = 45 * time.Second

// commitTimeout bounds the write of a new token, which runs even when the
// caller gave up: the vendor may already have rotated the old one.
const commitTimeout = 30 * time.Second

// renewTimeout bounds a whole renewal, which runs even when the caller that
// started it gave up: waiting out another holder's lease, the token
// request (whose own timeout is 30 s) and the commit.
const renewTimeout = DefaultLeaseTTL + 30*time.Second + commitTimeout

// Broker hands out tokens for the profiles of one configuration. It is safe
// for concurrent use.
type Broker struct {
	cfg  *config.Config
	opts Options

	storeOnce sync.Once
	st        store.Store
	stErr     error
	ownStore  bool // opened by the broker (Options.OpenStore): Close closes it

	closed    chan struct{} // closed by Close: background writers stop
	closeOnce sync.Once

	owner  string       // this broker's name on leases
	leases atomic.Int64 // numbers each acquisition, see leaseOwner

	profiles  map[string]*profileState // one per configured profile, made in New and never changed
	limits    *Accounts                // the vendor accounts' limits; Options.Accounts or the broker's own
	ownLimits bool                     // the broker's own: Close closes them
	flights   singleflight.Group
	flying    inFlight           // callers' renewals, those the caller left included: Close waits for them
	life      context.Context    // ends when Close begins: renewals then wait no more for a lease or a turn
	endLife   context.CancelFunc // of life
	conns     conns              // vendor API connections, one pool per profile
	renewals  renewals           // when a 401 last renewed each profile
}

// New returns a Broker for cfg.
func New(cfg *config.Config, opts Options) *Broker {
	if opts.Clock == nil && opts.Now != nil {
		opts.Clock = tbclock.Func(opts.Now)
	}
	opts.Clock = tbclock.Or(opts.Clock)
	opts.Now = opts.Clock.Now
	if opts.Warn == nil {
		opts.Warn = func(string) {}
	}
	if opts.RefreshFraction <= 0 || opts.RefreshFraction >= 1 {
		opts.RefreshFraction = DefaultRefreshFraction
	}
	if opts.LeaseTTL <= 0 {
		opts.LeaseTTL = DefaultLeaseTTL
	}
	b := &Broker{cfg: cfg, opts: opts, owner: store.NewOwner(), limits: opts.Accounts, closed: make(chan struct{})}
	b.life, b.endLife = context.WithCancel(context.Background())
	if b.limits == nil {
		b.limits = NewAccounts()
		b.ownLimits = true
	}
	if b.opts.HTTP == nil {
		// One client for every profile's token endpoint: it never reuses a
		// connection, so no answer crosses between profiles.
		b.opts.HTTP = httpx.New(httpx.Options{RejectHTML: true})
	}
	b.conns.warn = opts.Warn
	b.conns.cert = func(name string) *tls.Certificate {
		if _, err := b.Provider(name); err != nil {
			return nil
		}
		return b.profiles[name].cert
	}
	b.profiles = make(map[string]*profileState, len(cfg.Profiles))
	for name, prof := range cfg.Profiles {
		b.profiles[name] = &profileState{prof: prof, listed: newTenantList(prof.Tenants.List, time.Time{}, time.Time{})}
	}
	return b
}

// Close waits for the renewals in flight that have sent their request,
// which run on even when their callers gave up (the vendor may have
// rotated the refresh token it was sent, so its answer must be stored;
// each is bounded by its timeouts); those still waiting for a lease or a
// rate-limit turn give up, and none starts after.
// Then it closes the idle vendor connections and the store when the
// Broker opened it (Options.OpenStore), and gives up its shares of the
// rate limits unless they are Options.Accounts'; a store it was handed
// (Options.Store) is the caller's to close. Background writes of unstored
// tokens stop. Tokens are not to be asked for once Close has begun.
func (b *Broker) Close() error {
	b.flying.close() // no renewal starts from here on
	b.endLife()      // those not yet sent give up waiting
	b.flying.wait()
	b.closeOnce.Do(func() { close(b.closed) })
	b.conns.close()
	if b.ownLimits {
		b.limits.Close() // before the store closes: it gives the shares up there
	}
	if b.st != nil && b.ownStore {
		return b.st.Close()
	}
	return nil
}

func (b *Broker) store() (store.Store, error) {
	b.storeOnce.Do(func() {
		switch {
		case b.opts.Store != nil:
			b.st = b.opts.Store
		case b.opts.OpenStore != nil:
			b.ownStore = true
			st, err := b.opts.OpenStore()
			if err != nil {
				b.stErr = err // b.st stays nil, not a typed nil
				return
			}
			b.st = st
		default:
			b.stErr = errors.New("no store configured")
		}
	})
	return b.st, b.stErr
}

// Store returns the broker's store, opening it on first use.
func (b *Broker) Store() (store.Store, error) { return b.store() }

// profileState is what the Broker keeps of one configured profile. The
// table of them is made in New and never changes: a reload of the config
// makes a new Broker. Each part is made on first use, once.
type profileState struct {
	prof *config.Profile

	providerOnce sync.Once
	provider     provider.Provider
	providerErr  error

	limitsOnce sync.Once
	limits     *ratelimit.Account // its vendor account's, shared with the account's other profiles
	limitsErr  error
	limitsMade atomic.Bool // limitsOnce has run: limits may be read without it

	mem atomic.Pointer[cached] // the token in memory; read without locks on the hot path

	cert *tls.Certificate // the client certificate (mutual TLS), set with the provider

	writing atomic.Bool // a token the state could not take is being written (keepWriting)

	tenants atomic.Pointer[tenantList] // the discovered tenants, as last read or discovered
	listed  *tenantList                // the config's tenants, indexed (made in New)
}

// state returns the profile's entry, or the config's error for a name
// that is no profile.
func (b *Broker) state(name string) (*profileState, error) {
	if e := b.profiles[name]; e != nil {
		return e, nil
	}
	_, err := b.cfg.Profile(name)
	if err == nil {
		err = failure.New(failure.Config, "profile %q is not in the broker's config", name)
	}
	return nil, err
}

// Provider returns the provider of a profile, built once.
func (b *Broker) Provider(name string) (provider.Provider, error) {
	e, err := b.state(name)
	if err != nil {
		return nil, err
	}
	e.providerOnce.Do(func() {
		hc := b.opts.HTTP
		if e.cert, e.providerErr = clientCert(e.prof); e.providerErr != nil {
			return
		}
		if e.cert != nil {
			// A client certificate is a credential: its token calls go on
			// a client of the profile's own.
			hc = httpx.New(httpx.Options{RejectHTML: true, ClientCert: e.cert})
		}
		e.provider, e.providerErr = provider.New(e.prof, provider.Env{HTTP: hc, Now: b.opts.Now, Warn: b.opts.Warn, Pacer: &b.limits.Steps,
			Token: func(ctx context.Context, other string) (*token.Token, error) {
				prof, _, err := b.Tenant(ctx, other) // a tenant's token is its MSP's
				if err != nil {
					return nil, err
				}
				return b.Token(ctx, prof.Name, TokenOptions{})
			}})
		if e.providerErr == nil {
			for _, w := range e.prof.Warnings() {
				b.opts.Warn(w)
			}
		}
	})
	return e.provider, e.providerErr
}

// mem is the profile's token in memory, nil when none (or no such profile).
func (b *Broker) mem(name string) *cached {
	if e := b.profiles[name]; e != nil {
		return e.mem.Load()
	}
	return nil
}

// keep sets the profile's token in memory (nil forgets it).
func (b *Broker) keep(name string, c *cached) {
	if e := b.profiles[name]; e != nil {
		e.mem.Store(c)
	}
}

// TokenOptions tune one Token call.
type TokenOptions struct {
	// MinTTL: a token with less time left is renewed first.
	MinTTL time.Duration
	// Force renews even a fresh token.
	Force bool
	// Strict reports a failed early renewal as an error even though the
	// current token is still valid (the background refresher needs to know).
	Strict bool
	// IDToken makes Handout carry the OpenID id_token the server sent with
	// the token (an error when it sent none).
	IDToken bool
}

// retryPause is how long a still-valid token is handed out after a failed
// early renewal before renewal is tried again on the request path.
const retryPause = 30 * time.Second

// Token returns a valid access token for the profile: from memory, else
// from the store, else from the vendor. A token is persisted before it is
// returned, and concurrent callers share one upstream request.
func (b *Broker) Token(ctx context.Context, name string, o TokenOptions) (*Token, error) {
	p, err := b.Provider(name)
	if err != nil {
		return nil, err
	}
	if !o.Force {
		if t := b.hot(name, o.MinTTL); t != nil {
			return t.Clone(), nil
		}
	}
	// The renewal runs on its own, not on the context of the caller that
	// happened to start it: the others wait on it too, and once the vendor
	// may have rotated a refresh token its answer must be stored, not
	// dropped because that caller went away (another process would then
	// send a second token request). Each caller stops waiting when its own
	// context ends.
	if err := ctx.Err(); err != nil {
		return nil, err // a caller already gone starts nothing
	}
	if !b.flying.start() {
		return nil, &failure.Error{Kind: failure.Other, Profile: name, Msg: "the broker is closed"}
	}
	ch := b.flights.DoChan(name, func() (any, error) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), renewTimeout)
		defer cancel()
		stop := context.AfterFunc(b.life, cancel) // Close: stop waiting (what is sent runs on, see renewLeased)
		defer stop()
		return b.renew(rctx, name, p, o)
	})
	var v any
	select {
	case r := <-ch:
		b.flying.done()
		v, err = r.Val, r.Err
	case <-ctx.Done():
		go func() { <-ch; b.flying.done() }() // Close waits for the answer to be stored
		return nil, ctx.Err()
	}
	if err != nil {
		return nil, failure.WithProfile(err, name)
	}
	return v.(*Token).Clone(), nil
}

// leaseOwner names one acquisition: unique even within this process, so a
// lease serialises goroutines of one process (a login and a renewal) too.
func (b *Broker) leaseOwner() string {
	return b.owner + "." + strconv.FormatInt(b.leases.Add(1), 10)
}

// token is Token for the request path: the shared in-memory token when it
// is fresh (never to be changed by the caller), else a renewal.
func (b *Broker) token(ctx context.Context, name string) (*Token, error) {
	if t := b.hot(name, 0); t != nil {
		return t, nil
	}
	return b.Token(ctx, name, TokenOptions{})
}

// renew runs once per profile at a time within the process; the store
// lease makes it once at a time across processes and replicas.
func (b *Broker) renew(ctx context.Context, name string, p provider.Provider, o TokenOptions) (*Token, error) {
	if p.Describe().Stateless {
		t, err := p.Obtain(ctx, nil)
		if err == nil {
			err = checkToken(name, t)
		}
		if err != nil {
			return nil, err
		}
		b.remember(name, t)
		return t, nil
	}
	st, err := b.store()
	if err != nil {
		return nil, err
	}
	seen, err := st.Get(ctx, name)
	if err != nil {
		// The store is unreachable: a token in memory still works until it expires.
		if c := b.cached(name); !o.Force && c.Valid(b.opts.Now(), o.MinTTL) {
			b.pause(name, c, err)
			b.opts.Warn(fmt.Sprintf("profile %q: the state is unavailable, serving the token in memory until it expires: %v", name, err))
			return c, nil
		}
		return nil, err
	}
	if !o.Force && b.fresh(seen, b.opts.Now(), o.MinTTL) {
		b.remember(name, seen)
		return seen, nil
	}
	var out *Token
	err = store.WithLease(ctx, st, name, b.leaseOwner(), b.opts.LeaseTTL, func(l *store.Leased) (err error) {
		out, err = b.renewLeased(ctx, st, l, p, o, seen)
		return err
	})
	return out, err
}

// renewLeased is renew's part under the profile's lease: it re-reads the
// stored token, renews it if still due, and stores the new one.
func (b *Broker) renewLeased(ctx context.Context, st store.Store, l *store.Leased, p provider.Provider, o TokenOptions, seen *Token) (*Token, error) {
	name := l.Profile()
	// Re-read under the lease: another process may have renewed meanwhile.
	prev, err := l.Get(ctx)
	if err != nil {
		return nil, err
	}
	renewedMeanwhile := prev != nil && (seen == nil || prev.Generation != seen.Generation)
	if (!o.Force || renewedMeanwhile) && b.fresh(prev, b.opts.Now(), o.MinTTL) {
		b.remember(name, prev)
		return prev, nil
	}
	action := "obtain"
	if prev.RefreshUsable(b.opts.Now()) {
		action = "refresh"
	}
	if p.Describe().SeedOnly && !prev.RefreshUsable(b.opts.Now()) {
		return nil, b.seedNeeded(ctx, st, name, prev)
	}
	began := time.Now()
	next, err := (*Token)(nil), b.heldBack(ctx, st, name, p)
	if err == nil && action == "refresh" && !prev.RefreshRejected.IsZero() && p.Describe().Interactive {
		err = refreshDead(name, prev) // sent before and refused: send nothing
	}
	if err == nil {
		err = ctx.Err() // Close began while this waited: send nothing
	}
	held := err != nil // nothing is sent
	// Once the request is sent, the answer is stored whatever happens to
	// ctx: the vendor may have rotated the refresh token it was sent. The
	// whole of it, every step and the commit, stays bounded.
	sent, stop := context.WithTimeout(context.WithoutCancel(ctx), renewTimeout)
	defer stop()
	if !held {
		next, err = b.obtain(sent, name, p, prev)
		if action == "refresh" && p.Describe().Interactive && isRefreshDead(err) {
			b.markRefreshDead(sent, l, prev)
		}
		if err == nil {
			err = checkToken(name, next)
		}
		err = b.scrub(name, prev, err)
		if sent := !(p.Describe().Interactive && action == "obtain"); sent {
			// (An interactive profile without a refresh token sends nothing:
			// only a person can get it a token.)
			b.observe().Requested(name, action, err, time.Since(began))
		}
		b.keepRetryAfter(st, name, err)
	}
	if err != nil {
		if !held {
			b.audit(sent, st, name, action, "", err)
		}
		// A failed renewal keeps the last good token; hand it out while it
		// still works (pausing before the next try, so callers are not each
		// sent to a failing vendor) unless the caller asked for a newer one.
		if prev.Valid(b.opts.Now(), o.MinTTL) {
			b.pause(name, prev, err)
			if !o.Force && !o.Strict {
				b.opts.Warn(fmt.Sprintf("profile %q: renewing ahead of expiry failed, the current token is still valid: %v", name, err))
				return prev, nil
			}
		}
		return nil, err
	}
	if next.Grant == "refresh_token" {
		action = "refresh"
	}
	var gen int64
	if prev != nil {
		gen = prev.Generation
	}
	if err := b.commit(sent, l, next, gen); err != nil {
		if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrFenced) || errors.Is(err, store.ErrNoLease) {
			// Another replica wrote first, or this one lost the lease: the
			// state has moved on without this token.
			err = &failure.Error{Kind: failure.Other, Profile: name, Msg: "the new token could not be stored", Err: err,
				Hint: "another process renewed the token meanwhile; the next call reads it"}
			b.audit(sent, st, name, action, next.Grant, err)
			return nil, err
		}
		// The vendor has answered (and may have rotated its refresh token):
		// the new token is never dropped. It is served from memory and
		// written as soon as the state answers again.
		b.remember(name, next)
		b.keepWriting(name, action, next, gen, l.Owner())
		b.opts.Warn(fmt.Sprintf("profile %q: the new token could not be stored yet (%v); it is served from memory and written when the state answers", name, err))
		return next, nil
	}
	b.audit(sent, st, name, action, next.Grant, nil)
	b.remember(name, next)
	return next, nil
}

// inFlight counts the renewals callers started, those whose caller left
// included, so that Close can wait for them; once Close has begun it lets
// none start. (A WaitGroup would let an Add race Close's Wait.)
type inFlight struct {
	mu      sync.Mutex
	n       int
	closing bool
	idle    chan struct{} // made by wait, closed when n drops to 0
}

// start counts a renewal in; false once Close has begun.
func (f *inFlight) start() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closing {
		return false
	}
	f.n++
	return true
}

func (f *inFlight) done() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n--; f.n == 0 && f.idle != nil {
		close(f.idle)
		f.idle = nil
	}
}

// close lets no renewal start from now on.
func (f *inFlight) close() {
	f.mu.Lock()
	f.closing = true
	f.mu.Unlock()
}

// wait returns when no renewal is in flight.
func (f *inFlight) wait() {
	f.mu.Lock()
	if f.n == 0 {
		f.mu.Unlock()
		return
	}
	if f.idle == nil {
		f.idle = make(chan struct{})
	}
	idle := f.idle
	f.mu.Unlock()
	<-idle
}

// commitAttempts bounds the writes of a new token tried while its
// callers wait; after them the token is handed out and written in the
// background (keepWriting).
const commitAttempts = 3

// commit writes a new token under the lease, trying again a few times
// while the state is unavailable (a blip), within commitTimeout.
func (b *Broker) commit(ctx context.Context, l *store.Leased, next *Token, gen int64) error {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	pause := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := l.Put(cctx, next, gen)
		if err == nil || errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrFenced) || errors.Is(err, store.ErrNoLease) {
			return err
		}
		if attempt == commitAttempts || cctx.Err() != nil || b.opts.Clock.Sleep(cctx, pause) != nil {
			return err
		}
		pause *= 2
	}
}

// keepWriting writes a token the vendor issued but the state could not
// take, in the background, until it is stored or the state holds
// something newer (another process renewed: its token wins). It leases as
// the renewal's owner, whose lease the unreachable state may still hold
// (its release failed too), so it takes that lease back at once instead
// of waiting out its time to live, and gives it back when done. Only one
// such writer runs per profile.
func (b *Broker) keepWriting(name, action string, next *Token, gen int64, owner string) {
	e := b.profiles[name]
	if e == nil || !e.writing.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer e.writing.Store(false)
		pause := time.Second
		for {
			select {
			case <-b.closed:
				return
			case <-b.opts.Clock.After(pause):
			}
			pause = min(2*pause, 30*time.Second)
			st, err := b.store()
			if err != nil {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), b.opts.LeaseTTL)
			err = store.WithLease(ctx, st, name, owner, b.opts.LeaseTTL, func(l *store.Leased) error {
				cur, err := l.Get(ctx)
				if err != nil {
					return err
				}
				if cur != nil && cur.Generation != gen {
					return store.ErrConflict
				}
				return l.Put(ctx, next, gen)
			})
			cancel()
			switch {
			case err == nil:
				b.audit(ctx, st, name, action, next.Grant, nil)
				b.opts.Warn(fmt.Sprintf("profile %q: the new token is stored now", name))
				return
			case errors.Is(err, store.ErrConflict):
				b.Invalidate(name)
				return
			}
		}
	}()
}

// heldBack refuses to send a token request while the vendor's last
// Retry-After on one runs, as recorded in the store by any process or
// replica: RingCentral restarts its penalty on every request made during
// it, so a job retrying each minute would never get out.
func (b *Broker) heldBack(ctx context.Context, st store.Store, name string, p provider.Provider) error {
	hs, ok := st.(store.Holds)
	if !ok {
		return nil
	}
	until, err := hs.HoldUntil(ctx, name)
	if err != nil || until.IsZero() {
		return nil // an unreadable hold does not stop renewals; the vendor's answer will
	}
	wait := until.Sub(b.opts.Now())
	if wait <= 0 {
		return nil
	}
	wait = (wait + time.Second - 1).Truncate(time.Second) // whole seconds, never short
	return &failure.Error{Kind: failure.RateLimited, Profile: name, RetryAfter: wait,
		Msg: fmt.Sprintf("%s asked for no token requests until %s (Retry-After); tokenbroker sends none before then",
			p.Describe().Vendor, until.UTC().Format(time.RFC3339)),
		Hint: fmt.Sprintf("wait %s and try again", wait)}
}

// keepRetryAfter records a vendor's Retry-After on a token request in the
// store, for every process and replica to obey.
func (b *Broker) keepRetryAfter(st store.Store, name string, err error) {
	var fe *failure.Error
	hs, ok := st.(store.Holds)
	if !ok || !errors.As(err, &fe) || fe.Kind != failure.RateLimited || fe.RetryAfter <= 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), commitTimeout)
	defer cancel()
	if herr := hs.SetHold(ctx, name, b.opts.Now().Add(fe.RetryAfter)); herr != nil {
		b.opts.Warn(fmt.Sprintf("profile %q: the vendor's Retry-After could not be recorded: %v", name, herr))
	}
}

// obtain asks the provider, and when the vendor refuses the stored refresh
// token, tries the one before it: the vendor may never have seen the newer
// one used. When both are refused the only way on is a person.
func (b *Broker) obtain(ctx context.Context, name string, p provider.Provider, prev *Token) (*Token, error) {
	next, err := p.Obtain(ctx, prev)
	d := p.Describe()
	var fe *failure.Error
	if failure.KindOf(err) != failure.Rejected || !prev.RefreshUsable(b.opts.Now()) || !d.Interactive || !errors.As(err, &fe) {
		return next, err
	}
	if fe.Code == "invalid_client" {
		return nil, err // the client's credentials were refused: a login would not help
	}
	// The one before the newest only where the vendor's rules make it
	// safe: a server with reuse detection revokes the chain when an old
	// refresh token comes back.
	triedFallback := d.RefreshFallback && prev.PrevRefreshToken != ""
	if triedFallback {
		fb := prev.Clone()
		fb.RefreshToken, fb.PrevRefreshToken = prev.PrevRefreshToken, ""
		if next, ferr := p.Obtain(ctx, fb); ferr == nil {
			b.opts.Warn(fmt.Sprintf("profile %q: the stored refresh token was refused; recovered with the previous one", name))
			return next, nil
		}
	}
	msg := "refresh token rejected: re-login needed (" + fe.Msg
	if triedFallback {
		msg += "; the one before it was refused too"
	}
	return nil, &failure.Error{Kind: failure.Rejected, Profile: name, Endpoint: fe.Endpoint, Code: fe.Code, Msg: msg + ")",
		Hint: "run `tokenbroker login " + name + "` (or `tokenbroker import " + name + " FILE`); the access token is handed out until it expires"}
}

// isRefreshDead says whether err is the vendor refusing the refresh token
// for good (not the client's credentials, which a login would not fix).
func isRefreshDead(err error) bool {
	var fe *failure.Error
	return failure.KindOf(err) == failure.Rejected && errors.As(err, &fe) && fe.Code != "invalid_client"
}

// markRefreshDead stores that prev's refresh token was refused, so that no
// process or replica sends it again, before or after a restart, until a
// login replaces it. The access token is kept and handed out.
func (b *Broker) markRefreshDead(ctx context.Context, l *store.Leased, prev *Token) {
	dead := prev.Clone()
	dead.RefreshRejected = b.opts.Now()
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	if err := l.Put(cctx, dead, prev.Generation); err != nil {
		b.opts.Warn(fmt.Sprintf("profile %q: that the refresh token was refused could not be stored: %v", l.Profile(), err))
		return
	}
	*prev = *dead // what is kept in memory from here on
}

// refreshDead is the error for a profile whose stored refresh token the
// vendor refused: nothing is sent.
func refreshDead(name string, t *Token) error {
	return &failure.Error{Kind: failure.Rejected, Profile: name,
		Msg:  "refresh token rejected at " + t.RefreshRejected.UTC().Format(time.RFC3339) + ": re-login needed (nothing was sent: the vendor refused this refresh token before)",
		Hint: "run `tokenbroker login " + name + "` (or `tokenbroker import " + name + " FILE`); the access token is handed out until it expires"}
}

// scrub removes the profile's secrets, and the tokens of t, from a
// vendor's error before it is logged, audited or shown: vendors echo the
// request in their error bodies.
func (b *Broker) scrub(name string, t *Token, err error) error {
	if err == nil {
		return nil
	}
	var secrets []string
	if prof, perr := b.cfg.Profile(name); perr == nil {
		secrets = prof.SecretValues()
		// The Basic credential of client authentication, both ways it is
		// built (RFC 6749 §2.3.1 form-encodes id and secret first).
		if id, err := prof.ClientID.Resolve(); err == nil && id != "" {
			if cs, err := prof.ClientSecret.Resolve(); err == nil && cs != "" {
				secrets = append(secrets, id+":"+cs, url.QueryEscape(id)+":"+url.QueryEscape(cs))
			}
		}
	}
	if t != nil {
		secrets = append(secrets, t.AccessToken, t.RefreshToken, t.PrevRefreshToken)
	}
	return failure.Scrub(err, secrets)
}

// callerKey is the context key of the serve client a call is for.
type callerKey struct{}

// WithClient marks ctx as a call of the serve client name, so that the
// audit events the call causes name it.
func WithClient(ctx context.Context, name string) context.Context {
	return context.WithValue(ctx, callerKey{}, name)
}

// audit records an event, naming the client whose call caused it; a
// failure to record it is not the caller's failure.
func (b *Broker) audit(ctx context.Context, st store.Store, name, action, grant string, err error) {
	client, _ := ctx.Value(callerKey{}).(string)
	e := store.Event{Time: b.opts.Now(), Profile: name, Action: action, Grant: grant, Outcome: "ok", PID: os.Getpid(), Client: client}
	if err != nil {
		e.Outcome, e.ErrorClass, e.Error = "failed", failure.KindOf(err).String(), err.Error()
	}
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), commitTimeout)
	defer cancel()
	if aerr := st.Append(actx, e); aerr != nil {
		b.opts.Warn(fmt.Sprintf("profile %q: the audit log could not be written: %v", name, aerr))
	}
}

// fresh reports whether t can be handed out without renewing: valid for
// MinTTL, not past its refresh point, and its refresh token not near the
// end of its life (Aruba drops refresh tokens idle for 15 days).
func (b *Broker) fresh(t *Token, now time.Time, minTTL time.Duration) bool {
	if !t.Valid(now, minTTL) {
		return false
	}
	if !t.Expiry.IsZero() && !now.Before(b.refreshAt(t)) {
		return false
	}
	if ka := keepAliveAt(t); !ka.IsZero() && !now.Before(ka) {
		return false
	}
	return true
}

// keepAliveAt is when a refresh token should be used so it does not die:
// at the start of the last fifth of its life. Zero when not applicable.
func keepAliveAt(t *Token) time.Time {
	if t.RefreshToken == "" || t.RefreshExpiry.IsZero() {
		return time.Time{}
	}
	life := t.RefreshExpiry.Sub(t.ObtainedAt)
	if life <= 0 {
		return time.Time{}
	}
	return t.RefreshExpiry.Add(-life / 5)
}

// refreshAt is when a token should be renewed: at the refresh fraction of
// its lifetime, less a jitter derived from the token so that it is stable
// across processes yet differs between tokens.
func (b *Broker) refreshAt(t *Token) time.Time {
	life := t.Lifetime()
	if life <= 0 {
		return t.Expiry
	}
	r := rand.New(rand.NewPCG(uint64(t.ObtainedAt.UnixNano()), uint64(len(t.AccessToken))))
	jitter := time.Duration(r.Float64() * refreshJitter * float64(life))
	return t.ObtainedAt.Add(time.Duration(b.opts.RefreshFraction*float64(life)) - jitter)
}

// cached is a token in memory with its refresh point worked out once, so
// the hot path neither locks nor allocates. Its token is never changed.
type cached struct {
	tok       *Token
	refreshAt time.Time
	handout   atomic.Pointer[[]byte] // the token API's JSON for tok, made on first ask
}

// hot returns the in-memory token when it can be handed out as it is.
func (b *Broker) hot(name string, minTTL time.Duration) *Token {
	c := b.mem(name)
	if c == nil {
		return nil
	}
	now := b.opts.Now()
	if !c.tok.Valid(now, minTTL) || (!c.refreshAt.IsZero() && !now.Before(c.refreshAt)) {
		return nil
	}
	return c.tok
}

func (b *Broker) cached(name string) *Token {
	if c := b.mem(name); c != nil {
		return c.tok
	}
	return nil
}

// remember keeps a private copy of t, with the earliest moment it must be
// looked at again: its refresh point or its refresh token's keep-alive.
func (b *Broker) remember(name string, t *Token) {
	c := &cached{tok: t.Clone(), refreshAt: b.refreshAt(t)}
	if ka := keepAliveAt(t); !ka.IsZero() && (c.refreshAt.IsZero() || ka.Before(c.refreshAt)) {
		c.refreshAt = ka
	}
	b.keep(name, c)
}

// pause keeps t in memory as usable until the next renewal attempt is due:
// after retryPause, the vendor's Retry-After, or shortly before expiry.
func (b *Broker) pause(name string, t *Token, err error) {
	next := b.opts.Now().Add(retryPause)
	var fe *failure.Error
	if errors.As(err, &fe) && fe.RetryAfter > retryPause {
		next = b.opts.Now().Add(fe.RetryAfter)
	}
	if !t.Expiry.IsZero() && next.After(t.Expiry.Add(-time.Second)) {
		next = t.Expiry.Add(-time.Second)
	}
	b.keep(name, &cached{tok: t.Clone(), refreshAt: next})
}

func (b *Broker) forget(name string) { b.keep(name, nil) }

// Invalidate marks the in-memory copy of a profile's token ("" for all)
// as stale, because another process or replica wrote a newer one: the next
// call reads the store. The copy is not dropped: while the store cannot be
// read (a PostgreSQL outage, whose start is also when the watch reports
// that anything may have changed) it is still handed out until it expires.
func (b *Broker) Invalidate(name string) {
	stale := func(e *profileState) {
		if c := e.mem.Load(); c != nil {
			e.mem.Store(&cached{tok: c.tok, refreshAt: staleSince})
		}
	}
	if name != "" {
		if e := b.profiles[name]; e != nil {
			stale(e)
		}
		return
	}
	for _, e := range b.profiles {
		stale(e)
	}
}

// staleSince is a refresh point long past: a token marked with it is never
// handed out from memory without a look at the store first.
var staleSince = time.Unix(1, 0)

// Headers returns the header lines that attach a valid token to a
// request; for PROFILE/TENANT, the MSP profile's token with the vendor's
// tenant header naming the tenant.
func (b *Broker) Headers(ctx context.Context, name string) (http.Header, error) {
	h, err := b.Handout(ctx, name, TokenOptions{})
	if err != nil {
		return nil, err
	}
	out := make(http.Header, len(h.Headers))
	for k, v := range h.Headers {
		out[k] = []string{v}
	}
	return out, nil
}

// Stored returns the stored token without renewing it (nil when none).
// A fresh one is also kept in memory, as a read by Token keeps it, so a
// Token call that follows does not read the store again.
func (b *Broker) Stored(ctx context.Context, name string) (*Token, error) {
	p, err := b.Provider(name)
	if err != nil {
		return nil, err
	}
	if p.Describe().Stateless {
		return p.Obtain(ctx, nil)
	}
	st, err := b.store()
	if err != nil {
		return nil, err
	}
	t, err := st.Get(ctx, name)
	if err == nil && b.fresh(t, b.opts.Now(), 0) {
		b.remember(name, t) // a copy
	}
	return t, failure.WithProfile(err, name)
}

// Config returns the broker's configuration.
func (b *Broker) Config() *config.Config { return b.cfg }

// Handout is a token as given to a caller: by `token --json` and the local
// API. It carries no refresh token.
type Handout struct {
	AccessToken string            `json:"access_token"`
	TokenType   string            `json:"token_type"`
	ExpiresAt   string            `json:"expires_at,omitempty"` // RFC 3339; absent when the vendor did not say
	Headers     map[string]string `json:"headers"`
	IDToken     string            `json:"id_token,omitempty"` // only when asked for (TokenOptions.IDToken)
}

// HandoutJSON is Handout encoded as JSON, encoded once per token: the local
// token API's hot path.
func (b *Broker) HandoutJSON(ctx context.Context, name string) ([]byte, error) {
	if !strings.Contains(name, "/") { // PROFILE/TENANT is not kept ready
		if j, ok, err := b.handoutJSONInMemory(name); ok || err != nil {
			return j, err
		}
	}
	h, err := b.Handout(ctx, name, TokenOptions{})
	if err != nil {
		return nil, err
	}
	j, err := json.Marshal(h)
	return append(j, '\n'), err
}

func (b *Broker) handoutJSONInMemory(name string) ([]byte, bool, error) {
	c := b.mem(name)
	if c == nil {
		return nil, false, nil
	}
	if b.hot(name, 0) != c.tok {
		return nil, false, nil
	}
	if j := c.handout.Load(); j != nil {
		return *j, true, nil
	}
	h, err := b.handout(name, c.tok)
	if err != nil {
		return nil, false, err
	}
	j, err := json.Marshal(h)
	if err != nil {
		return nil, false, err
	}
	j = append(j, '\n')
	c.handout.Store(&j)
	return j, true, nil
}

// Handout returns a valid token for the profile in the shape callers get.
// For PROFILE/TENANT it is the MSP profile's one token, with the vendor's
// tenant header naming the tenant.
func (b *Broker) Handout(ctx context.Context, name string, o TokenOptions) (*Handout, error) {
	prof, ten, err := b.Tenant(ctx, name)
	if err != nil {
		return nil, err
	}
	name = prof.Name
	t, err := b.Token(ctx, name, o)
	if err != nil {
		return nil, err
	}
	h, err := b.handout(name, t)
	if err == nil && ten != nil {
		err = b.forTenant(name, h, ten.ID)
	}
	if err != nil || !o.IDToken {
		return h, err
	}
	if h.IDToken = t.Secrets["id_token"]; h.IDToken == "" {
		return nil, &failure.Error{Kind: failure.Config, Profile: name, Msg: "the server sent no id_token with this token",
			Hint: "an OpenID server sends one when the profile's scopes include openid; log in again after adding it"}
	}
	return h, nil
}

// forTenant makes a handout of an MSP profile's token one for its tenant
// id: the vendor's tenant header names it (and nothing else does).
func (b *Broker) forTenant(name string, h *Handout, id string) error {
	p, err := b.Provider(name)
	if err != nil {
		return err
	}
	th := p.Describe().TenantHeader // provider.New refuses tenants without one
	hs := make(map[string]string, len(h.Headers)+1)
	for k, v := range h.Headers {
		if !strings.EqualFold(k, th) {
			hs[k] = v
		}
	}
	hs[th] = id
	h.Headers = hs
	return nil
}

func (b *Broker) handout(name string, t *Token) (*Handout, error) {
	p, err := b.Provider(name)
	if err != nil {
		return nil, err
	}
	h := &Handout{AccessToken: t.AccessToken, TokenType: t.TokenType, Headers: map[string]string{}}
	if h.TokenType == "" {
		h.TokenType = "Bearer"
	}
	if !t.Expiry.IsZero() {
		h.ExpiresAt = t.Expiry.UTC().Format(time.RFC3339)
	}
	hs := p.Headers(t)
	if err := checkHeaders(name, hs); err != nil {
		return nil, err
	}
	for k, v := range hs {
		h.Headers[k] = v[0]
	}
	return h, nil
}

// clientCert reads the profile's client certificate and key (mutual TLS),
// nil when it has none.
func clientCert(p *config.Profile) (*tls.Certificate, error) {
	if !p.TLSClientCert.IsSet() && !p.TLSClientKey.IsSet() {
		return nil, nil
	}
	bad := func(msg string) error {
		return &failure.Error{Kind: failure.Config, Profile: p.Name, Msg: msg, Hint: "give tls_client_cert and tls_client_key as PEM (file:PATH or env:NAME)"}
	}
	if !p.TLSClientCert.IsSet() || !p.TLSClientKey.IsSet() {
		return nil, bad("mutual TLS needs both tls_client_cert and tls_client_key")
	}
	certPEM, err := p.TLSClientCert.Resolve()
	if err != nil {
		return nil, bad("tls_client_cert: " + err.Error())
	}
	keyPEM, err := p.TLSClientKey.Resolve()
	if err != nil {
		return nil, bad("tls_client_key: " + err.Error())
	}
	c, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM))
	if err != nil {
		return nil, bad("tls_client_cert and tls_client_key are not a certificate and its key: " + err.Error())
	}
	return &c, nil
}
