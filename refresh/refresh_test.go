package refresh

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokenbroker/tokenbroker/failure"
)

// The tests run in a synctest bubble only so that synctest.Wait can tell
// when the scheduler has settled (every goroutine blocked on a channel)
// before the fake clock moves on; the scheduler itself reads the fake clock
// below, never the time package.

var t0 = time.Date(2025, 3, 4, 15, 0, 0, 0, time.UTC)

type fakeTimer struct {
	at time.Time
	ch chan time.Time
}

// fakeClock is a Clock whose After registers a timer that fires when the
// test advances the time past its deadline.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []fakeTimer
}

func newFakeClock() *fakeClock { return &fakeClock{now: t0} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Sleep waits on After: the scheduler does not sleep, but a Clock can.
func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-c.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.timers = append(c.timers, fakeTimer{at: c.now.Add(d), ch: ch})
	return ch
}

// Advance moves the time forward by d. It fires the due timers one deadline
// at a time, in order, letting the scheduler settle (synctest.Wait) before
// each step, so that work done at one deadline registers its own timers
// before the time moves past them: every renewal happens exactly at the
// time it was scheduled for.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	c.mu.Unlock()
	for {
		synctest.Wait()
		c.mu.Lock()
		i := -1
		for j, tm := range c.timers {
			if !tm.at.After(end) && (i < 0 || tm.at.Before(c.timers[i].at)) {
				i = j
			}
		}
		if i < 0 {
			c.now = end
			c.mu.Unlock()
			synctest.Wait()
			return
		}
		if at := c.timers[i].at; at.After(c.now) {
			c.now = at
		}
		c.timers = slices.DeleteFunc(c.timers, func(tm fakeTimer) bool {
			if tm.at.After(c.now) {
				return false
			}
			tm.ch <- c.now // buffered: a timer nobody listens to any more is dropped
			return true
		})
		c.mu.Unlock()
	}
}

type call struct {
	name string
	at   time.Time
}

// response says what the n-th (from 1) Maintain call for name at time at
// returns.
type response func(name string, at time.Time, n int) (time.Time, error)

// fakeTarget records Maintain calls (and sends each on calls), answers
// from respond, and reports a settable generation per profile.
type fakeTarget struct {
	clk   *fakeClock
	calls chan call

	mu       sync.Mutex
	respond  response
	counts   map[string]int
	gens     map[string]int64
	genCalls map[string]int
	hold     map[string]chan struct{} // when set, Maintain blocks until it is closed
}

func newFakeTarget(clk *fakeClock, respond response) *fakeTarget {
	return &fakeTarget{
		clk: clk, calls: make(chan call, 10000), respond: respond,
		counts: map[string]int{}, gens: map[string]int64{}, genCalls: map[string]int{},
		hold: map[string]chan struct{}{},
	}
}

func (f *fakeTarget) Maintain(ctx context.Context, name string) (time.Time, error) {
	at := f.clk.Now()
	f.mu.Lock()
	f.counts[name]++
	n, respond, hold := f.counts[name], f.respond, f.hold[name]
	f.mu.Unlock()
	f.calls <- call{name: name, at: at}
	if hold != nil {
		<-hold
	}
	return respond(name, at, n)
}

func (f *fakeTarget) Generation(ctx context.Context, name string) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.genCalls[name]++
	return f.gens[name], nil
}

func (f *fakeTarget) setGen(name string, g int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gens[name] = g
}

func (f *fakeTarget) generationCalls(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.genCalls[name]
}

func (f *fakeTarget) setHold(name string, ch chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.hold[name] = ch
}

// take returns the Maintain calls made so far and not yet taken.
func (f *fakeTarget) take() []call {
	var out []call
	for {
		select {
		case c := <-f.calls:
			out = append(out, c)
		default:
			return out
		}
	}
}

// byName groups calls' times by profile.
func byName(calls []call) map[string][]time.Time {
	m := map[string][]time.Time{}
	for _, c := range calls {
		m[c.name] = append(m[c.name], c.at)
	}
	return m
}

