package ratelimit

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// stepClock moves its time forward by whatever is waited for, at once.
type stepClock struct{ fakeClock }

func (c *stepClock) After(d time.Duration) <-chan time.Time {
	c.Advance(d)
	return c.fakeClock.After(0)
}

// leaserFunc adapts a function of one ask to Leaser.
type leaserFunc func(ShareAsk) (ShareGrant, error)

func (f leaserFunc) LeaseShares(_ context.Context, asks []ShareAsk) ([]ShareGrant, error) {
	var out []ShareGrant
	for _, a := range asks {
		g, err := f(a)
		if err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, nil
}

// A share renewed by a store that then stops answering is kept until its
// lease runs out, then refused at once (no wait, no call), said once; when
// the store answers again the share is back, said once, and given up on
// the way out.
func TestShareRunsOutAndComesBack(t *testing.T) {
	clk := &stepClock{fakeClock{now: t0}}
	var warned []string
	s := NewShare("acct", "me", 7, time.Second, 10*time.Second, clk, func(m string) { warned = append(warned, m) })
	var mu sync.Mutex
	var asks []ShareAsk
	down, renewals := false, 0
	ctx, cancel := context.WithCancel(context.Background())
	l := leaserFunc(func(a ShareAsk) (ShareGrant, error) {
		mu.Lock()
		defer mu.Unlock()
		asks = append(asks, a)
		if a.TTL == 0 {
			return ShareGrant{}, nil
		}
		renewals++
		switch {
		case renewals == 2:
			down = true
		case renewals == 8:
			down = false
		case renewals == 10:
			cancel()
		}
		if down {
			if renewals == 6 { // while cut off: a call is refused at once
				if _, err := s.Wait(context.Background()); err == nil || !strings.Contains(err.Error(), "ran out") {
					t.Errorf("a call while the share ran out: %v", err)
				}
			}
			return ShareGrant{}, errors.New("the PostgreSQL state is unavailable")
		}
		return ShareGrant{Slots: 7, Target: 7, Members: 1}, nil
	})
	Renew(ctx, l, func() []*Share { return []*Share{s} })
	if len(warned) != 2 || !strings.Contains(warned[0], "ran out") || !strings.Contains(warned[1], "renewed again") {
		t.Fatalf("warnings: %q", warned)
	}
	if last := asks[len(asks)-1]; last.TTL != 0 || last.Using != 0 {
		t.Errorf("the share was not given up on the way out: %+v", last)
	}
	if st := s.State(); st.Held || st.Slots != 0 {
		t.Errorf("after Run: %+v", st)
	}
}

// A share that shrinks is not used beyond its new size, and the store is
// asked to take the excess only once it is no longer used.
func TestShareShrinksBeforeGivingUp(t *testing.T) {
	clk := &fakeClock{now: t0}
	s := NewShare("acct", "me", 7, time.Second, 10*time.Second, clk, nil)
	s.grant(ShareGrant{Slots: 7, Target: 7, Members: 1}, clk.Now())
	for range 7 {
		if _, err := s.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	start := clk.Now()
	s.grant(ShareGrant{Slots: 7, Target: 2, Members: 3}, clk.Now()) // told its part: 2
	if st := s.State(); st.Slots != 2 {
		t.Fatalf("after the grant: %+v", st)
	}
	var at []time.Time
	for range 4 {
		s.grant(ShareGrant{Slots: 2, Target: 2, Members: 3}, clk.Now()) // renewals keep the lease
		if _, err := s.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
		at = append(at, clk.Now())
	}
	// 2 per window from now on: the 3rd call is a window after the 1st.
	if d := at[2].Sub(at[0]); d < time.Second {
		t.Errorf("3 calls within %s after shrinking to 2 per second (start %s, calls %v)", d, start, at)
	}
}

// A replica that holds no share yet waits for its grant, at most maxWait,
// then is told why it is refused.
func TestShareWaitsForItsGrant(t *testing.T) {
	s := NewShare("acct", "me", 7, time.Second, 5*time.Second, nil, nil)
	go func() {
		time.Sleep(20 * time.Millisecond)
		s.grant(ShareGrant{Slots: 3, Target: 3, Members: 2}, time.Now())
	}()
	if _, err := s.Wait(context.Background()); err != nil {
		t.Fatalf("waiting for the grant: %v", err)
	}
	none := NewShare("acct", "me", 7, time.Second, 30*time.Millisecond, nil, nil)
	var refused *Refused
	if _, err := none.Wait(context.Background()); !errors.As(err, &refused) || !strings.Contains(err.Error(), "holds no share") {
		t.Fatalf("no grant within maxWait: %v", err)
	}
}

// Shrinking a window forgets turns taken for later, and keeps the calls
// made: the next turn is a window after the newest kept call.
func TestWindowResize(t *testing.T) {
	clk := &fakeClock{now: t0}
	w := NewWindow(3, time.Second, 0, time.Minute, clk)
	for range 3 {
		mustReserve(t, w) // three calls now
	}
	if d := mustReserve(t, w); d != time.Second { // a turn for later
		t.Fatalf("4th turn in %s", d)
	}
	w.resize(1, clk.Now())
	if d := mustReserve(t, w); d != time.Second {
		t.Errorf("after shrinking to 1: next turn in %s, want 1s (after the calls made, not the turn forgotten)", d)
	}
	w.resize(4, clk.Now())
	if d := mustReserve(t, w); d != 0 {
		t.Errorf("after growing to 4: next turn in %s, want now", d)
	}
}
