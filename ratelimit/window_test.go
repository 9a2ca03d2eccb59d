package ratelimit

import (
	"context"
	"errors"
	"math"
	"slices"
	"sync"
	"testing"
	"time"
)

// t0 is an arbitrary fixed instant for the fake clocks.
var t0 = time.Date(2025, 3, 4, 15, 0, 0, 0, time.UTC)

// fakeClock is a deterministic Clock: Sleep advances its own time by the
// duration slept and records it; nothing really sleeps. A Sleep on a done
// context returns the context's error without advancing.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func newFakeClock() *fakeClock { return &fakeClock{now: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sleeps = append(c.sleeps, d)
	if d > 0 {
		c.now = c.now.Add(d)
	}
	return nil
}

// After is not used by the window; it fires at once on the fake time.
func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	ch <- c.Now().Add(d)
	return ch
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func (c *fakeClock) Sleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.sleeps)
}

// checkWindow asserts that no window of length w holds more than n of the
// departures: after sorting, departures[i+n] - departures[i] >= w for all i.
func checkWindow(t *testing.T, departures []time.Time, n int, w time.Duration) {
	t.Helper()
	deps := slices.Clone(departures)
	slices.SortFunc(deps, func(a, b time.Time) int { return a.Compare(b) })
	for i := 0; i+n < len(deps); i++ {
		if got := deps[i+n].Sub(deps[i]); got < w {
			t.Fatalf("departures %d and %d are %v apart: %d calls in a window of %v; want at most %d", i, i+n, got, n+1, w, n)
		}
	}
}

// checkRate asserts the achieved rate over the whole schedule is within 5%
// of want (calls per second).
func checkRate(t *testing.T, departures []time.Time, want float64) {
	t.Helper()
	first, last := slices.MinFunc(departures, time.Time.Compare), slices.MaxFunc(departures, time.Time.Compare)
	span := last.Sub(first).Seconds()
	if span <= 0 {
		t.Fatalf("departures span %v; want a positive span", span)
	}
	got := float64(len(departures)-1) / span
	if math.Abs(got-want)/want > 0.05 {
		t.Errorf("achieved rate = %.3f/s over %d calls; want within 5%% of %.3f/s", got, len(departures), want)
	}
}

func TestWindowBurstAtOneInstant(t *testing.T) {
	const n, per, margin = 7, time.Second, 25 * time.Millisecond
	const window = per + margin
	clk := newFakeClock()
	// A queue long enough for all 200: the schedule itself is under test.
	w := NewWindow(n, per, margin, time.Minute, clk)

	var deps []time.Time
	for i := range 200 {
		wait, err := w.Reserve()
		if err != nil {
			t.Fatalf("call %d: Reserve() error = %v; want nil", i, err)
		}
		deps = append(deps, clk.Now().Add(wait))
	}
	for i := range n {
		if got, want := deps[i], t0; !got.Equal(want) {
			t.Errorf("call %d departs at %v; want %v (the first %d depart at once)", i, got.Sub(t0), want.Sub(t0), n)
		}
	}
	if got := deps[n].Sub(t0); got != window {
		t.Errorf("call %d departs at +%v; want +%v", n, got, window)
	}
	checkWindow(t, deps, n, window)
	checkRate(t, deps, float64(n)/window.Seconds())
	// In arrival order: a fair queue never lets a later call depart first.
	if !slices.IsSortedFunc(deps, time.Time.Compare) {
		t.Errorf("departures are not in arrival order")
	}
}

func TestWindowBurstRefusedBeyondMaxWait(t *testing.T) {
	const n, per, margin, maxWait = 7, time.Second, 25 * time.Millisecond, 10 * time.Second
	const window = per + margin
	clk := newFakeClock()
	w := NewWindow(n, per, margin, maxWait, clk)

	var deps []time.Time
	refused := 0
	for i := range 200 {
		wait, err := w.Reserve()
		if err != nil {
			var r *Refused
			if !errors.As(err, &r) {
				t.Fatalf("call %d: error %T %v; want *Refused", i, err, err)
			}
			refused++
			continue
		}
		if wait > maxWait {
			t.Fatalf("call %d: wait %v; want at most %v", i, wait, maxWait)
		}
		deps = append(deps, clk.Now().Add(wait))
	}
	// Waits are k*1.025s for the k-th group of 7: 0..9 fit in 10s.
	if got, want := len(deps), 70; got != want {
		t.Errorf("accepted %d calls; want %d", got, want)
	}
	if got, want := refused, 130; got != want {
		t.Errorf("refused %d calls; want %d", got, want)
	}
	checkWindow(t, deps, n, window)
	// Over whole groups (the 7 at the start are a burst), the rate is 7 per window.
	span := deps[len(deps)-1].Sub(deps[0]).Seconds()
	if got, want := float64(len(deps)-n)/span, float64(n)/window.Seconds(); math.Abs(got-want)/want > 0.05 {
		t.Errorf("rate = %.3f/s; want within 5%% of %.3f/s", got, want)
	}
}