// start runs s until the returned stop is called; stop cancels and waits
// for Run to return.
func start(s *Scheduler) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		s.Run(ctx)
		close(done)
	}()
	return func() {
		cancel()
		<-done
	}
}

func stateOf(t *testing.T, s *Scheduler, name string) State {
	t.Helper()
	for _, st := range s.States() {
		if st.Name == name {
			return st
		}
	}
	t.Fatalf("States() has no %q", name)
	return State{}
}

func every(d time.Duration) response {
	return func(_ string, at time.Time, _ int) (time.Time, error) { return at.Add(d), nil }
}

func TestSetMaintainsWithinStartSpreadThenAtNext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := newFakeClock()
		ft := newFakeTarget(clk, func(name string, at time.Time, _ int) (time.Time, error) {
			if name == "a" {
				return at.Add(time.Hour), nil
			}
			return at.Add(25 * time.Minute), nil
		})
		s := New(ft, clk, nil)
		s.Set([]string{"a", "b"})
		defer start(s)()

		clk.Advance(startSpread)
		first := byName(ft.take())
		for _, name := range []string{"a", "b"} {
			got := first[name]
			if len(got) != 1 {
				t.Fatalf("%s maintained %d times in the first %v; want 1", name, len(got), startSpread)
			}
			if got[0].Before(t0) || !got[0].Before(t0.Add(startSpread)) {
				t.Errorf("%s first maintained at +%v; want within [0, %v)", name, got[0].Sub(t0), startSpread)
			}
		}
		if st := stateOf(t, s, "a"); !st.Next.Equal(first["a"][0].Add(time.Hour)) {
			t.Errorf("States() a.Next = +%v; want +%v", st.Next.Sub(t0), first["a"][0].Add(time.Hour).Sub(t0))
		}

		clk.Advance(time.Hour)
		again := byName(ft.take())
		ta, tb := first["a"][0], first["b"][0]
		want := map[string][]time.Time{
			"a": {ta.Add(time.Hour)},
			"b": {tb.Add(25 * time.Minute), tb.Add(50 * time.Minute)},
		}
		for name, w := range want {
			if !slices.Equal(again[name], w) {
				t.Errorf("%s maintained at %v; want at %v", name, rel(again[name]), rel(w))
			}
		}
	})
}

func rel(ts []time.Time) []time.Duration {
	out := make([]time.Duration, len(ts))
	for i, t := range ts {
		out[i] = t.Sub(t0)
	}
	return out
}

func TestTransientFailureBacksOffWithJitter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := newFakeClock()
		failErr := failure.New(failure.Unreachable, "vendor down")
		ft := newFakeTarget(clk, func(_ string, at time.Time, n int) (time.Time, error) {
			if n <= 3 {
				return time.Time{}, failErr
			}
			return at.Add(time.Hour), nil
		})
		s := New(ft, clk, nil)
		// Many profiles, to see the jitter's range.
		var names []string
		for i := range 40 {
			names = append(names, fmt.Sprintf("p%02d", i))
		}
		s.Set(names)
		defer start(s)()

		clk.Advance(startSpread + 5*time.Second + 10*time.Second + 20*time.Second)
		calls := byName(ft.take())
		bounds := [][2]time.Duration{
			{2500 * time.Millisecond, 5 * time.Second}, // after the 1st failure
			{5 * time.Second, 10 * time.Second},        // after the 2nd
			{10 * time.Second, 20 * time.Second},       // after the 3rd
		}
		var gaps []time.Duration
		for _, name := range names {
			got := calls[name]
			if len(got) != 4 {
				t.Fatalf("%s maintained %d times; want 4 (3 failures, then success): %v", name, len(got), rel(got))
			}
			for i, b := range bounds {
				gap := got[i+1].Sub(got[i])
				if gap < b[0] || gap > b[1] {
					t.Errorf("%s attempt %d came %v after attempt %d; want within [%v, %v]", name, i+2, gap, i+1, b[0], b[1])
				}
				if i == 0 {
					gaps = append(gaps, gap)
				}
			}
			st := stateOf(t, s, name)
			if st.Failures != 0 || st.LastError != nil || st.Stopped {
				t.Errorf("%s after success: Failures %d, LastError %v, Stopped %v; want 0, nil, false", name, st.Failures, st.LastError, st.Stopped)
			}
			if want := got[3].Add(time.Hour); !st.Next.Equal(want) {
				t.Errorf("%s Next = +%v; want +%v", name, st.Next.Sub(t0), want.Sub(t0))
			}
		}
		// Jitter: 40 first retries do not all fall on the same delay.
		if slices.Min(gaps) == slices.Max(gaps) {
			t.Errorf("all first retries came %v after the failure; want jitter", gaps[0])
		}
	})
}

