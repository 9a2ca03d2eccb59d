package server

import (
	"context"
	"io"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	tokenbroker "github.com/tokenbroker/tokenbroker"
	"github.com/tokenbroker/tokenbroker/failure"
	"github.com/tokenbroker/tokenbroker/internal/promtext"
	"github.com/tokenbroker/tokenbroker/webhook"
)

// metrics are serve's Prometheus metrics, on a set of their own. They are
// kept by promtext, which does no work in init, so the CLI that links them
// does not pay for them (docs/design/2026-12-01-lean-cli.md).
type metrics struct {
	set        *promtext.Set
	started    time.Time // for process_start_time_seconds
	now        func() time.Time
	status     func(context.Context) ([]statusRow, error)
	proxiedBy  sync.Map // servedKey -> *servedCounter, to skip building the name per call
	lastServed sync.Map // profile -> *atomic.Pointer[servedCounter]
	waitBounds []float64
	shares     func() []tokenbroker.AccountShare // this replica's shares of the limits
}

// statusRow is what the scrape-time gauges need of a profile.
type statusRow struct {
	profile, state        string
	expires, refreshUntil *time.Time
	remaining, limit      int
	quotaKnown            bool
}

var waitBuckets = []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10}

func newMetrics(now func() time.Time, status func(context.Context) ([]statusRow, error)) *metrics {
	m := &metrics{set: promtext.NewSet(), started: time.Now(), now: now, status: status, waitBounds: waitBuckets}
	m.set.AddWriter(m.writeState)
	return m
}

// counter is the family's series for the label pairs (name, value, ...),
// given in name order, as Prometheus' client wrote them.
func (m *metrics) counter(family string, labels ...string) *promtext.Counter {
	return m.set.Counter(promtext.Name(family, labels...))
}

// handler answers a scrape: tokenbroker's series, then Go's and the
// process's.
func (m *metrics) handler(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	m.set.Write(w)
	promtext.WriteRuntime(w, m.started)
}

// connRefused counts a caller connection closed at accept.
func (m *metrics) connRefused() { m.counter("tokenbroker_connections_refused_total").Inc() }

// Requested implements tokenbroker.Observer.
func (m *metrics) Requested(profile, action string, err error, _ time.Duration) {
	m.counter("tokenbroker_upstream_token_requests_total", "action", action, "profile", profile).Inc()
	if err != nil {
		m.counter("tokenbroker_refreshes_total", "outcome", "failed", "profile", profile).Inc()
		m.counter("tokenbroker_refresh_failures_total", "class", failure.KindOf(err).String(), "profile", profile).Inc()
		return
	}
	m.counter("tokenbroker_refreshes_total", "outcome", "ok", "profile", profile).Inc()
}

// tenantServed counts a proxied call for an MSP's tenant (its id).
func (m *metrics) tenantServed(profile, id string) {
	m.counter("tokenbroker_tenant_requests_total", "profile", profile, "tenant", id).Inc()
}

// Waited implements tokenbroker.Observer.
func (m *metrics) Waited(profile string, d time.Duration) {
	m.counter("tokenbroker_ratelimit_waits_total", "profile", profile).Inc()
	m.set.Histogram(promtext.Name("tokenbroker_ratelimit_wait_seconds", "profile", profile), m.waitBounds).Observe(d.Seconds())
}

// Refused implements tokenbroker.Observer.
func (m *metrics) Refused(profile string) {
	m.counter("tokenbroker_ratelimit_refusals_total", "profile", profile).Inc()
}

// hookMetrics counts webhook deliveries (webhook.Observer).
type hookMetrics struct{ m *metrics }

func (h hookMetrics) delivery(profile, outcome string) *promtext.Counter {
	return h.m.counter("tokenbroker_webhook_deliveries_total", "outcome", outcome, "profile", profile)
}
func (h hookMetrics) Accepted(profile string) { h.delivery(profile, "accepted").Inc() }
func (h hookMetrics) Refused(profile string, reason webhook.Reason) {
	h.m.counter("tokenbroker_webhook_refused_total", "profile", profile, "reason", string(reason)).Inc()
}
func (h hookMetrics) Forwarded(profile string, n int) { h.delivery(profile, "forwarded").Add(n) }
func (h hookMetrics) Failed(profile string)           { h.delivery(profile, "failed").Inc() }

type servedKey struct {
	profile, client string
	status          int
}

