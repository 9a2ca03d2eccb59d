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
		for _, banned := range []string{"github.com/jackc/pgx", "modernc.org/sqlite", "github.com/VictoriaMetrics", "github.com/prometheus", "/server", "/bench"} {
			if strings.Contains(dep, banned) {
				t.Errorf("the root package links %s", dep)
			}
		}
	}
}