func TestFailureStateIsReported(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := newFakeClock()
		failErr := failure.New(failure.Unreachable, "vendor down")
		ft := newFakeTarget(clk, func(string, time.Time, int) (time.Time, error) { return time.Time{}, failErr })
		s := New(ft, clk, nil)
		s.Set([]string{"a"})
		s.Now("a") // the first attempt at t0, not somewhere in the start spread
		defer start(s)()

		synctest.Wait()
		c := ft.take()
		if len(c) != 1 || !c[0].at.Equal(t0) {
			t.Fatalf("calls %v; want one at t0", c)
		}
		st := stateOf(t, s, "a")
		if st.Failures != 1 || !errors.Is(st.LastError, failErr) || st.Stopped {
			t.Errorf("States() a = Failures %d, LastError %v, Stopped %v; want 1, %v, false", st.Failures, st.LastError, st.Stopped, failErr)
		}
		if d := st.Next.Sub(c[0].at); d < 2500*time.Millisecond || d > 5*time.Second {
			t.Errorf("a.Next is %v after the failure; want within [2.5s, 5s]", d)
		}
	})
}

func TestRetryAfterIsHonoured(t *testing.T) {
	tests := []struct {
		name string
		err  error
	}{
		{"rate limited", &failure.Error{Kind: failure.RateLimited, Msg: "429", RetryAfter: time.Minute}},
		{"wrapped", fmt.Errorf("renewing: %w", &failure.Error{Kind: failure.Unreachable, Msg: "503", RetryAfter: time.Minute})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				clk := newFakeClock()
				ft := newFakeTarget(clk, func(_ string, at time.Time, n int) (time.Time, error) {
					if n == 1 {
						return time.Time{}, tt.err
					}
					return at.Add(time.Hour), nil
				})
				s := New(ft, clk, nil)
				s.Set([]string{"a"})
				defer start(s)()

				clk.Advance(startSpread + 2*time.Minute)
				got := byName(ft.take())["a"]
				if len(got) != 2 {
					t.Fatalf("maintained %d times; want 2", len(got))
				}
				if gap := got[1].Sub(got[0]); gap < time.Minute || gap > time.Minute+5*time.Second {
					t.Errorf("retry came %v after the failure; want at least the Retry-After 1m0s (and at most 1m5s)", gap)
				}
			})
		})
	}
}

