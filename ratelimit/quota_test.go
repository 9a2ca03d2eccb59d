package ratelimit

import (
	"errors"
	"net/http"
	"testing"
	"time"
)

func quotaHeaders(remaining, limit string) http.Header {
	h := http.Header{}
	if remaining != "" {
		h.Set("X-RateLimit-Remaining-day", remaining)
	}
	if limit != "" {
		h.Set("X-RateLimit-Limit-day", limit)
	}
	return h
}

func TestQuotaUnknownAllows(t *testing.T) {
	var q Quota
	now := time.Date(2025, 3, 4, 15, 0, 0, 0, time.UTC)
	if err := q.Check(now); err != nil {
		t.Errorf("Check() with no headers seen = %v; want nil", err)
	}
	q.Observe(http.Header{}, now)
	q.Observe(quotaHeaders("many", "1000"), now)
	if err := q.Check(now); err != nil {
		t.Errorf("Check() after responses without a numeric Remaining-day = %v; want nil", err)
	}
	if rem, limit, known := q.Remaining(); known || rem != 0 || limit != 0 {
		t.Errorf("Remaining() = %d, %d, %v; want 0, 0, false", rem, limit, known)
	}
}

func TestQuotaSpentUntilMidnightGMT(t *testing.T) {
	var q Quota
	at := time.Date(2025, 3, 4, 15, 0, 0, 0, time.UTC)
	q.Observe(quotaHeaders("0", "5000"), at)

	err := q.Check(at)
	var r *Refused
	if !errors.As(err, &r) {
		t.Fatalf("Check() with 0 remaining = %v; want *Refused", err)
	}
	if got, want := r.RetryAfter, 9*time.Hour; got != want {
		t.Errorf("RetryAfter = %v; want %v (to midnight GMT)", got, want)
	}
	if rem, limit, known := q.Remaining(); rem != 0 || limit != 5000 || !known {
		t.Errorf("Remaining() = %d, %d, %v; want 0, 5000, true", rem, limit, known)
	}

	// Still spent one second before midnight.
	late := time.Date(2025, 3, 4, 23, 59, 59, 0, time.UTC)
	if err := q.Check(late); !errors.As(err, &r) || r.RetryAfter != time.Second {
		t.Errorf("Check(23:59:59) = %v; want *Refused with RetryAfter 1s", err)
	}

	// A new day at midnight GMT: allowed again.
	next := time.Date(2025, 3, 5, 0, 0, 1, 0, time.UTC)
	if err := q.Check(next); err != nil {
		t.Errorf("Check(next day 00:00:01) = %v; want nil", err)
	}
	if _, _, known := q.Remaining(); known {
		t.Errorf("Remaining() known = true after the reset; want false until the vendor tells again")
	}
	if err := q.Check(next.Add(time.Hour)); err != nil {
		t.Errorf("Check(next day 01:00:01) = %v; want nil", err)
	}
}

// The reset is midnight GMT whatever the local zone of the time given.
func TestQuotaMidnightGMTFromOtherZones(t *testing.T) {
	for _, tz := range []struct {
		name   string
		offset int
	}{{"UTC+10", 10 * 3600}, {"UTC-8", -8 * 3600}} {
		t.Run(tz.name, func(t *testing.T) {
			loc := time.FixedZone(tz.name, tz.offset)
			at := time.Date(2025, 3, 4, 15, 0, 0, 0, time.UTC).In(loc)
			var q Quota
			q.Observe(quotaHeaders("0", ""), at)
			var r *Refused
			if err := q.Check(at); !errors.As(err, &r) {
				t.Fatalf("Check() = %v; want *Refused", err)
			}
			if got, want := r.RetryAfter, 9*time.Hour; got != want {
				t.Errorf("RetryAfter = %v; want %v", got, want)
			}
			if err := q.Check(time.Date(2025, 3, 5, 0, 0, 1, 0, time.UTC).In(loc)); err != nil {
				t.Errorf("Check(00:00:01 GMT next day) = %v; want nil", err)
			}
		})
	}
}

func TestQuotaRemainingAllows(t *testing.T) {
	var q Quota
	at := time.Date(2025, 3, 4, 15, 0, 0, 0, time.UTC)
	q.Observe(quotaHeaders("10", "5000"), at)
	if err := q.Check(at); err != nil {
		t.Errorf("Check() with 10 remaining = %v; want nil", err)
	}
	if rem, limit, known := q.Remaining(); rem != 10 || limit != 5000 || !known {
		t.Errorf("Remaining() = %d, %d, %v; want 10, 5000, true", rem, limit, known)
	}

	// A later response without the limit keeps the known limit.
	q.Observe(quotaHeaders("9", ""), at.Add(time.Minute))
	if rem, limit, known := q.Remaining(); rem != 9 || limit != 5000 || !known {
		t.Errorf("Remaining() = %d, %d, %v; want 9, 5000, true", rem, limit, known)
	}

	// Then spent, then a response says there is quota again (the vendor
	// reset early or raised the limit): allowed.
	q.Observe(quotaHeaders("0", "5000"), at.Add(2*time.Minute))
	if err := q.Check(at.Add(2 * time.Minute)); err == nil {
		t.Errorf("Check() with 0 remaining = nil; want *Refused")
	}
	q.Observe(quotaHeaders("4000", "5000"), at.Add(3*time.Minute))
	if err := q.Check(at.Add(3 * time.Minute)); err != nil {
		t.Errorf("Check() after Remaining-day 4000 = %v; want nil", err)
	}
}

func TestQuotaNegativeRemainingRefuses(t *testing.T) {
	var q Quota
	at := time.Date(2025, 3, 4, 23, 0, 0, 0, time.UTC)
	q.Observe(quotaHeaders("-3", "100"), at)
	var r *Refused
	if err := q.Check(at); !errors.As(err, &r) || r.RetryAfter != time.Hour {
		t.Errorf("Check() with -3 remaining = %v; want *Refused with RetryAfter 1h", err)
	}
}
