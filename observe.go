package tokenbroker

import (
	"context"
	"sync"
	"time"
)

// Observer is told what the broker does, for metrics. Implementations must
// be safe for concurrent use and fast: they run on the request path.
type Observer interface {
	// Requested is one upstream token request (action obtain or refresh),
	// with its outcome.
	Requested(profile, action string, err error, took time.Duration)
	// Waited is a call that queued for its rate-limit slot.
	Waited(profile string, d time.Duration)
	// Refused is a call answered 429 by tokenbroker itself.
	Refused(profile string)
}

type noObserver struct{}

func (noObserver) Requested(string, string, error, time.Duration) {}
func (noObserver) Waited(string, time.Duration)                   {}
func (noObserver) Refused(string)                                 {}

func (b *Broker) observe() Observer {
	if b.opts.Observer == nil {
		return noObserver{}
	}
	return b.opts.Observer
}

// DefaultRenewOn401Every is how often, at most, a vendor's 401 renews a
// profile's token, unless the profile's renew_on_401_every says otherwise.
const DefaultRenewOn401Every = 30 * time.Second

// Rejected is told that the vendor's API refused an access token. It
// returns the token to retry with: a newer one when another caller already
// renewed, else a forced renewal shared by all who saw the same rejection.
// It returns nil (and no error) when the 401 is to be passed on as it is:
// no token is in hand, or a 401 renewed the profile's token less than
// renew_on_401_every ago (so the fresh token's 401 is about the call, not
// the token). A path that always answers 401 thus cannot make every call
// a token request (and rotate a refresh token each time).
func (b *Broker) Rejected(ctx context.Context, name, rejected string) (*Token, error) {
	cur := b.cached(name)
	if cur != nil && cur.AccessToken != rejected {
		return cur.Clone(), nil
	}
	every := DefaultRenewOn401Every
	if prof, err := b.cfg.Profile(name); err == nil && prof.RenewOn401Every > 0 {
		every = prof.RenewOn401Every
	}
	now := b.opts.Now()
	if cur == nil || !b.renewals.take(name, now, every) {
		return nil, nil
	}
	// Shared by every caller that saw the same rejection, and not ended by
	// the one that started it (see Token).
	ch := b.flights.DoChan(name+"\x00rejected", func() (any, error) {
		if t := b.cached(name); t != nil && t.AccessToken != rejected {
			return t, nil
		}
		return b.Token(context.WithoutCancel(ctx), name, TokenOptions{Force: true})
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*Token).Clone(), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// renewals remembers when a 401 last renewed each profile's token.
type renewals struct {
	mu   sync.Mutex
	last map[string]time.Time
}

// take reports whether a renewal may start now, and if so records it.
func (r *renewals) take(name string, now time.Time, every time.Duration) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if last, ok := r.last[name]; ok && now.Sub(last) < every {
		return false
	}
	if r.last == nil {
		r.last = map[string]time.Time{}
	}
	r.last[name] = now
	return true
}
