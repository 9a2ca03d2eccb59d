package tokenbroker

import (
	"os/exec"
	"strings"
	"testing"
)

// The library's core links no store driver and no metrics: a program that
// uses it with SQLite does not carry PostgreSQL's client, and the reverse.
func TestCoreLinksNoDriver(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"github.com/jackc/pgx", "modernc.org/sqlite", "github.com/prometheus", "/server", "/internal/promtext", "/bench"} {
			if strings.Contains(dep, banned) {
				t.Errorf("the root package links %s", dep)
			}
		}
	}
}

// The CLI links nothing known to work at start for serve's sake (package
// init runs on every `tokenbroker token`): no metrics client, no
// runtime/metrics, expvar or protobuf. docs/design/2026-12-01-lean-cli.md.
func TestCLILinksNoStartupWork(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "./cmd/tokenbroker").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"github.com/VictoriaMetrics", "github.com/prometheus", "google.golang.org/protobuf", "/bench"} {
			if strings.Contains(dep, banned) {
				t.Errorf("the CLI links %s", dep)
			}
		}
		if dep == "runtime/metrics" || dep == "expvar" {
			t.Errorf("the CLI links %s", dep)
		}
	}
}
