// Package refresh renews every profile's token ahead of time in the
// background: a timer heap holds when each profile next needs attention;
// transient failures back off with jitter, permanent ones stop and are
// surfaced until the stored state changes (someone ran `login` or `import`).
package refresh

import (
	"container/heap"
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	tbclock "github.com/tokenbroker/tokenbroker/clock"
	"github.com/tokenbroker/tokenbroker/failure"
)

// Target is what the scheduler drives: the broker.
type Target interface {
	// Maintain renews the profile's token if it is due and says when to
	// look again (zero: never, e.g. a static key).
	Maintain(ctx context.Context, name string) (next time.Time, err error)
	// Generation is the stored generation, to notice a person's fix.
	Generation(ctx context.Context, name string) (int64, error)
}

// Clock is tokenbroker's one time source; tests step a fake one.
type Clock = tbclock.Clock

// Tuning of the scheduler.
const (
	backoffMin   = 5 * time.Second
	backoffMax   = 5 * time.Minute
	recheckEvery = time.Minute // after a permanent failure, how often the store is looked at
	startSpread  = 5 * time.Second
	// spreadPerProfile widens the start spread for large configurations
	// (10,000 tenants start over 100 s, not in a burst), up to spreadMax.
	spreadPerProfile = 10 * time.Millisecond
	spreadMax        = 5 * time.Minute
	workers          = 8
)

// State is what the scheduler knows of one profile.
type State struct {
	Name      string
	Next      time.Time
	Failures  int
	LastError error
	Stopped   bool // a permanent failure: waiting for a person
}

// Scheduler runs renewals.
type Scheduler struct {
	target Target
	clock  Clock
	log    *slog.Logger

	mu      sync.Mutex
	items   map[string]*item
	queue   queue
	wake    chan struct{}
	running sync.WaitGroup
}

type item struct {
	State
	index   int
	stopGen int64 // generation when stopped
	busy    bool
}

// New returns a scheduler for target. nil clock and log mean the real
// clock and a discarding logger.
func New(target Target, clock Clock, log *slog.Logger) *Scheduler {
	if clock == nil {
		clock = tbclock.Real{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Scheduler{target: target, clock: clock, log: log, items: map[string]*item{}, wake: make(chan struct{}, 1)}
}

// Set replaces the profiles under care; new ones start within a few
// seconds, spread so that a large configuration does not start at once.
func (s *Scheduler) Set(names []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	keep := map[string]bool{}
	now := s.clock.Now()
	spread := min(max(startSpread, time.Duration(len(names))*spreadPerProfile), spreadMax)
	for _, n := range names {
		keep[n] = true
		if _, ok := s.items[n]; !ok {
			it := &item{State: State{Name: n, Next: now.Add(rand.N(spread))}}
			s.items[n] = it
			heap.Push(&s.queue, it)
		}
	}
	for n, it := range s.items {
		if !keep[n] {
			if it.index >= 0 {
				heap.Remove(&s.queue, it.index)
			}
			delete(s.items, n)
		}
	}
	s.poke()
}

// Now asks for a profile to be looked at at once (after a manual refresh).
func (s *Scheduler) Now(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if it, ok := s.items[name]; ok && !it.busy {
		it.Next = s.clock.Now()
		it.Stopped = false
		heap.Fix(&s.queue, it.index)
		s.poke()
	}
}

// States reports every profile's scheduling state.
func (s *Scheduler) States() []State {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]State, 0, len(s.items))
	for _, it := range s.items {
		out = append(out, it.State)
	}
	return out
}

func (s *Scheduler) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Run schedules until ctx ends, then waits for running renewals.
func (s *Scheduler) Run(ctx context.Context) {
	sem := make(chan struct{}, workers)
	defer s.running.Wait()
	for {
		s.mu.Lock()
		var wait <-chan time.Time
		var due []*item
		now := s.clock.Now()
		for s.queue.Len() > 0 {
			it := s.queue[0]
			if it.Next.After(now) {
				wait = s.clock.After(it.Next.Sub(now))
				break
			}
			heap.Pop(&s.queue)
			it.busy = true
			due = append(due, it)
		}
		s.mu.Unlock()
		for _, it := range due {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			s.running.Add(1)
			go func() {
				defer func() { <-sem; s.running.Done() }()
				s.attend(ctx, it)
			}()
		}
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-wait:
		}
	}
}

// attend maintains one profile and puts it back in the heap.
func (s *Scheduler) attend(ctx context.Context, it *item) {
	s.mu.Lock()
	stopped, stopGen, failing := it.Stopped, it.stopGen, it.Failures > 0
	s.mu.Unlock()
	// A profile in trouble has its generation read first, so that a fix
	// saved while Maintain runs counts as a change, not as the state that
	// failed. (A healthy profile skips the read: one query less per renewal.)
	var gen int64
	var gerr error
	if stopped || failing {
		gen, gerr = s.target.Generation(ctx, it.Name)
	}
	if stopped && (gerr != nil || gen == stopGen) {
		s.requeue(it, s.clock.Now().Add(recheckEvery))
		return
	}
	next, err := s.target.Maintain(ctx, it.Name)
	if k := failure.KindOf(err); !failing && err != nil && (k == failure.Rejected || k == failure.Config) {
		gen, _ = s.target.Generation(ctx, it.Name)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.items[it.Name] != it {
		return // removed (or removed and added again) meanwhile
	}
	now := s.clock.Now()
	it.Stopped = false
	switch kind := failure.KindOf(err); {
	case err == nil:
		it.Failures, it.LastError = 0, nil
		if next.IsZero() {
			it.busy = false
			return // nothing to maintain (a static key)
		}
	case kind == failure.Rejected || kind == failure.Config: // retrying cannot help
		it.Failures++
		it.LastError = err
		it.Stopped, it.stopGen = true, gen
		next = now.Add(recheckEvery)
		s.log.Error("renewal stopped: a person must act", "profile", it.Name, "error", err)
	default: // transient, or unknown: back off and try again
		it.Failures++
		it.LastError = err
		next = now.Add(backoff(it.Failures, err))
		s.log.Warn("renewal failed, will retry", "profile", it.Name, "attempt", it.Failures, "retry_at", next, "error", err)
	}
	it.Next, it.busy = next, false
	heap.Push(&s.queue, it)
	s.poke()
}

func (s *Scheduler) requeue(it *item, next time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.items[it.Name] != it {
		return
	}
	it.Next, it.busy = next, false
	heap.Push(&s.queue, it)
	s.poke()
}

// backoff is exponential with full jitter, at least the vendor's Retry-After.
func backoff(failures int, err error) time.Duration {
	d := backoffMin << min(failures-1, 10)
	if d > backoffMax {
		d = backoffMax
	}
	d = d/2 + rand.N(d/2+1)
	var fe *failure.Error
	if errors.As(err, &fe) && fe.RetryAfter > d {
		d = fe.RetryAfter
	}
	return d
}

// queue is a min-heap of items by Next.
type queue []*item

func (q queue) Len() int           { return len(q) }
func (q queue) Less(i, j int) bool { return q[i].Next.Before(q[j].Next) }
func (q queue) Swap(i, j int) {
	q[i], q[j] = q[j], q[i]
	q[i].index, q[j].index = i, j
}
func (q *queue) Push(x any) {
	it := x.(*item)
	it.index = len(*q)
	*q = append(*q, it)
}
func (q *queue) Pop() any {
	old := *q
	it := old[len(old)-1]
	old[len(old)-1] = nil
	it.index = -1
	*q = old[:len(old)-1]
	return it
}