// TestWindowWaitSequential: 200 back-to-back callers, each calling Wait as
// soon as the previous one departed; the fake clock advances by each sleep.
func TestWindowWaitSequential(t *testing.T) {
	const n, per, margin = 7, time.Second, 25 * time.Millisecond
	const window = per + margin
	clk := newFakeClock()
	w := NewWindow(n, per, margin, 10*time.Second, clk)
	ctx := context.Background()

	var deps []time.Time
	for i := range 200 {
		d, err := w.Wait(ctx)
		if err != nil {
			t.Fatalf("call %d: Wait() error = %v; want nil", i, err)
		}
		if d < 0 || d > window {
			t.Fatalf("call %d: waited %v; want within [0, %v]", i, d, window)
		}
		deps = append(deps, clk.Now()) // Sleep advanced the clock to the departure
	}
	for i := range n {
		if !deps[i].Equal(t0) {
			t.Errorf("call %d departs at +%v; want +0s", i, deps[i].Sub(t0))
		}
	}
	checkWindow(t, deps, n, window)
	checkRate(t, deps, float64(n)/window.Seconds())

	sleeps := clk.Sleeps()
	if got, want := len(sleeps), 200; got != want {
		t.Fatalf("clock slept %d times; want %d", got, want)
	}
	var total time.Duration
	for _, s := range sleeps {
		total += s
	}
	if got, want := total, 28*window; got != want {
		t.Errorf("total sleep = %v; want %v (28 full windows after the first burst)", got, want)
	}
	// One call per group after the first waits (the clock then stands at
	// the group's slot, so the other 6 depart at once): 28 waits.
	waited, refused := w.Stats()
	if waited != 28 || refused != 0 {
		t.Errorf("Stats() = %d waited, %d refused; want 28, 0", waited, refused)
	}
}

func TestWindowMaxWait(t *testing.T) {
	const n, per, margin, maxWait = 7, time.Second, 25 * time.Millisecond, 2 * time.Second
	const window = per + margin
	clk := newFakeClock()
	w := NewWindow(n, per, margin, maxWait, clk)

	var waits []time.Duration
	var refusals []*Refused
	for i := range 100 {
		wait, err := w.Reserve()
		if err != nil {
			var r *Refused
			if !errors.As(err, &r) {
				t.Fatalf("call %d: error %T %v; want *Refused", i, err, err)
			}
			if wait != 0 {
				t.Errorf("call %d: refused with wait %v; want 0", i, wait)
			}
			refusals = append(refusals, r)
			continue
		}
		if len(refusals) > 0 {
			t.Fatalf("call %d accepted after a refusal at the same instant", i)
		}
		waits = append(waits, wait)
	}
	// Groups of 7 at 0 and 1.025s fit; 2.05s does not.
	if got, want := len(waits), 14; got != want {
		t.Fatalf("accepted %d calls; want %d", got, want)
	}
	for i, wait := range waits {
		want := time.Duration(i/n) * window
		if wait != want {
			t.Errorf("call %d waits %v; want %v", i, wait, want)
		}
	}
	if got, want := len(refusals), 86; got != want {
		t.Errorf("refused %d calls; want %d", got, want)
	}
	for i, r := range refusals {
		if r.RetryAfter <= maxWait {
			t.Errorf("refusal %d: RetryAfter = %v; want > %v", i, r.RetryAfter, maxWait)
		}
		if got, want := r.RetryAfter, 2*window; got != want {
			t.Errorf("refusal %d: RetryAfter = %v; want %v (refused calls reserve nothing)", i, got, want)
		}
	}
	if len(refusals) > 0 && refusals[0].Error() == "" {
		t.Errorf("Refused.Error() is empty")
	}
	if waited, refused := w.Stats(); waited != 7 || refused != 86 {
		t.Errorf("Stats() = (waited %d, refused %d); want (7, 86)", waited, refused)
	}

	// Refused calls reserved nothing: once the first group's window has
	// passed, the next call gets the slot right after the second group.
	clk.Advance(window)
	wait, err := w.Reserve()
	if err != nil {
		t.Fatalf("after advancing %v: Reserve() error = %v; want a slot", window, err)
	}
	if got, want := wait, window; got != want {
		t.Errorf("after advancing %v: wait = %v; want %v", window, got, want)
	}
	// 6 more fit in that group, then the queue is full again.
	for i := range 6 {
		if wait, err := w.Reserve(); err != nil || wait != window {
			t.Errorf("group call %d: Reserve() = %v, %v; want %v, nil", i, wait, err, window)
		}
	}
	if _, err := w.Reserve(); err == nil {
		t.Errorf("the 8th call of the third group: Reserve() error = nil; want *Refused")
	}
	waited, refused := w.Stats()
	if got, want := [2]int64{waited, refused}, [2]int64{14, 87}; got != want {
		t.Errorf("Stats() = (waited %d, refused %d); want (%d, %d)", got[0], got[1], want[0], want[1])
	}
}

