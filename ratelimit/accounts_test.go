package ratelimit

import (
	"context"
	"sync"
	"testing"
	"time"
)

// answerClock is a clock that moves only when slept on or told to.
type answerClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *answerClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *answerClock) add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}
func (c *answerClock) Sleep(_ context.Context, d time.Duration) error { c.add(max(d, 0)); return nil }
func (c *answerClock) After(d time.Duration) <-chan time.Time {
	c.add(d)
	ch := make(chan time.Time, 1)
	ch <- c.Now()
	return ch
}

// slowStore answers a reservation after a round trip of rtt, with the
// slot due at once.
type slowStore struct {
	clock *answerClock
	rtt   time.Duration
}

func (s slowStore) Reserve(context.Context, string, int, time.Duration, time.Duration) (time.Duration, error) {
	s.clock.add(s.rtt)
	return 0, nil
}
func (slowStore) SpendQuota(context.Context, string, time.Time) error   { return nil }
func (slowStore) QuotaSpent(context.Context, string) (time.Time, error) { return time.Time{}, nil }

// A per-call reservation in the shared state (beside an older release)
// gives a turn counted from the state's answer: a slow round trip does
// not make every call late, and so refused.
func TestSharedTurnCountsFromTheAnswer(t *testing.T) {
	clk := &answerClock{now: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	acc := NewAccounts("me").Account("a", AccountSpec{Key: "a", PerSecond: 7, Margin: DefaultMargin, MaxWait: DefaultMaxWait,
		Shared: slowStore{clk, 50 * time.Millisecond}, Clock: clk, Warn: func(string) {}})
	turn, err := acc.Turn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if late := clk.Now().Sub(turn); late > acc.Lateness() {
		t.Fatalf("the turn is %s behind the clock after a 50 ms round trip, allowed %s", late, acc.Lateness())
	}
}