// servedCounter is one profile's counter for one client and status.
type servedCounter struct {
	client string
	status int
	c      *promtext.Counter
}

// served counts a proxied call of a client ("admin" for the broker key).
// Each profile's last counter is kept at hand: nearly every call comes
// from the same caller and answers as the one before.
func (m *metrics) served(profile, client string, status int) {
	v, ok := m.lastServed.Load(profile)
	if !ok {
		v, _ = m.lastServed.LoadOrStore(profile, new(atomic.Pointer[servedCounter]))
	}
	last := v.(*atomic.Pointer[servedCounter])
	if sc := last.Load(); sc != nil && sc.status == status && sc.client == client {
		sc.c.Inc()
		return
	}
	k := servedKey{profile, client, status}
	c, ok := m.proxiedBy.Load(k)
	if !ok {
		c, _ = m.proxiedBy.LoadOrStore(k, &servedCounter{client, status, m.counter("tokenbroker_proxy_requests_total", "client", client, "code", strconv.Itoa(status), "profile", profile)})
	}
	last.Store(c.(*servedCounter))
	c.(*servedCounter).c.Inc()
}

// writeState writes the gauges read at scrape time: token states, expiries
// and quotas.
func (m *metrics) writeState(w io.Writer) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rows, err := m.status(ctx)
	m.writeShares(w)
	promtext.WriteType(w, "tokenbroker_store_up", "gauge")
	if err != nil {
		io.WriteString(w, "tokenbroker_store_up 0\n") // the state could not be read in time
		return
	}
	io.WriteString(w, "tokenbroker_store_up 1\n")
	now := m.now()
	counts := map[string]int{}
	var expiry, refresh, remaining, limit []string
	for _, r := range rows {
		counts[r.state]++
		if r.expires != nil {
			expiry = append(expiry, gauge("tokenbroker_token_expiry_seconds", r.expires.Sub(now).Seconds(), "profile", r.profile))
		}
		if r.refreshUntil != nil {
			refresh = append(refresh, gauge("tokenbroker_refresh_token_expiry_seconds", r.refreshUntil.Sub(now).Seconds(), "profile", r.profile))
		}
		if r.quotaKnown {
			remaining = append(remaining, gauge("tokenbroker_quota_remaining", float64(r.remaining), "profile", r.profile))
			limit = append(limit, gauge("tokenbroker_quota_limit", float64(r.limit), "profile", r.profile))
		}
	}
	var tokens []string
	for state, n := range counts {
		tokens = append(tokens, gauge("tokenbroker_tokens", float64(n), "state", state))
	}
	for _, f := range []struct {
		name  string
		lines []string
	}{
		{"tokenbroker_quota_limit", limit},
		{"tokenbroker_quota_remaining", remaining},
		{"tokenbroker_refresh_token_expiry_seconds", refresh},
		{"tokenbroker_token_expiry_seconds", expiry},
		{"tokenbroker_tokens", tokens},
	} {
		if len(f.lines) == 0 {
			continue
		}
		sort.Strings(f.lines)
		promtext.WriteType(w, f.name, "gauge")
		for _, l := range f.lines {
			io.WriteString(w, l)
		}
	}
}

// writeShares writes this replica's shares of the vendors' limits: the
// part it holds (0 to 1), and whether it lost it (its calls are refused).
func (m *metrics) writeShares(w io.Writer) {
	if m.shares == nil {
		return
	}
	var share, fallback []string
	for _, s := range m.shares() {
		part := 0.0
		if s.N > 0 {
			part = float64(s.Slots) / float64(s.N)
		}
		lost := 0.0
		if s.Lost {
			lost = 1
		}
		share = append(share, gauge("tokenbroker_ratelimit_share", part, "profile", s.Profile))
		fallback = append(fallback, gauge("tokenbroker_ratelimit_fallback", lost, "profile", s.Profile))
	}
	for name, lines := range map[string][]string{"tokenbroker_ratelimit_share": share, "tokenbroker_ratelimit_fallback": fallback} {
		if len(lines) == 0 {
			continue
		}
		sort.Strings(lines)
		promtext.WriteType(w, name, "gauge")
		for _, l := range lines {
			io.WriteString(w, l)
		}
	}
}

func gauge(family string, v float64, labels ...string) string {
	return promtext.Gauge(promtext.Name(family, labels...), v)
}
