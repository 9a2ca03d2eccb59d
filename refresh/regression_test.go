package refresh

import (
	"context"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokenbroker/tokenbroker/failure"
)

// Regression: attend once checked "removed meanwhile" by name, not by item, so a profile
// removed and re-added while its renewal runs ends up twice in the heap.
func TestReaddedDuringRenewalIsMaintainedOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := newFakeClock()
		ft := newFakeTarget(clk, every(time.Hour))
		hold := make(chan struct{})
		ft.setHold("a", hold)
		s := New(ft, clk, nil)
		s.Set([]string{"a"})
		s.Now("a")
		defer start(s)()
		synctest.Wait()
		if n := len(ft.take()); n != 1 {
			t.Fatalf("maintained %d times; want 1 (held)", n)
		}
		s.Set(nil)           // a config reload drops a...
		s.Set([]string{"a"}) // ...and the next one restores it, while its renewal still runs
		ft.setHold("a", nil)
		close(hold)
		clk.Advance(startSpread)
		ft.take()
		clk.Advance(3 * time.Hour)
		if got, want := len(ft.take()), 3; got != want {
			t.Errorf("a maintained %d times in 3h with an hourly renewal; want %d", got, want)
		}
	})
}

type raceTarget struct {
	s     *Scheduler
	clk   *fakeClock
	mu    sync.Mutex
	gen   int64
	calls int
	read  chan struct{}
}

func (r *raceTarget) Maintain(ctx context.Context, name string) (time.Time, error) {
	r.mu.Lock()
	r.calls++
	n, read := r.calls, r.read
	r.mu.Unlock()
	if n == 1 {
		return time.Time{}, failure.New(failure.Rejected, "invalid_grant")
	}
	<-read // States() ran concurrently with attend's write of it.Stopped
	return r.clk.Now().Add(time.Hour), nil
}

func (r *raceTarget) Generation(ctx context.Context, name string) (int64, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gen == 2 && r.read == nil {
		r.read = make(chan struct{})
		read := r.read
		go func() { r.s.States(); close(read) }()
	}
	return r.gen, nil
}

// Regression: attend once cleared it.Stopped without s.mu while States() read it under
// s.mu: a data race (run with -race).
func TestStatesDuringResumeRace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		clk := newFakeClock()
		rt := &raceTarget{clk: clk, gen: 1}
		s := New(rt, clk, nil)
		rt.s = s
		s.Set([]string{"a"})
		s.Now("a")
		defer start(s)()
		synctest.Wait()
		if !stateOf(t, s, "a").Stopped {
			t.Fatal("not stopped")
		}
		rt.mu.Lock()
		rt.gen = 2
		rt.mu.Unlock()
		clk.Advance(time.Minute)
		if stateOf(t, s, "a").Stopped {
			t.Fatal("still stopped after the generation changed")
		}
	})
}