// Errors that are not known to be permanent are retried; Rejected and
// Config stop.
func TestErrorKinds(t *testing.T) {
	tests := []struct {
		name    string
		err     error
		stopped bool
	}{
		{"unreachable", failure.New(failure.Unreachable, "down"), false},
		{"rate limited", failure.New(failure.RateLimited, "429"), false},
		{"protocol", failure.New(failure.Protocol, "html"), false},
		{"unclassed", errors.New("boom"), false},
		{"rejected", failure.New(failure.Rejected, "invalid_grant"), true},
		{"config", failure.New(failure.Config, "no secret"), true},
		{"wrapped rejected", fmt.Errorf("renew: %w", failure.New(failure.Rejected, "invalid_grant")), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				clk := newFakeClock()
				ft := newFakeTarget(clk, func(string, time.Time, int) (time.Time, error) { return time.Time{}, tt.err })
				s := New(ft, clk, nil)
				s.Set([]string{"a"})
				s.Now("a") // the first attempt at t0, not somewhere in the start spread
				defer start(s)()

				synctest.Wait()
				if c := ft.take(); len(c) != 1 || !c[0].at.Equal(t0) {
					t.Fatalf("calls %v; want one at t0", c)
				}
				if got := stateOf(t, s, "a").Stopped; got != tt.stopped {
					t.Errorf("Stopped = %v; want %v", got, tt.stopped)
				}
				clk.Advance(10 * time.Minute)
				n := len(ft.take())
				if tt.stopped && n != 0 {
					t.Errorf("maintained %d more times in 10m after a permanent failure; want 0", n)
				}
				// 5s, 10s, 20s, 40s, 80s, 160s... at least 5 retries fit in 10 minutes.
				if !tt.stopped && n < 5 {
					t.Errorf("maintained %d more times in 10m after a transient failure; want at least 5", n)
				}
			})
		})
	}
}

func TestPermanentFailureStopsUntilGenerationChanges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := newFakeClock()
		rejected := failure.New(failure.Rejected, "invalid_grant")
		ft := newFakeTarget(clk, func(_ string, at time.Time, n int) (time.Time, error) {
			if n == 1 {
				return time.Time{}, rejected
			}
			return at.Add(time.Hour), nil
		})
		ft.setGen("a", 7)
		s := New(ft, clk, nil)
		s.Set([]string{"a"})
		defer start(s)()

		clk.Advance(startSpread)
		c := ft.take()
		if len(c) != 1 {
			t.Fatalf("maintained %d times in %v; want 1", len(c), startSpread)
		}
		st := stateOf(t, s, "a")
		if !st.Stopped || !errors.Is(st.LastError, rejected) || st.Failures != 1 {
			t.Errorf("States() a = Stopped %v, LastError %v, Failures %d; want true, %v, 1", st.Stopped, st.LastError, st.Failures, rejected)
		}

		clk.Advance(30 * time.Minute)
		if c := ft.take(); len(c) != 0 {
			t.Errorf("maintained %d times in 30m while the generation stayed the same; want 0", len(c))
		}
		// Once when it stopped, then once a minute.
		if got, want := ft.generationCalls("a"), 1+30; got != want {
			t.Errorf("Generation called %d times; want %d (at the stop, then every minute)", got, want)
		}
		st = stateOf(t, s, "a")
		if !st.Stopped || !errors.Is(st.LastError, rejected) {
			t.Errorf("after 30m: Stopped %v, LastError %v; want true, %v", st.Stopped, st.LastError, rejected)
		}

		// A person logs in again: the generation changes.
		ft.setGen("a", 8)
		fixedAt := clk.Now()
		clk.Advance(time.Minute)
		c = ft.take()
		if len(c) != 1 {
			t.Fatalf("maintained %d times within a minute of the generation change; want 1", len(c))
		}
		if c[0].at.Sub(fixedAt) > time.Minute || c[0].at.Before(fixedAt) {
			t.Errorf("maintained %v after the generation change; want within 1m", c[0].at.Sub(fixedAt))
		}
		st = stateOf(t, s, "a")
		if st.Stopped || st.LastError != nil || st.Failures != 0 {
			t.Errorf("after the fix: Stopped %v, LastError %v, Failures %d; want false, nil, 0", st.Stopped, st.LastError, st.Failures)
		}
		if want := c[0].at.Add(time.Hour); !st.Next.Equal(want) {
			t.Errorf("after the fix: Next = +%v; want +%v", st.Next.Sub(t0), want.Sub(t0))
		}
	})
}

