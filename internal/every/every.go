// Package every lets one of each kind of event through per period,
// counting the others: so that a flood of alike failures or refusals
// makes one log line or audit record with a count, not one each.
package every

import (
	"sync"
	"time"
)

// Limiter lets one event of each key through per Period (DefaultPeriod
// when zero). It is safe for concurrent use.
type Limiter struct {
	Period time.Duration

	mu   sync.Mutex
	last map[string]*entry
}

type entry struct {
	at         time.Time
	suppressed int
}

// DefaultPeriod is a zero Limiter's period.
const DefaultPeriod = 10 * time.Second

// maxKeys bounds the keys remembered: keys are meant to be bounded by the
// config (profiles, clients), and this keeps a mistake from growing forever.
const maxKeys = 10000

// Allow says whether the event of kind key goes through now, and how many
// of its kind were held back since the last that did.
func (l *Limiter) Allow(key string, now time.Time) (int, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		l.last = map[string]*entry{}
	}
	e := l.last[key]
	if e == nil {
		if len(l.last) > maxKeys {
			clear(l.last)
		}
		l.last[key] = &entry{at: now}
		return 0, true
	}
	period := l.Period
	if period == 0 {
		period = DefaultPeriod
	}
	if now.Sub(e.at) < period {
		e.suppressed++
		return 0, false
	}
	n := e.suppressed
	e.at, e.suppressed = now, 0
	return n, true
}
