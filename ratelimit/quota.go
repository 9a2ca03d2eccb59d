package ratelimit

import (
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Quota tracks a daily call quota from the vendor's response headers
// (X-RateLimit-Limit-day, X-RateLimit-Remaining-day). When it is spent, calls
// are refused until it resets at midnight GMT, instead of being sent.
type Quota struct {
	mu        sync.Mutex
	limit     int
	remaining int
	known     bool
	resetAt   time.Time
}

// Observe records the quota headers of a response, if any.
func (q *Quota) Observe(h http.Header, now time.Time) {
	rem, err := strconv.Atoi(h.Get("X-RateLimit-Remaining-day"))
	if err != nil {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.remaining, q.known = rem, true
	if l, err := strconv.Atoi(h.Get("X-RateLimit-Limit-day")); err == nil {
		q.limit = l
	}
	q.resetAt = nextMidnightUTC(now)
}

// Check refuses a call when the quota is known to be spent.
func (q *Quota) Check(now time.Time) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.known {
		return nil
	}
	if !now.Before(q.resetAt) {
		q.known = false // a new day: the vendor will tell again
		return nil
	}
	if q.remaining <= 0 {
		return &Refused{RetryAfter: q.resetAt.Sub(now), Reason: "the vendor's daily quota is spent until midnight GMT"}
	}
	return nil
}

// Spend marks the quota spent until resetAt (another replica saw it so).
func (q *Quota) Spend(resetAt time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.remaining, q.known, q.resetAt = 0, true, resetAt
}

// ResetAt is when the quota renews.
func (q *Quota) ResetAt() time.Time {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.resetAt
}

// Remaining reports the last known remaining calls and the limit.
func (q *Quota) Remaining() (remaining, limit int, known bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.remaining, q.limit, q.known
}

func nextMidnightUTC(now time.Time) time.Time {
	y, m, d := now.UTC().Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, time.UTC)
}
