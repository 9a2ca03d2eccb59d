package ratelimit

import (
	"context"
	"fmt"
	"sync"
	"time"

	tbclock "github.com/tokenbroker/tokenbroker/clock"
)

// Leaser renews shares of accounts' limits, all of a replica's in one
// round trip: the store every replica shares. It answers one grant per ask.
type Leaser interface {
	LeaseShares(ctx context.Context, asks []ShareAsk) ([]ShareGrant, error)
}

// Share timings. A replica cut off from the store keeps its share for at
// most ShareTTL after its last renewal, then calls nothing; a slot it gives
// up or loses is free for another a window after that.
const (
	ShareTTL          = 3 * time.Second
	shareRenewEvery   = time.Second
	shareRenewTimeout = time.Second
	shareJoinRetry    = 250 * time.Millisecond
)

// Share is this replica's leased part of an account's limit: a paced
// window of as many calls as it holds slots, usable until its lease ends.
// Run renews it; Wait spends it. It is safe for concurrent use.
type Share struct {
	account string
	holder  string
	n       int
	window  time.Duration
	maxWait time.Duration
	clock   Clock
	warn    func(string)

	mu       sync.Mutex
	slots    int       // the slots in use (never more than the target)
	target   int       // the even part the store last named
	members  int       // replicas with a lease, as last seen
	deadline time.Time // the lease's end here; zero before the first grant
	epoch    int       // counts the times the share shrank or ran out
	win      *Window   // nil while slots is 0
	granted  chan struct{}
	lost     bool // the lease ran out without a renewal
	legacy   bool // an older release reserves per call: so does this one
}

// NewShare returns a share of account's n calls per window, held as
// holder; warn is told when the share runs out and when it is back.
func NewShare(account, holder string, n int, window, maxWait time.Duration, clock Clock, warn func(string)) *Share {
	return &Share{account: account, holder: holder, n: n, window: window, maxWait: maxWait, clock: tbclock.Or(clock), warn: warn, granted: make(chan struct{})}
}

// ShareState is a snapshot of a share, for status and metrics.
type ShareState struct {
	Slots, Target, Members, N int
	Held                      bool // a lease is held now
	Lost                      bool // the lease ran out without a renewal
	Legacy                    bool
}

// State reports the share as it stands.
func (s *Share) State() ShareState {
	s.mu.Lock()
	defer s.mu.Unlock()
	held := s.clock.Now().Before(s.deadline)
	slots := s.slots
	if !held {
		slots = 0
	}
	return ShareState{Slots: slots, Target: s.target, Members: s.members, N: s.n, Held: held, Lost: s.lost, Legacy: s.legacy}
}

// Legacy says whether calls are to be reserved one by one in the store, as
// an older release still running beside this one does.
func (s *Share) Legacy() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.legacy
}

// Wait takes one of the share's calls, waiting for its turn (and, while
// the share is first being granted, for the grant) for at most maxWait.
func (s *Share) Wait(ctx context.Context) (time.Duration, error) {
	start := s.clock.Now()
	_, err := s.waitTurn(ctx)
	if err != nil {
		return 0, err
	}
	return s.clock.Now().Sub(start), nil
}

