package server

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Any profile name, quotes, backslashes and line breaks included, makes a
// series that Prometheus' own parser reads back as that name.
func TestMetricsEscapeLabelValues(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	odd := "a\"b\\c\nd é"
	exp := now.Add(90 * time.Second)
	m := newMetrics(func() time.Time { return now }, func(context.Context) ([]statusRow, error) {
		return []statusRow{{profile: odd, state: "valid", expires: &exp, remaining: 4, limit: 9, quotaKnown: true}}, nil
	})
	m.Requested(odd, "refresh", nil, 0)
	m.Requested(odd, "refresh", errors.New("x"), 0)
	m.Waited(odd, 300*time.Millisecond)
	m.served(odd, "admin", 200)
	m.served(odd, "admin", 200)
	m.served(odd, "admin", 503)
	hookMetrics{m}.Forwarded(odd, 3)
	m.connRefused()

	rec := httptest.NewRecorder()
	m.handler(rec, httptest.NewRequest("GET", "/metrics", nil))
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(rec.Body)
	if err != nil {
		t.Fatalf("does not parse: %v", err)
	}
	value := func(family string, want map[string]string) (float64, bool) {
		mf := mfs[family]
		if mf == nil {
			return 0, false
		}
	next:
		for _, s := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range s.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue next
				}
			}
			switch {
			case s.Counter != nil:
				return s.GetCounter().GetValue(), true
			case s.Gauge != nil:
				return s.GetGauge().GetValue(), true
			case s.Histogram != nil:
				return float64(s.GetHistogram().GetSampleCount()), true
			case s.Untyped != nil:
				return s.GetUntyped().GetValue(), true
			}
		}
		return 0, false
	}
	for _, c := range []struct {
		family string
		labels map[string]string
		want   float64
	}{
		{"tokenbroker_upstream_token_requests_total", map[string]string{"profile": odd, "action": "refresh"}, 2},
		{"tokenbroker_refreshes_total", map[string]string{"profile": odd, "outcome": "ok"}, 1},
		{"tokenbroker_refreshes_total", map[string]string{"profile": odd, "outcome": "failed"}, 1},
		{"tokenbroker_refresh_failures_total", map[string]string{"profile": odd}, 1},
		{"tokenbroker_ratelimit_waits_total", map[string]string{"profile": odd}, 1},
		{"tokenbroker_ratelimit_wait_seconds", map[string]string{"profile": odd}, 1},
		{"tokenbroker_proxy_requests_total", map[string]string{"profile": odd, "code": "200"}, 2},
		{"tokenbroker_proxy_requests_total", map[string]string{"profile": odd, "code": "503"}, 1},
		{"tokenbroker_webhook_deliveries_total", map[string]string{"profile": odd, "outcome": "forwarded"}, 3},
		{"tokenbroker_connections_refused_total", nil, 1},
		{"tokenbroker_token_expiry_seconds", map[string]string{"profile": odd}, 90},
		{"tokenbroker_quota_remaining", map[string]string{"profile": odd}, 4},
		{"tokenbroker_quota_limit", map[string]string{"profile": odd}, 9},
		{"tokenbroker_tokens", map[string]string{"state": "valid"}, 1},
		{"tokenbroker_store_up", nil, 1},
	} {
		if got, ok := value(c.family, c.labels); !ok || got != c.want {
			t.Errorf("%s%v = %v (found %v), want %v", c.family, c.labels, got, ok, c.want)
		}
	}
	if mfs["tokenbroker_proxy_requests_total"].GetType().String() != "COUNTER" {
		t.Errorf("proxy requests typed %v, want COUNTER", mfs["tokenbroker_proxy_requests_total"].GetType())
	}
	if mfs["go_goroutines"] == nil || mfs["process_resident_memory_bytes"] == nil {
		t.Error("no Go or process series")
	}
}

// tokenbroker_store_up says 0 when the state cannot be read at scrape time.
func TestStoreUpMetric(t *testing.T) {
	m := newMetrics(time.Now, func(context.Context) ([]statusRow, error) { return nil, errors.New("state gone") })
	rec := httptest.NewRecorder()
	m.handler(rec, httptest.NewRequest("GET", "/metrics", nil))
	if !strings.Contains(rec.Body.String(), "\ntokenbroker_store_up 0\n") {
		t.Errorf("/metrics with the state gone:\n%s", rec.Body.String())
	}
}
