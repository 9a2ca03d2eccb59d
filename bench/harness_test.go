package main

import (
	"testing"
	"time"
)

// The figures the report prints come from these: a ratio is taken round
// by round (so drift falls on both contenders alike) and its median shown
// with the range.
func TestRatioIsTheMedianOfPerRoundRatios(t *testing.T) {
	r := results{by: map[string][]result{
		"a": {{rps: 200}, {rps: 330}, {rps: 90}},
		"b": {{rps: 100}, {rps: 300}, {rps: 100}},
	}}
	if got, want := r.ratio("a", "b"), "1.10 (0.90-2.00)"; got != want {
		t.Errorf("ratio = %q, want %q", got, want)
	}
	r.by["c"] = []result{{rps: 0}}
	if got := r.ratio("a", "c"); got != "-" {
		t.Errorf("ratio against a contender with no requests = %q, want -", got)
	}
	if got := median(r.by["a"], func(x result) float64 { return x.rps }); got != 200 {
		t.Errorf("median = %v", got)
	}
	if lo, hi := extent(r.by["a"]); lo != 90 || hi != 330 {
		t.Errorf("extent = %v-%v", lo, hi)
	}
}

// The start-up means leave out the fastest and slowest tenth: another
// process's burst on a shared machine does not move them.
func TestTrimmedMean(t *testing.T) {
	var s []time.Duration
	for i := range 18 {
		s = append(s, time.Duration(10+i%2)*time.Millisecond) // 10 and 11 ms
	}
	s = append(s, time.Millisecond, time.Second) // one outlier each way
	if got, want := trimmedMean(s), 10500*time.Microsecond; got != want {
		t.Errorf("trimmedMean = %v, want %v", got, want)
	}
}

// wrk's --latency report, as wrk 4.2 prints it.
func TestWrkPercentiles(t *testing.T) {
	out := []byte(`Running 5s test @ http://127.0.0.1:9000/
  2 threads and 64 connections
  Latency Distribution
     50%  711.00us
     75%    1.20ms
     90%    3.51ms
     99%   10.37ms
  404040 requests in 5.00s, 60.11MB read
Requests/sec:  80818.12
`)
	for pct, want := range map[string]time.Duration{"50%": 711 * time.Microsecond, "99%": 10370 * time.Microsecond, "99.9%": 0} {
		if got := wrkPercentile(out, pct); got != want {
			t.Errorf("%s = %v, want %v", pct, got, want)
		}
	}
}