func TestStaticKeyIsNeverMaintainedAgain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := newFakeClock()
		ft := newFakeTarget(clk, func(string, time.Time, int) (time.Time, error) { return time.Time{}, nil })
		s := New(ft, clk, nil)
		s.Set([]string{"key"})
		defer start(s)()

		clk.Advance(startSpread)
		if n := len(ft.take()); n != 1 {
			t.Fatalf("maintained %d times in %v; want 1", n, startSpread)
		}
		clk.Advance(48 * time.Hour)
		if n := len(ft.take()); n != 0 {
			t.Errorf("a static key was maintained %d more times in 48h; want 0", n)
		}
		if n := ft.generationCalls("key"); n != 0 {
			t.Errorf("Generation called %d times for a static key; want 0", n)
		}
		st := stateOf(t, s, "key")
		if st.Failures != 0 || st.LastError != nil || st.Stopped {
			t.Errorf("States() key = Failures %d, LastError %v, Stopped %v; want 0, nil, false", st.Failures, st.LastError, st.Stopped)
		}
	})
}

func TestSetRemovesProfile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := newFakeClock()
		ft := newFakeTarget(clk, every(time.Minute))
		s := New(ft, clk, nil)
		s.Set([]string{"a", "b"})
		defer start(s)()

		clk.Advance(startSpread)
		if got := byName(ft.take()); len(got["a"]) != 1 || len(got["b"]) != 1 {
			t.Fatalf("first %v: maintained a %d, b %d times; want 1, 1", startSpread, len(got["a"]), len(got["b"]))
		}
		s.Set([]string{"b"})
		clk.Advance(10 * time.Minute)
		got := byName(ft.take())
		if n := len(got["a"]); n != 0 {
			t.Errorf("removed profile a maintained %d times in 10m; want 0", n)
		}
		if n := len(got["b"]); n != 10 {
			t.Errorf("b maintained %d times in 10m; want 10", n)
		}
		states := s.States()
		if len(states) != 1 || states[0].Name != "b" {
			t.Errorf("States() = %v; want only b", states)
		}
		// Adding a profile back starts it again within the spread.
		s.Set([]string{"a", "b"})
		clk.Advance(startSpread)
		if n := len(byName(ft.take())["a"]); n != 1 {
			t.Errorf("re-added a maintained %d times in %v; want 1", n, startSpread)
		}
	})
}

// A profile removed while its renewal runs is not put back.
func TestSetRemovesBusyProfile(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := newFakeClock()
		ft := newFakeTarget(clk, every(time.Minute))
		hold := make(chan struct{})
		ft.setHold("a", hold)
		s := New(ft, clk, nil)
		s.Set([]string{"a", "b"})
		defer start(s)()

		clk.Advance(startSpread)
		if got := byName(ft.take()); len(got["a"]) != 1 || len(got["b"]) != 1 {
			t.Fatalf("first %v: maintained a %d, b %d times; want 1, 1", startSpread, len(got["a"]), len(got["b"]))
		}
		s.Set([]string{"b"}) // a is still in Maintain
		close(hold)
		clk.Advance(10 * time.Minute)
		if n := len(byName(ft.take())["a"]); n != 0 {
			t.Errorf("a, removed during its renewal, maintained %d times in 10m; want 0", n)
		}
		for _, st := range s.States() {
			if st.Name == "a" {
				t.Errorf("States() still has a: %+v", st)
			}
		}
	})
}

func TestNowTriggersAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := newFakeClock()
		ft := newFakeTarget(clk, every(time.Hour))
		s := New(ft, clk, nil)
		s.Set([]string{"a", "b"})
		defer start(s)()

		clk.Advance(startSpread)
		ft.take()
		clk.Advance(10 * time.Minute)
		if n := len(ft.take()); n != 0 {
			t.Fatalf("maintained %d times before the hour; want 0", n)
		}

		at := clk.Now()
		s.Now("a")
		s.Now("unknown") // ignored
		synctest.Wait()
		c := ft.take()
		if len(c) != 1 || c[0].name != "a" || !c[0].at.Equal(at) {
			t.Fatalf("after Now(a): calls %v; want one for a at +%v, with no time passing", c, at.Sub(t0))
		}
		// The next renewal is an hour after that one.
		clk.Advance(time.Hour)
		got := byName(ft.take())["a"]
		if want := []time.Time{at.Add(time.Hour)}; !slices.Equal(got, want) {
			t.Errorf("a maintained at %v; want %v", rel(got), rel(want))
		}
	})
}

