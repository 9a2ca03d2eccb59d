package promtext

import (
	"io"
	"runtime"
	"strconv"
	"time"
)

// WriteRuntime writes the Go runtime's and the process's basic series,
// under the names Prometheus' client gives them: go_info, go_goroutines,
// go_gomaxprocs, go_memstats_*, process_start_time_seconds, and where the
// system says, process_resident_memory_bytes and process_cpu_seconds_total.
// It reads runtime.MemStats, which stops the world briefly: once a scrape.
func WriteRuntime(w io.Writer, started time.Time) {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	WriteType(w, "go_info", "gauge")
	io.WriteString(w, Gauge(Name("go_info", "version", runtime.Version()), 1))
	for _, g := range []struct {
		name, kind string
		v          float64
	}{
		{"go_goroutines", "gauge", float64(runtime.NumGoroutine())},
		{"go_gomaxprocs", "gauge", float64(runtime.GOMAXPROCS(0))},
		{"go_memstats_alloc_bytes", "gauge", float64(ms.Alloc)},
		{"go_memstats_alloc_bytes_total", "counter", float64(ms.TotalAlloc)},
		{"go_memstats_frees_total", "counter", float64(ms.Frees)},
		{"go_memstats_heap_inuse_bytes", "gauge", float64(ms.HeapInuse)},
		{"go_memstats_heap_objects", "gauge", float64(ms.HeapObjects)},
		{"go_memstats_last_gc_time_seconds", "gauge", float64(ms.LastGC) / 1e9},
		{"go_memstats_mallocs_total", "counter", float64(ms.Mallocs)},
		{"go_memstats_next_gc_bytes", "gauge", float64(ms.NextGC)},
		{"go_memstats_stack_inuse_bytes", "gauge", float64(ms.StackInuse)},
		{"go_memstats_sys_bytes", "gauge", float64(ms.Sys)},
		{"process_start_time_seconds", "gauge", float64(started.UnixNano()) / 1e9},
	} {
		WriteType(w, g.name, g.kind)
		io.WriteString(w, Gauge(g.name, g.v))
	}
	if rss, ok := residentBytes(); ok {
		WriteType(w, "process_resident_memory_bytes", "gauge")
		io.WriteString(w, "process_resident_memory_bytes "+strconv.FormatUint(rss, 10)+"\n")
	}
	if cpu, ok := cpuSeconds(); ok {
		WriteType(w, "process_cpu_seconds_total", "counter")
		io.WriteString(w, Gauge("process_cpu_seconds_total", cpu))
	}
}
