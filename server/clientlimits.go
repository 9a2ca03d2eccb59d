package server

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	tokenbroker "github.com/tokenbroker/tokenbroker"
	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/ratelimit"
)

// clientBudgets holds each client's own bounds per profile: a share of the
// profile's rate limit and a daily count of proxied calls. They are this
// replica's (a client's calls spread over replicas are bounded per
// replica); the vendor's limit itself holds across replicas as always.
type clientBudgets struct {
	mu sync.Mutex
	m  map[[2]string]*clientBudget // {client, profile}
}

type clientBudget struct {
	window *ratelimit.Window // nil: no rate share
	day    string            // YYYY-MM-DD (UTC) of used
	used   int
}

// admit takes one of the client's calls on profile, or says why not and
// for how long.
func (cb *clientBudgets) admit(c *config.Client, profile string, perSecond float64, now time.Time) (time.Duration, string) {
	if c.RateShare <= 0 && c.PerDay <= 0 {
		return 0, ""
	}
	cb.mu.Lock()
	defer cb.mu.Unlock()
	if cb.m == nil {
		cb.m = map[[2]string]*clientBudget{}
	}
	k := [2]string{c.Name, profile}
	b := cb.m[k]
	if b == nil {
		b = &clientBudget{}
		if c.RateShare > 0 && perSecond > 0 {
			b.window = ratelimit.PerSecond(math.Max(c.RateShare*perSecond, 0.01), ratelimit.DefaultMargin, 0, nil)
		}
		cb.m[k] = b
	}
	if day := now.UTC().Format(time.DateOnly); day != b.day {
		b.day, b.used = day, 0
	}
	if c.PerDay > 0 && b.used >= c.PerDay {
		midnight := now.UTC().Truncate(24 * time.Hour).Add(24 * time.Hour)
		return midnight.Sub(now), fmt.Sprintf("client %q has made its %d calls of the day on %q (clients.%s.per_day)", c.Name, c.PerDay, profile, c.Name)
	}
	if b.window != nil {
		if _, err := b.window.Reserve(); err != nil {
			var wait time.Duration
			if r, ok := err.(*ratelimit.Refused); ok {
				wait = r.RetryAfter
			}
			return wait, fmt.Sprintf("client %q is at its share of %q's rate limit (clients.%s.rate_share: %g of %g/s)", c.Name, profile, c.Name, c.RateShare, perSecond)
		}
	}
	b.used++
	return 0, ""
}

// refuseBudget answers tokenbroker's 429 for a client over its own bound.
func (s *Server) refuseBudget(w http.ResponseWriter, c *config.Client, wait time.Duration, why string) {
	s.metrics.counter("tokenbroker_client_refusals_total", "client", c.Name, "rule", "budget").Inc()
	secs := int(math.Ceil(wait.Seconds()))
	w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	w.Header().Set(tokenbroker.RefusedHeader, why)
	writeJSON(w, http.StatusTooManyRequests, map[string]any{"error": "rate_limited", "client": c.Name, "message": "tokenbroker: " + why, "retry_after_seconds": max(secs, 1)})
}