// Now resumes a profile stopped by a permanent failure, without waiting
// for the generation to change.
func TestNowResumesStopped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := newFakeClock()
		ft := newFakeTarget(clk, func(_ string, at time.Time, n int) (time.Time, error) {
			if n == 1 {
				return time.Time{}, failure.New(failure.Rejected, "invalid_grant")
			}
			return at.Add(time.Hour), nil
		})
		s := New(ft, clk, nil)
		s.Set([]string{"a"})
		defer start(s)()

		clk.Advance(startSpread)
		ft.take()
		clk.Advance(90 * time.Second)
		if !stateOf(t, s, "a").Stopped {
			t.Fatalf("a not stopped after a rejection")
		}
		at := clk.Now()
		s.Now("a")
		synctest.Wait()
		c := ft.take()
		if len(c) != 1 || !c[0].at.Equal(at) {
			t.Fatalf("after Now(a): calls %v; want one at +%v", c, at.Sub(t0))
		}
		if st := stateOf(t, s, "a"); st.Stopped || st.LastError != nil {
			t.Errorf("after Now(a) succeeded: Stopped %v, LastError %v; want false, nil", st.Stopped, st.LastError)
		}
	})
}

func TestRunWaitsForRunningMaintain(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := newFakeClock()
		ft := newFakeTarget(clk, every(time.Hour))
		hold := make(chan struct{})
		ft.setHold("a", hold)
		s := New(ft, clk, nil)
		s.Set([]string{"a"})

		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			s.Run(ctx)
			close(done)
		}()
		clk.Advance(startSpread)
		if n := len(ft.take()); n != 1 {
			t.Fatalf("maintained %d times; want 1 (held)", n)
		}

		cancel()
		synctest.Wait() // Run has returned or is blocked for good
		select {
		case <-done:
			t.Fatalf("Run returned while a Maintain call was still running")
		default:
		}
		close(hold)
		<-done // a deadlock here fails the test
	})
}

func TestRunReturnsOnCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := newFakeClock()
		s := New(newFakeTarget(clk, every(time.Hour)), clk, nil)
		s.Set([]string{"a"})
		stop := start(s)
		synctest.Wait()
		stop() // a deadlock here fails the test
	})
}

func TestBackoff(t *testing.T) {
	plain := errors.New("boom")
	for failures, want := range map[int][2]time.Duration{
		1:  {2500 * time.Millisecond, 5 * time.Second},
		2:  {5 * time.Second, 10 * time.Second},
		3:  {10 * time.Second, 20 * time.Second},
		6:  {80 * time.Second, 160 * time.Second},
		7:  {150 * time.Second, 5 * time.Minute}, // capped at 5m
		50: {150 * time.Second, 5 * time.Minute},
	} {
		lo, hi := time.Duration(1<<62), time.Duration(0)
		for range 2000 {
			d := backoff(failures, plain)
			lo, hi = min(lo, d), max(hi, d)
		}
		if lo < want[0] || hi > want[1] {
			t.Errorf("backoff(%d) ranged over [%v, %v]; want within [%v, %v]", failures, lo, hi, want[0], want[1])
		}
		if lo == hi {
			t.Errorf("backoff(%d) always %v; want jitter", failures, lo)
		}
	}
	ra := &failure.Error{Kind: failure.RateLimited, RetryAfter: time.Hour}
	if got := backoff(1, ra); got != time.Hour {
		t.Errorf("backoff(1, Retry-After 1h) = %v; want 1h0m0s", got)
	}
	short := &failure.Error{Kind: failure.RateLimited, RetryAfter: time.Second}
	if got := backoff(1, short); got < 2500*time.Millisecond || got > 5*time.Second {
		t.Errorf("backoff(1, Retry-After 1s) = %v; want the backoff, within [2.5s, 5s]", got)
	}
}
