package sqlite

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/token"
)

// writeV1 makes a state file as the first release left it: tokens as plain
// JSON, user_version 1.
func writeV1(t *testing.T, path string, rows map[string]*token.Token) {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	raw := rawDB(t, path)
	for _, stmt := range []string{
		`CREATE TABLE tokens (profile TEXT PRIMARY KEY, generation INTEGER NOT NULL, data BLOB NOT NULL, updated_at INTEGER NOT NULL)`,
		`PRAGMA user_version = 1`,
	} {
		if _, err := raw.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	for profile, tok := range rows {
		data, err := json.Marshal(tok)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := raw.Exec(`INSERT INTO tokens VALUES (?, ?, ?, ?)`, profile, tok.Generation, data, time.Now().UnixMilli()); err != nil {
			t.Fatal(err)
		}
	}
	if err := raw.Close(); err != nil {
		t.Fatal(err)
	}
}

func userVersion(t *testing.T, path string) int {
	t.Helper()
	raw := rawDB(t, path)
	defer raw.Close()
	var v int
	if err := raw.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestMigrateFromSchema1(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	full := fullToken()
	full.Generation = 7
	plain := &token.Token{AccessToken: "ACCESS-ONLY-3c4d5e6f7a8b9c0d1e2f-plain-v1", Grant: "client_credentials", Generation: 2,
		ObtainedAt: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)}
	writeV1(t, path, map[string]*token.Token{"full": full, "plain": plain})

	secrets := append([]string{plain.AccessToken}, allSecrets...)
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range secrets {
		if !bytes.Contains(before, []byte(s)) {
			t.Fatalf("the v1 file does not hold %q in plaintext: the test builds the wrong file", s)
		}
	}

	s := testSealer(t, 1)
	d, err := Open(path, s)
	if err != nil {
		t.Fatalf("Open of a schema 1 file: %v", err)
	}
	for profile, want := range map[string]*token.Token{"full": full, "plain": plain} {
		got, err := d.Get(ctx, profile)
		if err != nil {
			t.Fatalf("Get(%s) after migration: %v", profile, err)
		}
		if !sameToken(got, want) {
			t.Errorf("Get(%s) after migration:\n got %+v\nwant %+v", profile, got, want)
		}
	}
	// The migrated row takes part in compare-and-swap at its old generation.
	next := full.Clone()
	next.AccessToken = "after-migration"
	if err := leasedPut(ctx, d, "full", next, 7); err != nil {
		t.Errorf("Put expecting the migrated generation 7: %v", err)
	} else if next.Generation != 8 {
		t.Errorf("generation after Put: got %d, want 8", next.Generation)
	}
	// The new tables exist: the lease of that Put was the first (fence 1).
	if l, err := d.Acquire(ctx, "full", "o", time.Minute); err != nil || l.Fence != 2 {
		t.Errorf("Acquire after migration: got %+v, %v, want fence 2", l, err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	after := stateFiles(t, path)
	for name, b := range after {
		for _, sec := range secrets {
			if i := bytes.Index(b, []byte(sec)); i >= 0 {
				t.Errorf("after migration and Close, %s still holds %q in plaintext at offset %d", filepath.Base(name), sec, i)
			}
		}
	}
	if got, want := userVersion(t, path), len(migrations); got != want {
		t.Errorf("user_version after migration: got %d, want %d", got, want)
	}

	// Opening again does not migrate twice.
	d = openDB(t, path, s)
	if got, err := d.Get(ctx, "plain"); err != nil || !sameToken(got, plain) {
		t.Errorf("Get(plain) after reopening: got %+v, %v, want %+v", got, err, plain)
	}
}

func TestMigrateFreshFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	d, err := Open(path, testSealer(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	if got, want := userVersion(t, path), len(migrations); got != want {
		t.Errorf("user_version of a new file: got %d, want %d", got, want)
	}
}

func TestMigrationFailureRollsBack(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	writeV1(t, path, map[string]*token.Token{"ok": {AccessToken: "a", Generation: 1}})
	raw := rawDB(t, path)
	if _, err := raw.Exec(`INSERT INTO tokens VALUES ('bad', 1, '{not json', 0)`); err != nil {
		t.Fatal(err)
	}
	raw.Close()

	d, err := Open(path, testSealer(t, 1))
	if err == nil {
		d.Close()
		t.Fatalf("Open of a v1 file with an unreadable row: got nil error, want one")
	}
	if got, want := userVersion(t, path), 1; got != want {
		t.Errorf("user_version after the failed migration: got %d, want %d (rolled back)", got, want)
	}
	raw = rawDB(t, path)
	var n int
	if err := raw.QueryRow(`SELECT count(*) FROM tokens WHERE data IS NOT NULL`).Scan(&n); err != nil {
		t.Fatalf("v1 table after the failed migration: %v", err)
	}
	if n != 2 {
		t.Errorf("v1 rows after the failed migration: got %d, want 2", n)
	}
}