func TestWindowWaitRefusedDoesNotSleep(t *testing.T) {
	clk := newFakeClock()
	w := NewWindow(1, time.Second, 0, 500*time.Millisecond, clk)
	if _, err := w.Wait(context.Background()); err != nil {
		t.Fatalf("first Wait() error = %v; want nil", err)
	}
	d, err := w.Wait(context.Background())
	var r *Refused
	if !errors.As(err, &r) {
		t.Fatalf("second Wait() = %v, %v; want *Refused", d, err)
	}
	if got, want := r.RetryAfter, time.Second; got != want {
		t.Errorf("RetryAfter = %v; want %v", got, want)
	}
	if got := clk.Sleeps(); len(got) != 1 {
		t.Errorf("clock slept %v; want only the first call's sleep", got)
	}
}

func TestPerSecond(t *testing.T) {
	tests := []struct {
		rate      float64
		n         int           // calls per window
		window    time.Duration // without margin
		name      string
		perMinute int // calls in the first minute (back to back, margin 0)
	}{
		{rate: 0.5, n: 1, window: 2 * time.Second, name: "half", perMinute: 30},
		{rate: 7, n: 7, window: time.Second, name: "seven", perMinute: 420},
		{rate: 1, n: 1, window: time.Second, name: "one", perMinute: 60},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			w := PerSecond(tt.rate, 0, time.Minute, clk)
			// A burst at one instant: n at once, then one window later.
			for i := range tt.n {
				if wait, err := w.Reserve(); err != nil || wait != 0 {
					t.Fatalf("call %d: Reserve() = %v, %v; want 0, nil", i, wait, err)
				}
			}
			if wait, err := w.Reserve(); err != nil || wait != tt.window {
				t.Fatalf("call %d: Reserve() = %v, %v; want %v, nil", tt.n, wait, err, tt.window)
			}

			// Back-to-back callers for one minute of fake time.
			clk = newFakeClock()
			w = PerSecond(tt.rate, 0, time.Minute, clk)
			var deps []time.Time
			for {
				if _, err := w.Wait(context.Background()); err != nil {
					t.Fatalf("Wait() error = %v", err)
				}
				if !clk.Now().Before(t0.Add(time.Minute)) {
					break
				}
				deps = append(deps, clk.Now())
			}
			if got, want := len(deps), tt.perMinute; got != want {
				t.Errorf("calls in the first minute = %d; want %d", got, want)
			}
			checkWindow(t, deps, tt.n, tt.window)
		})
	}
}

func TestPerSecondMargin(t *testing.T) {
	clk := newFakeClock()
	w := PerSecond(0.5, DefaultMargin, DefaultMaxWait, clk)
	if _, err := w.Reserve(); err != nil {
		t.Fatal(err)
	}
	if got, want := mustReserve(t, w), 2*time.Second+DefaultMargin; got != want {
		t.Errorf("second call waits %v; want %v", got, want)
	}
}

func mustReserve(t *testing.T, w *Window) time.Duration {
	t.Helper()
	d, err := w.Reserve()
	if err != nil {
		t.Fatalf("Reserve() error = %v", err)
	}
	return d
}

