// Package ratelimit keeps calls to a vendor within its limits: never more
// than N calls in any rolling window, with a bounded wait, and a daily quota
// learned from the vendor's own X-RateLimit headers.
package ratelimit

import (
	"context"
	"fmt"
	"sync"
	"time"

	tbclock "github.com/tokenbroker/tokenbroker/clock"
)

// Defaults for a limit.
const (
	// DefaultMargin widens the window so that network jitter between
	// departure here and arrival at the vendor cannot squeeze N+1 calls into
	// the vendor's second.
	// 30 ms keeps 7/s within 3% of the limit and absorbs the scheduling
	// delays of a loaded two-core machine running several replicas.
	DefaultMargin = 30 * time.Millisecond
	// DefaultMaxWait is how long a call may queue before it is refused.
	DefaultMaxWait = 10 * time.Second
)

// Refused is returned when a call would wait longer than allowed, or the
// daily quota is spent.
type Refused struct {
	RetryAfter time.Duration
	Reason     string
}

func (r *Refused) Error() string {
	return fmt.Sprintf("%s: retry after %s", r.Reason, r.RetryAfter.Round(time.Millisecond))
}

// Clock is tokenbroker's one time source; tests step it.
type Clock = tbclock.Clock

// Window limits calls to N per rolling window. Each call reserves a slot no
// earlier than the slot N calls before it plus the window, so any window
// holds at most N slots; callers sleep until their slot. Reservations are
// taken in arrival order, so the queue is fair. A paced window also keeps
// slots window/N apart (see Paced).
type Window struct {
	n       int
	window  time.Duration
	maxWait time.Duration
	clock   Clock

	paced bool

	mu    sync.Mutex
	slots []time.Time // ring of the last n slots
	next  int
	waits int64 // calls that had to wait
	refus int64 // calls refused
}

// NewWindow allows n calls per `per`, widened by margin, queueing each call
// for at most maxWait. A nil clock is the real one.
func NewWindow(n int, per, margin, maxWait time.Duration, clock Clock) *Window {
	if clock == nil {
		clock = tbclock.Real{}
	}
	return &Window{n: n, window: per + margin, maxWait: maxWait, clock: clock, slots: make([]time.Time, n)}
}

// PerSecond builds a Window from a rate such as 7/s. Fractions keep the
// rate: 0.5 is 1 call per 2 s, 7.5 is 7 calls per 0.933 s.
func PerSecond(rate float64, margin, maxWait time.Duration, clock Clock) *Window {
	if rate < 1 {
		return NewWindow(1, time.Duration(float64(time.Second)/rate), margin, maxWait, clock)
	}
	n := int(rate)
	return NewWindow(n, time.Duration(float64(n)/rate*float64(time.Second)), margin, maxWait, clock)
}

// Reserve takes the next slot and says how long to wait for it, or refuses
// when that is longer than the maximum wait (reserving nothing).
func (w *Window) Reserve() (time.Duration, error) {
	_, wait, err := w.reserve()
	return wait, err
}

// reserve is Reserve that also gives the slot's time.
func (w *Window) reserve() (time.Time, time.Duration, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.clock.Now()
	slot := now
	if oldest := w.slots[w.next]; !oldest.IsZero() && oldest.Add(w.window).After(slot) {
		slot = oldest.Add(w.window)
	}
	if newest := w.slots[(w.next+w.n-1)%w.n]; w.paced && !newest.IsZero() && newest.Add(w.window/time.Duration(w.n)).After(slot) {
		slot = newest.Add(w.window / time.Duration(w.n))
	}
	wait := slot.Sub(now)
	if wait > w.maxWait {
		w.refus++
		return time.Time{}, 0, &Refused{RetryAfter: wait, Reason: "rate limit queue is full"}
	}
	if wait > 0 {
		w.waits++
	}
	w.slots[w.next] = slot
	w.next = (w.next + 1) % w.n
	return slot, wait, nil
}

// Wait reserves a slot and sleeps until it.
func (w *Window) Wait(ctx context.Context) (time.Duration, error) {
	d, err := w.Reserve()
	if err != nil {
		return 0, err
	}
	return d, w.clock.Sleep(ctx, d)
}

// waitTurn reserves a slot, sleeps until it, and gives its time.
func (w *Window) waitTurn(ctx context.Context) (time.Time, error) {
	slot, d, err := w.reserve()
	if err != nil {
		return time.Time{}, err
	}
	return slot, w.clock.Sleep(ctx, d)
}

// Paced makes the window spread calls evenly, at least window/N apart. A
// burst of N calls at one instant keeps the letter of the limit, but then one
// call that arrives late at the vendor (a busy machine, a slow network)
// squeezes N+1 into the vendor's second; evenly spaced calls tolerate
// lateness up to the margin. It returns w.
func (w *Window) Paced() *Window {
	w.paced = true
	return w
}

// resize makes the window allow n calls (n >= 1). It keeps the newest
// slots up to now (the calls made) and, when it grows, the turns taken
// for later; a shrinking window forgets those, whose callers take new
// turns (see Share.Wait). A call reserved after it is at least a window
// after the n-th newest earlier one, so no window holds more than n calls
// from then on, nor more than the larger n across the change.
func (w *Window) resize(n int, now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if n == w.n {
		return
	}
	old := make([]time.Time, 0, w.n) // oldest first
	for i := range w.n {
		if at := w.slots[(w.next+i)%w.n]; n > w.n || !at.After(now) {
			old = append(old, at)
		}
	}
	old = old[max(0, len(old)-n):]
	w.slots = make([]time.Time, n)
	copy(w.slots[n-len(old):], old)
	w.n, w.next = n, 0
}

// Size is the window's calls and span (margin included).
func (w *Window) Size() (n int, window time.Duration) { return w.n, w.window }

// Stats reports how many calls waited and how many were refused.
func (w *Window) Stats() (waited, refused int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.waits, w.refus
}
