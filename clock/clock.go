// Package clock is tokenbroker's one time source. The broker, its rate
// limits, the refresher and serve all read the Clock they are given, so a
// test that moves a fake one moves all of them together.
package clock

import (
	"context"
	"time"

	"github.com/tokenbroker/tokenbroker/internal/wait"
)

// Clock tells the time and waits.
type Clock interface {
	Now() time.Time
	// Sleep waits d, or until ctx ends (then it returns ctx's error).
	Sleep(ctx context.Context, d time.Duration) error
	// After delivers the time on the channel once d has passed.
	After(d time.Duration) <-chan time.Time
}

// Real is the wall clock.
type Real struct{}

func (Real) Now() time.Time                                   { return time.Now() }
func (Real) Sleep(ctx context.Context, d time.Duration) error { return wait.Sleep(ctx, d) }
func (Real) After(d time.Duration) <-chan time.Time           { return time.After(d) }

// Or is c, or the wall clock when c is nil.
func Or(c Clock) Clock {
	if c == nil {
		return Real{}
	}
	return c
}

// Func is a Clock that reads its time from now and waits on the wall clock:
// for callers that only need to set the time (Options.Now).
type Func func() time.Time

func (f Func) Now() time.Time                                 { return f() }
func (Func) Sleep(ctx context.Context, d time.Duration) error { return wait.Sleep(ctx, d) }
func (Func) After(d time.Duration) <-chan time.Time           { return time.After(d) }
