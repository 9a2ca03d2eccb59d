package promtext

import (
	"bytes"
	"io"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// parse reads what s writes with Prometheus' own parser.
func parse(t *testing.T, s *Set) map[string]*dto.MetricFamily {
	t.Helper()
	var b bytes.Buffer
	s.Write(&b)
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatalf("Prometheus' parser refuses the output: %v\n%s", err, b.String())
	}
	return mfs
}

func TestCountersAndHistogramsParseBack(t *testing.T) {
	s := NewSet()
	odd := "a\"b\\c\nd é"
	s.Counter(Name("requests_total", "code", "200", "profile", odd)).Add(3)
	s.Counter(Name("requests_total", "code", "503", "profile", odd)).Inc()
	s.Counter("plain_total").Inc()
	h := s.Histogram(Name("wait_seconds", "profile", odd), []float64{0.1, 1})
	for _, v := range []float64{0.05, 0.1, 0.5, 2} {
		h.Observe(v)
	}
	s.Histogram("bare_seconds", []float64{1}).Observe(3)
	s.AddWriter(func(w io.Writer) {
		WriteType(w, "zz_gauge", "gauge")
		io.WriteString(w, Gauge(Name("zz_gauge", "k", "v"), 1.5))
	})
	mfs := parse(t, s)

	req := mfs["requests_total"]
	if req.GetType() != dto.MetricType_COUNTER || len(req.GetMetric()) != 2 {
		t.Fatalf("requests_total: %v", req)
	}
	for _, m := range req.GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		want := map[string]float64{"200": 3, "503": 1}[labels["code"]]
		if labels["profile"] != odd || m.GetCounter().GetValue() != want {
			t.Errorf("series %v = %v, want profile %q and %v", labels, m.GetCounter().GetValue(), odd, want)
		}
	}
	wait := mfs["wait_seconds"].GetMetric()[0].GetHistogram()
	if wait.GetSampleCount() != 4 || wait.GetSampleSum() != 2.65 {
		t.Errorf("wait_seconds count %d sum %v, want 4 and 2.65", wait.GetSampleCount(), wait.GetSampleSum())
	}
	// Buckets are cumulative, and a value on a bound falls in that bucket.
	for i, want := range []uint64{2, 3} {
		if got := wait.GetBucket()[i].GetCumulativeCount(); got != want {
			t.Errorf("bucket le=%v: %d, want %d", wait.GetBucket()[i].GetUpperBound(), got, want)
		}
	}
	if b := mfs["bare_seconds"].GetMetric()[0].GetHistogram(); b.GetSampleCount() != 1 || b.GetBucket()[0].GetCumulativeCount() != 0 {
		t.Errorf("bare_seconds: %v", b)
	}
	if mfs["plain_total"].GetMetric()[0].GetCounter().GetValue() != 1 || mfs["zz_gauge"].GetMetric()[0].GetGauge().GetValue() != 1.5 {
		t.Errorf("plain_total or zz_gauge wrong: %v %v", mfs["plain_total"], mfs["zz_gauge"])
	}
}

// Each family gets one TYPE line, and families come in name order.
func TestFamiliesAreGroupedAndOrdered(t *testing.T) {
	s := NewSet()
	for _, n := range []string{Name("b_total", "x", "2"), "a_total", Name("b_total", "x", "1"), "c_total"} {
		s.Counter(n).Inc()
	}
	var b bytes.Buffer
	s.Write(&b)
	want := "# TYPE a_total counter\na_total 1\n# TYPE b_total counter\nb_total{x=\"1\"} 1\nb_total{x=\"2\"} 1\n# TYPE c_total counter\nc_total 1\n"
	if b.String() != want {
		t.Errorf("wrote\n%s\nwant\n%s", b.String(), want)
	}
}

func TestOneSeriesIsOneKind(t *testing.T) {
	s := NewSet()
	s.Counter("x")
	defer func() {
		if recover() == nil {
			t.Error("a counter's name made a histogram")
		}
	}()
	s.Histogram("x", nil)
}

// Counters count exactly under concurrent use (run with -race).
func TestCountersUnderConcurrentUse(t *testing.T) {
	s := NewSet()
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 1000 {
				s.Counter("n_total").Inc()
				s.Histogram("h", []float64{1}).Observe(0.5)
			}
		}()
	}
	go s.Write(io.Discard)
	wg.Wait()
	if got := s.Counter("n_total").Value(); got != 8000 {
		t.Errorf("counted %d, want 8000", got)
	}
}

func TestRuntimeSeries(t *testing.T) {
	s := NewSet()
	started := time.Unix(1_700_000_000, 0)
	s.AddWriter(func(w io.Writer) { WriteRuntime(w, started) })
	mfs := parse(t, s)
	if runtime.GOOS != "linux" {
		t.Skip("the process series are read on Linux")
	}
	for _, f := range []string{"go_info", "go_goroutines", "go_memstats_alloc_bytes", "process_start_time_seconds", "process_resident_memory_bytes", "process_cpu_seconds_total"} {
		if mfs[f] == nil {
			t.Fatalf("no %s", f)
		}
	}
	if v := mfs["process_start_time_seconds"].GetMetric()[0].GetGauge().GetValue(); v != 1_700_000_000 {
		t.Errorf("process_start_time_seconds = %v", v)
	}
	if v := mfs["process_resident_memory_bytes"].GetMetric()[0].GetGauge().GetValue(); v < 1<<20 {
		t.Errorf("process_resident_memory_bytes = %v, want at least 1 MiB", v)
	}
	if !strings.HasPrefix(mfs["go_info"].GetMetric()[0].GetLabel()[0].GetValue(), "go") {
		t.Errorf("go_info: %v", mfs["go_info"])
	}
}
