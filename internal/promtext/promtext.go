// Package promtext keeps counters and histograms and writes them in
// Prometheus' text exposition format (version 0.0.4).
//
// It exists so that the CLI, which links serve's metrics, pays nothing for
// them at start: the metrics libraries at hand do work in init (Prometheus'
// client registers collectors, VictoriaMetrics' reads cgroup and pressure
// files and runtime/metrics), which cost every `tokenbroker token` run
// 0.3-0.4 ms (docs/design/2026-12-01-lean-cli.md). It keeps to what serve
// uses; the output is checked with Prometheus' own parser in the tests.
package promtext

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Set is a collection of series, each named by its family and labels as
// the text format writes them: `family{label="value",...}`. Safe for
// concurrent use.
type Set struct {
	mu      sync.Mutex
	series  map[string]series
	writers []func(io.Writer)
}

type series interface {
	write(w *bytes.Buffer, name string)
	kind() string
}

// NewSet returns an empty set.
func NewSet() *Set { return &Set{series: map[string]series{}} }

// Counter returns the counter of that series, made on first use. It
// panics if the series is already another kind: a programming error.
func (s *Set) Counter(name string) *Counter {
	return getOrMake(s, name, func() *Counter { return &Counter{} })
}

// Histogram returns the histogram of that series with the given upper
// bounds (ascending; +Inf is implied), made on first use.
func (s *Set) Histogram(name string, bounds []float64) *Histogram {
	return getOrMake(s, name, func() *Histogram {
		return &Histogram{bounds: bounds, counts: make([]uint64, len(bounds)+1)}
	})
}

func getOrMake[T series](s *Set, name string, mk func() T) T {
	s.mu.Lock()
	defer s.mu.Unlock()
	if m, ok := s.series[name]; ok {
		t, ok := m.(T)
		if !ok {
			panic(fmt.Sprintf("promtext: series %s is a %s", name, m.kind()))
		}
		return t
	}
	t := mk()
	s.series[name] = t
	return t
}

// AddWriter adds fn, which writes series computed at scrape time (with
// their TYPE lines, see WriteType), after the set's own.
func (s *Set) AddWriter(fn func(io.Writer)) {
	s.mu.Lock()
	s.writers = append(s.writers, fn)
	s.mu.Unlock()
}

// Write writes every series, grouped by family in name order, each
// family after its TYPE line, then what the writers write.
func (s *Set) Write(w io.Writer) {
	type named struct {
		name string
		m    series
	}
	s.mu.Lock()
	all := make([]named, 0, len(s.series))
	for n, m := range s.series {
		all = append(all, named{n, m})
	}
	writers := append(([]func(io.Writer))(nil), s.writers...)
	s.mu.Unlock()
	sort.Slice(all, func(i, j int) bool {
		fi, fj := Family(all[i].name), Family(all[j].name)
		if fi != fj {
			return fi < fj
		}
		return all[i].name < all[j].name
	})
	var b bytes.Buffer
	last := ""
	for _, e := range all {
		if f := Family(e.name); f != last {
			WriteType(&b, f, e.m.kind())
			last = f
		}
		e.m.write(&b, e.name)
	}
	w.Write(b.Bytes())
	for _, fn := range writers {
		fn(w)
	}
}

// Family is the family of a series name: the part before its labels.
func Family(name string) string {
	if i := strings.IndexByte(name, '{'); i >= 0 {
		return name[:i]
	}
	return name
}

// WriteType writes a family's TYPE line.
func WriteType(w io.Writer, family, kind string) {
	io.WriteString(w, "# TYPE "+family+" "+kind+"\n")
}

// Name builds a series name from a family and label pairs (name, value,
// ...), given in name order; values are escaped as the format says.
func Name(family string, labels ...string) string {
	if len(labels) == 0 {
		return family
	}
	var b strings.Builder
	b.WriteString(family)
	for i := 0; i+1 < len(labels); i += 2 {
		if i == 0 {
			b.WriteByte('{')
		} else {
			b.WriteByte(',')
		}
		b.WriteString(labels[i])
		b.WriteString(`="`)
		labelEscaper.WriteString(&b, labels[i+1])
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

// Counter counts up from zero.
type Counter struct{ n atomic.Uint64 }

// Inc adds one.
func (c *Counter) Inc() { c.n.Add(1) }

// Add adds n (n >= 0).
func (c *Counter) Add(n int) { c.n.Add(uint64(n)) }

// Value is the count so far.
func (c *Counter) Value() uint64 { return c.n.Load() }

func (c *Counter) kind() string { return "counter" }
func (c *Counter) write(b *bytes.Buffer, name string) {
	b.WriteString(name)
	b.WriteByte(' ')
	b.WriteString(strconv.FormatUint(c.n.Load(), 10))
	b.WriteByte('\n')
}

// Histogram counts observations into buckets of fixed upper bounds, as
// Prometheus' histograms do (cumulative `le` buckets, _sum and _count).
type Histogram struct {
	bounds []float64
	mu     sync.Mutex
	counts []uint64 // per bucket, the last for +Inf; not cumulative
	sum    float64
}

// Observe records one value.
func (h *Histogram) Observe(v float64) {
	i := sort.SearchFloat64s(h.bounds, v) // the first bound >= v
	h.mu.Lock()
	h.counts[i]++
	h.sum += v
	h.mu.Unlock()
}

func (h *Histogram) kind() string { return "histogram" }
func (h *Histogram) write(b *bytes.Buffer, name string) {
	family := Family(name)
	labels := strings.TrimSuffix(strings.TrimPrefix(name[len(family):], "{"), "}")
	h.mu.Lock()
	counts, sum := append([]uint64(nil), h.counts...), h.sum
	h.mu.Unlock()
	with := func(suffix, extra string) string {
		l := labels
		if extra != "" {
			if l != "" {
				l += ","
			}
			l += extra
		}
		if l == "" {
			return family + suffix
		}
		return family + suffix + "{" + l + "}"
	}
	var total uint64
	for i, c := range counts {
		total += c
		le := "+Inf"
		if i < len(h.bounds) {
			le = strconv.FormatFloat(h.bounds[i], 'g', -1, 64)
		}
		fmt.Fprintf(b, "%s %d\n", with("_bucket", `le="`+le+`"`), total)
	}
	fmt.Fprintf(b, "%s %s\n", with("_sum", ""), formatFloat(sum))
	fmt.Fprintf(b, "%s %d\n", with("_count", ""), total)
}

func formatFloat(v float64) string {
	switch {
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	case math.IsNaN(v):
		return "NaN"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}

// Gauge is one gauge line, for writers: `name value`.
func Gauge(name string, v float64) string { return name + " " + formatFloat(v) + "\n" }
