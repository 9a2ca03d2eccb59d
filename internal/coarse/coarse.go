// Package coarse is a clock for bookkeeping that may lag a little: idle
// deadlines, the ages of pooled connections, per-minute counters. While a
// server runs, reading it is an atomic load instead of a clock read: a
// proxied call otherwise reads the clock half a dozen times, which is a
// measurable part of its CPU time. nginx caches its time the same way.
package coarse

import (
	"sync"
	"sync/atomic"
	"time"
)

// Resolution is how far behind Now may be while the clock ticks.
const Resolution = 100 * time.Millisecond

var (
	mu    sync.Mutex
	users int
	quit  chan struct{}
	now   atomic.Int64 // unix nanoseconds while ticking, else 0
)

// Now returns the time: at most Resolution behind while a Start is in
// effect, exact otherwise. It carries no monotonic reading.
func Now() time.Time {
	if n := now.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Now()
}

// Start makes Now tick until the returned function is called. Starts nest:
// the clock ticks while any is in effect.
func Start() (stop func()) {
	mu.Lock()
	defer mu.Unlock()
	if users++; users == 1 {
		quit = make(chan struct{})
		now.Store(time.Now().UnixNano())
		go tick(quit)
	}
	var once sync.Once
	return func() { once.Do(release) }
}

func release() {
	mu.Lock()
	defer mu.Unlock()
	if users--; users == 0 {
		close(quit)
		now.Store(0)
	}
}

func tick(quit chan struct{}) {
	t := time.NewTicker(Resolution)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			mu.Lock()
			if users > 0 {
				now.Store(time.Now().UnixNano())
			}
			mu.Unlock()
		case <-quit:
			return
		}
	}
}
