package server

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/tokenbroker/tokenbroker/failure"
	"github.com/tokenbroker/tokenbroker/webhook"
)

// metrics are serve's Prometheus metrics, on a registry of their own.
type metrics struct {
	reg           *prometheus.Registry
	tokenRequests *prometheus.CounterVec
	refreshes     *prometheus.CounterVec
	failures      *prometheus.CounterVec
	proxied       *prometheus.CounterVec
	proxiedBy     sync.Map // servedKey -> *servedCounter, to skip the label lookup per call
	lastServed    sync.Map // profile -> *atomic.Pointer[servedCounter]
	waits         *prometheus.CounterVec
	waitSeconds   *prometheus.HistogramVec
	refusals      *prometheus.CounterVec
	hookDelivery  *prometheus.CounterVec
	hookRefused   *prometheus.CounterVec
	connRefused   prometheus.Counter
}

func newMetrics(s *Server) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		tokenRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokenbroker_upstream_token_requests_total", Help: "Token requests sent to vendors.",
		}, []string{"profile", "action"}),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokenbroker_refreshes_total", Help: "Token renewals (obtain or refresh) by outcome.",
		}, []string{"profile", "outcome"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokenbroker_refresh_failures_total", Help: "Failed token renewals by error class.",
		}, []string{"profile", "class"}),
		proxied: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokenbroker_proxy_requests_total", Help: "Proxied requests by status code.",
		}, []string{"profile", "code"}),
		waits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokenbroker_ratelimit_waits_total", Help: "Calls that queued for a rate-limit slot.",
		}, []string{"profile"}),
		waitSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tokenbroker_ratelimit_wait_seconds", Help: "Time calls queued for a rate-limit slot.",
			Buckets: []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"profile"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tokenbroker_ratelimit_refusals_total", Help: "Calls answered 429 by tokenbroker (queue full or daily quota spent).",
		}, []string{"profile"}),
	}
	m.hookDelivery = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tokenbroker_webhook_deliveries_total", Help: "Webhook deliveries: accepted (and queued), forwarded to the sink, failed forwarding attempts.",
	}, []string{"profile", "outcome"})
	m.hookRefused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tokenbroker_webhook_refused_total", Help: "Webhook deliveries refused, by reason.",
	}, []string{"profile", "reason"})
	m.connRefused = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "tokenbroker_connections_refused_total", Help: "Caller connections closed at accept because serve.max_connections were open.",
	})
	m.reg.MustRegister(m.hookDelivery, m.hookRefused, m.connRefused)
	m.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.tokenRequests, m.refreshes, m.failures, m.proxied, m.waits, m.waitSeconds, m.refusals,
		&stateCollector{s: s})
	return m
}

// Requested implements tokenbroker.Observer.
func (m *metrics) Requested(profile, action string, err error, _ time.Duration) {
	m.tokenRequests.WithLabelValues(profile, action).Inc()
	if err != nil {
		m.refreshes.WithLabelValues(profile, "failed").Inc()
		m.failures.WithLabelValues(profile, failure.KindOf(err).String()).Inc()
		return
	}
	m.refreshes.WithLabelValues(profile, "ok").Inc()
}

// Waited implements tokenbroker.Observer.
func (m *metrics) Waited(profile string, d time.Duration) {
	m.waits.WithLabelValues(profile).Inc()
	m.waitSeconds.WithLabelValues(profile).Observe(d.Seconds())
}

// Refused implements tokenbroker.Observer.
func (m *metrics) Refused(profile string) { m.refusals.WithLabelValues(profile).Inc() }

// hookMetrics counts webhook deliveries (webhook.Observer).
type hookMetrics struct{ m *metrics }

func (h hookMetrics) Accepted(profile string) {
	h.m.hookDelivery.WithLabelValues(profile, "accepted").Inc()
}
func (h hookMetrics) Refused(profile string, reason webhook.Reason) {
	h.m.hookRefused.WithLabelValues(profile, string(reason)).Inc()
}
func (h hookMetrics) Forwarded(profile string, n int) {
	h.m.hookDelivery.WithLabelValues(profile, "forwarded").Add(float64(n))
}
func (h hookMetrics) Failed(profile string) {
	h.m.hookDelivery.WithLabelValues(profile, "failed").Inc()
}

type servedKey struct {
	profile string
	status  int
}

// servedCounter is one profile's counter for one status.
type servedCounter struct {
	status int
	c      prometheus.Counter
}

// served counts a proxied call. The profile's last status is kept at
// hand: nearly every call answers as the one before.
func (m *metrics) served(profile string, status int) {
	v, ok := m.lastServed.Load(profile)
	if !ok {
		v, _ = m.lastServed.LoadOrStore(profile, new(atomic.Pointer[servedCounter]))
	}
	last := v.(*atomic.Pointer[servedCounter])
	if sc := last.Load(); sc != nil && sc.status == status {
		sc.c.Inc()
		return
	}
	k := servedKey{profile, status}
	c, ok := m.proxiedBy.Load(k)
	if !ok {
		c, _ = m.proxiedBy.LoadOrStore(k, &servedCounter{status, m.proxied.WithLabelValues(profile, strconv.Itoa(status))})
	}
	last.Store(c.(*servedCounter))
	c.(*servedCounter).c.Inc()
}

// stateCollector reads token states and quotas at scrape time.
type stateCollector struct{ s *Server }

var (
	tokensDesc  = prometheus.NewDesc("tokenbroker_tokens", "Profiles by token state.", []string{"state"}, nil)
	expiryDesc  = prometheus.NewDesc("tokenbroker_token_expiry_seconds", "Seconds until the access token expires (negative: expired).", []string{"profile"}, nil)
	refreshDesc = prometheus.NewDesc("tokenbroker_refresh_token_expiry_seconds", "Seconds until the refresh token expires.", []string{"profile"}, nil)
	quotaDesc   = prometheus.NewDesc("tokenbroker_quota_remaining", "Calls left in the vendor's daily quota, as last reported.", []string{"profile"}, nil)
	quotaLimit  = prometheus.NewDesc("tokenbroker_quota_limit", "The vendor's daily quota, as last reported.", []string{"profile"}, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- tokensDesc
	ch <- expiryDesc
	ch <- refreshDesc
	ch <- quotaDesc
	ch <- quotaLimit
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	b := c.s.Broker()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rows, err := b.Status(ctx)
	if err != nil {
		return
	}
	counts := map[string]int{}
	now := time.Now()
	for _, r := range rows {
		counts[r.State]++
		if r.ExpiresAt != nil {
			ch <- prometheus.MustNewConstMetric(expiryDesc, prometheus.GaugeValue, r.ExpiresAt.Sub(now).Seconds(), r.Profile)
		}
		if r.RefreshExpiresAt != nil {
			ch <- prometheus.MustNewConstMetric(refreshDesc, prometheus.GaugeValue, r.RefreshExpiresAt.Sub(now).Seconds(), r.Profile)
		}
		if rem, limit, ok := b.Quota(r.Profile); ok {
			ch <- prometheus.MustNewConstMetric(quotaDesc, prometheus.GaugeValue, float64(rem), r.Profile)
			ch <- prometheus.MustNewConstMetric(quotaLimit, prometheus.GaugeValue, float64(limit), r.Profile)
		}
	}
	for state, n := range counts {
		ch <- prometheus.MustNewConstMetric(tokensDesc, prometheus.GaugeValue, float64(n), state)
	}
}