// waitTurn is Wait that gives the turn's time.
func (s *Share) waitTurn(ctx context.Context) (time.Time, error) {
	start := s.clock.Now()
	for {
		s.mu.Lock()
		now := s.clock.Now()
		if s.slots > 0 && now.Before(s.deadline) {
			win, epoch := s.win, s.epoch
			s.mu.Unlock()
			turn, d, err := win.reserve()
			if err != nil {
				return time.Time{}, err
			}
			if err := s.clock.Sleep(ctx, d); err != nil {
				return time.Time{}, err
			}
			// The turn is used only under the lease it was taken in: the
			// lease is renewed every second, and a share that shrank or
			// ran out meanwhile gives a new turn.
			s.mu.Lock()
			ok := s.epoch == epoch && s.clock.Now().Before(s.deadline)
			s.mu.Unlock()
			if ok {
				return turn, nil
			}
			continue
		}
		if s.lost {
			s.mu.Unlock()
			return time.Time{}, &Refused{RetryAfter: shareRenewEvery, Reason: "this replica's share of the rate limit ran out (the state cannot be reached from it)"}
		}
		granted := s.granted
		s.mu.Unlock()
		left := s.maxWait - now.Sub(start)
		if left <= 0 {
			return time.Time{}, &Refused{RetryAfter: shareRenewEvery, Reason: "this replica holds no share of the rate limit yet (the other replicas hold it all)"}
		}
		select {
		case <-granted:
		case <-s.clock.After(left):
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
	}
}

// Renew renews the shares that shares lists, all in one call to l each
// second (sooner while one is giving slots up or waiting for them), until
// ctx ends, then gives them all up. Each share's warn is told once when
// its lease runs out and once when it is back.
func Renew(ctx context.Context, l Leaser, shares func() []*Share) {
	var clock Clock = tbclock.Real{}
	var list []*Share
	defer func() {
		// Give every share up for the other replicas.
		var asks []ShareAsk
		for _, s := range list {
			asks = append(asks, s.leave())
		}
		lctx, cancel := context.WithTimeout(context.Background(), shareRenewTimeout)
		defer cancel()
		if len(asks) > 0 {
			l.LeaseShares(lctx, asks)
		}
	}()
	for ctx.Err() == nil {
		list = shares()
		if len(list) > 0 {
			clock = list[0].clock // the shares' one clock (a test's)
		}
		asks := make([]ShareAsk, len(list))
		sent := make([]time.Time, len(list))
		for i, s := range list {
			asks[i], sent[i] = s.ask()
		}
		rctx, cancel := context.WithTimeout(ctx, shareRenewTimeout)
		var grants []ShareGrant
		err := ctx.Err()
		if len(asks) > 0 {
			grants, err = l.LeaseShares(rctx, asks)
		}
		cancel()
		next := shareRenewEvery
		for i, s := range list {
			if err == nil && i < len(grants) {
				next = min(next, s.apply(grants[i], sent[i]))
			} else if ctx.Err() == nil {
				s.failed(err)
			}
		}
		if next > 0 {
			select {
			case <-ctx.Done():
			case <-clock.After(next):
			}
		}
	}
}

// ask is the share's renewal as of now, and when it is sent.
func (s *Share) ask() (ShareAsk, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	using := s.slots
	if !now.Before(s.deadline) {
		using = 0
	}
	return ShareAsk{Account: s.account, Holder: s.holder, Using: using, N: s.n, Window: s.window, TTL: ShareTTL}, now
}

// apply takes a renewal's grant, says what changed, and returns how soon
// to renew again.
func (s *Share) apply(g ShareGrant, sent time.Time) time.Duration {
	wasLegacy := s.Legacy()
	if s.grant(g, sent) {
		s.warn("this replica's share of the rate limit is renewed again: its calls go on")
	}
	if g.Legacy != wasLegacy {
		if g.Legacy {
			s.warn("an older tokenbroker reserves this account's calls one by one: this replica does so too until it is gone")
		} else {
			s.warn("no older tokenbroker reserves this account's calls any more: this replica uses its share again")
		}
	}
	switch {
	case g.Slots > g.Target:
		return 0 // give the excess up now that it is no longer used
	case g.Slots < g.Target:
		return shareJoinRetry
	}
	return shareRenewEvery
}

// failed notes a renewal that failed, saying so when the lease ran out.
func (s *Share) failed(err error) {
	if s.expire() {
		s.warn("this replica's share of the rate limit ran out (" + fmt.Sprint(err) + "): its calls to this account are refused until the state answers again")
	}
}

// grant applies a renewal sent at sent, and says whether it ends a loss.
func (s *Share) grant(g ShareGrant, sent time.Time) (back bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	slots := min(g.Slots, g.Target)
	if slots < s.slots {
		s.epoch++
	}
	s.slots, s.target, s.members = slots, g.Target, g.Members
	s.deadline = sent.Add(ShareTTL)
	s.legacy = g.Legacy
	if slots > 0 {
		if s.win == nil {
			s.win = NewWindow(slots, s.window, 0, s.maxWait, s.clock).Paced()
		} else {
			s.win.resize(slots, s.clock.Now())
		}
		close(s.granted)
		s.granted = make(chan struct{})
	}
	back, s.lost = s.lost, false
	return back
}

// expire notes a failed renewal, and says whether the lease just ran out.
func (s *Share) expire() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lost || s.deadline.IsZero() || s.clock.Now().Before(s.deadline) {
		return false
	}
	s.lost = true
	s.epoch++
	s.slots = 0
	return true
}

// leave stops using the share and returns the ask that gives it up.
func (s *Share) leave() ShareAsk {
	s.Stop()
	return ShareAsk{Account: s.account, Holder: s.holder, N: s.n, Window: s.window}
}

// Stop makes the share unusable from now on: calls waiting for a turn
// take none, and new calls are refused.
func (s *Share) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.slots, s.deadline, s.lost = 0, time.Time{}, true
	s.epoch++
}
