package sqlite

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/tokenbroker/tokenbroker/token"
)

// Regression tests for bugs found while writing the store tests.

// The DSN is "file:" + path + "?_pragma=...", unescaped: SQLite reads '?'
// and '#' in the path as the start of the URI query or fragment, and
// %XX as an escape. The state then goes to another file, made 0644 and never
// checked, and with '?' the pragmas (busy_timeout) are lost.
func TestRegressionOpenPathWithURIMetacharacters(t *testing.T) {
	ctx := context.Background()
	for _, dir := range []string{"hash#dir", "query?dir", "percent%41dir"} {
		base := t.TempDir()
		path := filepath.Join(base, dir, "state.db")
		d, err := Open(path, testSealer(t, 1))
		if err != nil {
			t.Errorf("%s: Open: %v", dir, err)
			continue
		}
		var seq int
		var name, file string
		if err := d.db.QueryRowContext(ctx, `PRAGMA database_list`).Scan(&seq, &name, &file); err != nil {
			t.Fatal(err)
		}
		var busy int
		if err := d.db.QueryRowContext(ctx, `PRAGMA busy_timeout`).Scan(&busy); err != nil {
			t.Fatal(err)
		}
		d.Close()
		if file != path {
			t.Errorf("%s: SQLite opened %q, want %q", dir, file, path)
		}
		if busy != 30000 {
			t.Errorf("%s: busy_timeout: got %d, want 30000", dir, busy)
		}
	}
}

// Migration 2 relies on secure_delete to wipe the plaintext tokens of
// schema 1, but secure_delete only wipes pages freed from then on: pages
// the first release freed before the upgrade (a deleted profile's overflow
// pages) keep their plaintext after the migration.
func TestRegressionMigrationLeavesPlaintextInFreePages(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	raw := rawDB(t, path)
	for _, stmt := range []string{
		`CREATE TABLE tokens (profile TEXT PRIMARY KEY, generation INTEGER NOT NULL, data BLOB NOT NULL, updated_at INTEGER NOT NULL)`,
		`PRAGMA user_version = 1`,
		`INSERT INTO tokens VALUES ('kept', 1, '{"access_token":"k"}', 0)`,
	} {
		if _, err := raw.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	// Five profiles with 8 KB tokens (large JWTs), logged out under schema 1.
	var tails []string
	for i := range 5 {
		access := strings.Repeat("eyJhbGciOiJSUzI1NiJ9", 400) + fmt.Sprintf("-SECRET-TAIL-%d-7c1e9a", i)
		tails = append(tails, access[len(access)-40:])
		data, _ := json.Marshal(&token.Token{AccessToken: access, Generation: 1})
		if _, err := raw.Exec(`INSERT INTO tokens VALUES (?, 1, ?, 0)`, fmt.Sprint("gone", i), data); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := raw.Exec(`DELETE FROM tokens WHERE profile <> 'kept'`); err != nil {
		t.Fatal(err)
	}
	raw.Close()

	d, err := Open(path, testSealer(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range tails {
		if i := bytes.Index(b, []byte(s)); i >= 0 {
			t.Errorf("after migration, the state file holds %q in plaintext at offset %d", s, i)
		}
	}
}

// Open's DSN switches the file to WAL on every connection. On a file that is
// not yet in WAL mode (new, or left by schema 1), PRAGMA journal_mode=WAL
// needs an exclusive lock and SQLite returns SQLITE_BUSY at once, without
// the busy handler: processes starting together on first use fail with
// "database is locked". About one round in 50-150 shows it.
func TestRegressionConcurrentFirstOpen(t *testing.T) {
	const rounds, workers = 300, 8
	failed := 0
	for round := range rounds {
		path := filepath.Join(t.TempDir(), "state.db")
		var wg sync.WaitGroup
		errs := make([]error, workers)
		start := make(chan struct{})
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				d, err := Open(path, testSealer(t, 1))
				if err == nil {
					d.Close()
				}
				errs[w] = err
			}()
		}
		close(start)
		wg.Wait()
		for w, err := range errs {
			if err != nil {
				failed++
				if failed <= 3 {
					t.Errorf("round %d worker %d: Open of a fresh file: %v", round, w, err)
				}
			}
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d concurrent first Opens failed, want none", failed, rounds*workers)
	}
}
