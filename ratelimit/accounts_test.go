package ratelimit

import (
	"context"
	"testing"
	"time"
)

// slowStore answers a reservation after a round trip of rtt, with the
// slot due at once.
type slowStore struct {
	clock *fakeClock
	rtt   time.Duration
}

func (s slowStore) Reserve(context.Context, string, int, time.Duration, time.Duration) (time.Duration, error) {
	s.clock.Advance(s.rtt)
	return 0, nil
}
func (slowStore) SpendQuota(context.Context, string, time.Time) error   { return nil }
func (slowStore) QuotaSpent(context.Context, string) (time.Time, error) { return time.Time{}, nil }

// A per-call reservation in the shared state (beside an older release)
// gives a turn counted from the state's answer: a slow round trip does
// not make every call late, and so refused.
func TestSharedTurnCountsFromTheAnswer(t *testing.T) {
	clk := newFakeClock()
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
