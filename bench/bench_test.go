package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The bench's short version, in the default test run: every section runs
// against every peer installed (the others are said to be missing), no
// load sees an error, and the report is written.
func TestBenchShort(t *testing.T) {
	if testing.Short() {
		t.Skip("runs loads for a few seconds")
	}
	out := filepath.Join(t.TempDir(), "performance.md")
	o := options{duration: 300 * time.Millisecond, conns: 8, rounds: 1, rate: 200, callers: 20, lifetime: 1, out: out, startupRuns: 10,
		mspTenants: 50, mspProxied: 20, mspFor: 3 * time.Second}
	if err := run(o); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	for _, want := range []string{"## Token API", "## Proxy", "tokenbroker proxy / httputil.ReverseProxy", "## Added latency", "1 request per token lifetime, 0 errors", "## CLI start-up", "token on a cache hit / hello-world",
		"## MSP tenants", "0 answered 429 by the emulator", "0 errors; **every tenant served"} {
		if !strings.Contains(text, want) {
			t.Errorf("the report lacks %q:\n%s", want, text)
		}
	}
	// Every table row ends with its error count.
	rows := 0
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "## CLI start-up") {
			break // whole processes: a failed run fails the bench
		}
		if !strings.HasPrefix(line, "| ") || strings.HasPrefix(line, "| contender") || strings.HasPrefix(line, "| path") {
			continue
		}
		rows++
		if !strings.HasSuffix(line, "| 0 |") {
			t.Errorf("a load saw errors: %s", line)
		}
	}
	if rows < 6 {
		t.Errorf("%d rows of figures, want the token API's, the proxy's and the fixed rate's", rows)
	}
}
