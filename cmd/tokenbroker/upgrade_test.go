package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/tokenbroker/tokenbroker/internal/pgtest"
)

// Rolling upgrades: this release and the next share one state. A next
// release whose schema change only adds leaves this one working; one whose
// change this one cannot read makes it refuse, naming both versions, and
// change nothing. Both stores, with real binaries built for each release.
func TestRollingUpgradeAcrossReleases(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two more binaries")
	}
	dir := t.TempDir()
	build := func(tag string) string {
		bin := filepath.Join(dir, "tokenbroker-"+tag)
		if out, err := exec.Command("go", "build", "-tags", tag, "-o", bin, ".").CombinedOutput(); err != nil {
			t.Fatalf("go build -tags %s: %v\n%s", tag, err, out)
		}
		return bin
	}
	this, next, breaking := binary(t), build("schematest_next"), build("schematest_breaking")
	states := map[string]string{"sqlite": "", "postgres": pgtest.Start(t).Database(t)}
	for kind, dsn := range states {
		t.Run(kind, func(t *testing.T) {
			p := newProc(t, nil)
			if dsn != "" {
				cfg, _ := os.ReadFile(p.config)
				cfg = regexp.MustCompile(`(?m)^state: .*$`).ReplaceAll(cfg, []byte("state: "+dsn))
				if err := os.WriteFile(p.config, cfg, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			run := func(bin string, args ...string) result { return p.runOf(t, bin, args...) }
			mustOK(t, run(this, "token", "ruckus"))
			mustOK(t, run(next, "token", "ruckus")) // migrates: adds a table
			mustOK(t, run(this, "token", "ruckus")) // this release still reads the state
			mustOK(t, run(this, "status"))
			mustOK(t, run(breaking, "token", "ruckus")) // a change this release cannot read
			r := run(this, "token", "ruckus")
			m := regexp.MustCompile(`schema (\d+), which needs a tokenbroker that knows schema (\d+) or later; this one knows (\d+)`).FindStringSubmatch(r.stderr)
			if r.code == 0 || !strings.Contains(r.stderr, "written by a newer tokenbroker") || m == nil {
				t.Fatalf("this release on the breaking schema: exit %d, %s", r.code, r.stderr)
			}
			if theirs, ours := m[1], m[3]; m[2] != theirs || fmt.Sprint(atoi(ours)+2) != theirs {
				t.Errorf("versions named: %q, want the breaking release's two past this one's", m[0])
			}
			mustOK(t, run(breaking, "token", "ruckus")) // nothing was changed by the refusal
		})
	}
}

func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}