func TestWaitHonoursCancellation(t *testing.T) {
	clk := newFakeClock()
	w := NewWindow(1, time.Second, 0, 10*time.Second, clk)
	if _, err := w.Wait(context.Background()); err != nil {
		t.Fatalf("first Wait() error = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := w.Wait(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait(cancelled ctx) error = %v; want context.Canceled", err)
	}
	if got, want := clk.Now(), t0; !got.Equal(want) {
		t.Errorf("clock at +%v after a cancelled Wait; want +0s (no sleep)", got.Sub(t0))
	}

	dctx, dcancel := context.WithDeadline(context.Background(), t0) // already past
	defer dcancel()
	if _, err := w.Wait(dctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Wait(expired ctx) error = %v; want context.DeadlineExceeded", err)
	}
}

// frozenClock stands at one instant and never sleeps. It holds no lock, so
// that it adds no synchronisation between callers: the race detector sees
// the Window's own.
type frozenClock struct{ now time.Time }

func (c frozenClock) Now() time.Time { return c.now }
func (c frozenClock) Sleep(ctx context.Context, d time.Duration) error {
	panic("frozenClock.Sleep called")
}
func (c frozenClock) After(time.Duration) <-chan time.Time { panic("frozenClock.After called") }

func TestWindowConcurrentReserve(t *testing.T) {
	const n, per, margin = 7, time.Second, 25 * time.Millisecond
	const window = per + margin
	const callers = 50
	w := NewWindow(n, per, margin, DefaultMaxWait, frozenClock{t0})

	var (
		wg    sync.WaitGroup
		deps  = make([]time.Time, callers)
		errs  = make([]error, callers)
		start = make(chan struct{})
	)
	for i := range callers {
		wg.Go(func() {
			<-start
			var wait time.Duration
			wait, errs[i] = w.Reserve()
			deps[i] = t0.Add(wait)
		})
	}
	close(start)
	wg.Wait()

	for i, err := range errs {
		if err != nil {
			t.Fatalf("call %d refused: %v; want none (50 calls need %v)", i, err, 7*window)
		}
	}
	checkWindow(t, deps, n, window)
	// Exactly 7 per slot: groups at 0, 1.025s, ... 7.175s (the last holds 1).
	count := map[time.Duration]int{}
	for _, d := range deps {
		count[d.Sub(t0)]++
	}
	for k := range 8 {
		want := n
		if k == 7 {
			want = callers - 7*n
		}
		if got := count[time.Duration(k)*window]; got != want {
			t.Errorf("departures at +%v = %d; want %d", time.Duration(k)*window, got, want)
		}
	}
	waited, refused := w.Stats()
	if waited != callers-n || refused != 0 {
		t.Errorf("Stats() = (%d, %d); want (%d, 0)", waited, refused, callers-n)
	}
}

func TestPerSecondFractionKeepsTheRate(t *testing.T) {
	clk := &regressionClock{now: time.Unix(0, 0)}
	w := PerSecond(7.5, 0, time.Hour, clk)
	var last time.Duration
	for range 75 {
		d, err := w.Reserve()
		if err != nil {
			t.Fatal(err)
		}
		last = d
	}
	// 75 calls at 7.5/s: the last departs after 9 full windows of 7 (and 3 more calls), about 9.33 s.
	if last < 9300*time.Millisecond || last > 9400*time.Millisecond {
		t.Errorf("the 75th call departs at %s, want about 9.33 s (7.5/s)", last)
	}
}

// regressionClock is a frozen clock.
type regressionClock struct{ now time.Time }

func (c *regressionClock) Now() time.Time                             { return c.now }
func (c *regressionClock) Sleep(context.Context, time.Duration) error { return nil }
func (c *regressionClock) After(time.Duration) <-chan time.Time       { return nil }

func TestPacedWindowSpreadsCalls(t *testing.T) {
	clk := &regressionClock{now: time.Unix(0, 0)}
	w := NewWindow(7, time.Second, 50*time.Millisecond, time.Hour, clk).Paced()
	const step = 150 * time.Millisecond // (1 s + 50 ms) / 7
	var departures []time.Duration
	for range 50 {
		d, err := w.Reserve()
		if err != nil {
			t.Fatal(err)
		}
		departures = append(departures, d)
	}
	for i, d := range departures {
		if want := time.Duration(i) * step; d != want {
			t.Fatalf("call %d departs at %s, want %s (evenly spaced)", i, d, want)
		}
		if i >= 7 && d-departures[i-7] < 1050*time.Millisecond {
			t.Fatalf("calls %d and %d closer than the window", i-7, i)
		}
	}
}
