package sqlite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/failure"
	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/seal"
)

var _ store.Store = (*DB)(nil)

func TestOpenCreatesPrivateDirectoryAndFile(t *testing.T) {
	base := t.TempDir()
	path := filepath.Join(base, "a", "b", "state.db")
	d := openDB(t, path, testSealer(t, 1))
	for _, dir := range []string{filepath.Join(base, "a"), filepath.Join(base, "a", "b")} {
		fi, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := fi.Mode().Perm(), os.FileMode(0o700); got != want {
			t.Errorf("directory %s mode: got %04o, want %04o", dir, got, want)
		}
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fi.Mode().Perm(), os.FileMode(0o600); got != want {
		t.Errorf("state file mode: got %04o, want %04o", got, want)
	}
	// The WAL and shared-memory files SQLite makes beside it are private too.
	if err := leasedPut(context.Background(), d, "p", fullToken(), 0); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path + "-wal", path + "-shm"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Errorf("%s: %v (want it to exist in WAL mode)", p, err)
			continue
		}
		if got := fi.Mode().Perm(); got&0o077 != 0 {
			t.Errorf("%s mode: got %04o, want no access for group and others", p, got)
		}
	}
}

func TestOpenRefusesReadableStateFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	d, err := Open(path, testSealer(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	if err := leasedPut(context.Background(), d, "p", fullToken(), 0); err != nil {
		t.Fatal(err)
	}
	d.Close()
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)
	d2, err := Open(path, testSealer(t, 1))
	if err == nil {
		d2.Close()
		t.Fatalf("Open of a 0644 state file: got nil error, want a refusal")
	}
	if msg := err.Error(); !strings.Contains(msg, "chmod") || !strings.Contains(msg, path) {
		t.Errorf("got %q, want it to name the file and say chmod", msg)
	}
	if got, want := failure.KindOf(err), failure.Config; got != want {
		t.Errorf("error kind: got %v, want %v", got, want)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fi.Mode().Perm(), os.FileMode(0o644); got != want {
		t.Errorf("mode after the refusal: got %04o, want %04o (left as it was)", got, want)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Errorf("refused Open changed the file")
	}
}

func TestPutGetRoundTrip(t *testing.T) {
	ctx := context.Background()
	d := openDB(t, filepath.Join(t.TempDir(), "state.db"), testSealer(t, 1))

	got, err := d.Get(ctx, "p")
	if got != nil || err != nil {
		t.Fatalf("Get of an unknown profile: got %+v, %v, want nil, nil", got, err)
	}

	tok := fullToken()
	if err := leasedPut(ctx, d, "p", tok, 0); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if tok.Generation != 1 {
		t.Errorf("tok.Generation after the first Put: got %d, want 1", tok.Generation)
	}
	got, err = d.Get(ctx, "p")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if !sameToken(got, tok) {
		t.Errorf("Get after Put:\n got %+v\nwant %+v", got, tok)
	}

	next := tok.Clone()
	next.AccessToken = "second-access"
	next.PrevRefreshToken = tok.RefreshToken
	next.RefreshToken = "second-refresh"
	next.Secrets = nil
	next.Extra = nil
	if err := leasedPut(ctx, d, "p", next, 1); err != nil {
		t.Fatalf("second Put: %v", err)
	}
	if next.Generation != 2 {
		t.Errorf("tok.Generation after the second Put: got %d, want 2", next.Generation)
	}
	got, err = d.Get(ctx, "p")
	if err != nil {
		t.Fatal(err)
	}
	if !sameToken(got, next) {
		t.Errorf("Get after the second Put:\n got %+v\nwant %+v", got, next)
	}

	// Other profiles are untouched.
	if got, err := d.Get(ctx, "other"); got != nil || err != nil {
		t.Errorf("Get(other): got %+v, %v, want nil, nil", got, err)
	}
}

func TestPutConflictChangesNothing(t *testing.T) {
	ctx := context.Background()
	d := openDB(t, filepath.Join(t.TempDir(), "state.db"), testSealer(t, 1))
	first := fullToken()
	if err := leasedPut(ctx, d, "p", first, 0); err != nil {
		t.Fatal(err)
	}
	second := first.Clone()
	second.AccessToken = "second"
	if err := leasedPut(ctx, d, "p", second, 1); err != nil {
		t.Fatal(err)
	}

	for _, expect := range []int64{0, 1, 3} {
		stale := first.Clone()
		stale.AccessToken = "stale"
		stale.Generation = 42
		err := leasedPut(ctx, d, "p", stale, expect)
		if !errors.Is(err, store.ErrConflict) {
			t.Errorf("Put expecting generation %d when 2 is stored: got %v, want ErrConflict", expect, err)
		}
		if stale.Generation != 42 {
			t.Errorf("failed Put changed tok.Generation to %d", stale.Generation)
		}
		got, err := d.Get(ctx, "p")
		if err != nil {
			t.Fatal(err)
		}
		if !sameToken(got, second) {
			t.Errorf("after the conflicting Put: got %+v, want %+v", got, second)
		}
	}

	// A profile that holds nothing conflicts with any expectation but 0.
	if err := leasedPut(ctx, d, "new", fullToken(), 1); !errors.Is(err, store.ErrConflict) {
		t.Errorf("Put expecting generation 1 on an empty profile: got %v, want ErrConflict", err)
	}
	if got, err := d.Get(ctx, "new"); got != nil || err != nil {
		t.Errorf("after the conflicting Put: got %+v, %v, want nil, nil", got, err)
	}
}

func TestDelete(t *testing.T) {
	ctx := context.Background()
	d := openDB(t, filepath.Join(t.TempDir(), "state.db"), testSealer(t, 1))
	for _, p := range []string{"a", "b"} {
		if err := leasedPut(ctx, d, p, fullToken(), 0); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if got, err := d.Get(ctx, "a"); got != nil || err != nil {
		t.Errorf("Get after Delete: got %+v, %v, want nil, nil", got, err)
	}
	if got, err := d.Get(ctx, "b"); err != nil || got == nil || got.AccessToken != accessSecret {
		t.Errorf("Get(b) after Delete(a): got %+v, %v, want b's token", got, err)
	}
	if err := leasedPut(ctx, d, "a", fullToken(), 0); err != nil {
		t.Errorf("Put expecting 0 after Delete: %v", err)
	}
}

func TestNoPlaintextSecretsOnDisk(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	d := openDB(t, path, testSealer(t, 1))
	for _, p := range []string{"alpha", "beta", "gamma"} {
		tok := fullToken()
		if err := leasedPut(ctx, d, p, tok, 0); err != nil {
			t.Fatal(err)
		}
		// Rewrite it a few times, so old versions are left in pages.
		for i := range 3 {
			next := tok.Clone()
			next.Extra = map[string]any{"i": float64(i)}
			if err := leasedPut(ctx, d, p, next, tok.Generation); err != nil {
				t.Fatal(err)
			}
			tok = next
		}
	}
	if err := d.Delete(ctx, "gamma"); err != nil {
		t.Fatal(err)
	}

	check := func(when string, files map[string][]byte) {
		t.Helper()
		canary := false
		for name, b := range files {
			for _, s := range allSecrets {
				if i := bytes.Index(b, []byte(s)); i >= 0 {
					t.Errorf("%s: %s holds the secret %q in plaintext at offset %d", when, filepath.Base(name), s, i)
				}
			}
			canary = canary || bytes.Contains(b, []byte(scopeCanary))
		}
		if !canary {
			t.Errorf("%s: the plaintext scope %q is in none of the files: the scan looks at the wrong bytes", when, scopeCanary)
		}
	}
	open := stateFiles(t, path)
	if len(open[path+"-wal"]) == 0 {
		t.Errorf("WAL file is empty or missing while the store is open; want the recent commits in it")
	}
	check("while open", open)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	check("after Close", stateFiles(t, path))
}

func TestWrongKeyLeavesRowAlone(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	right := testSealer(t, 1)
	d, err := Open(path, right)
	if err != nil {
		t.Fatal(err)
	}
	tok := fullToken()
	if err := leasedPut(ctx, d, "prof", tok, 0); err != nil {
		t.Fatal(err)
	}
	d.Close()

	wrong, err := Open(path, testSealer(t, 2))
	if err != nil {
		t.Fatalf("Open with another key: %v", err)
	}
	got, err := wrong.Get(ctx, "prof")
	if err == nil {
		t.Fatalf("Get with the wrong key: got %+v, want an error", got)
	}
	if msg := err.Error(); !strings.Contains(msg, `"prof"`) || !strings.Contains(msg, "master key") {
		t.Errorf("Get with the wrong key: got %q, want it to name profile \"prof\" and mention the master key", msg)
	}
	if msg := err.Error(); strings.Contains(msg, accessSecret) || strings.Contains(msg, refreshSecret) {
		t.Errorf("error %q leaks a secret", msg)
	}
	wrong.Close()

	d = openDB(t, path, right)
	got, err = d.Get(ctx, "prof")
	if err != nil {
		t.Fatalf("Get with the right key again: %v", err)
	}
	if !sameToken(got, tok) {
		t.Errorf("after opening with the wrong key: got %+v, want %+v", got, tok)
	}
}

func TestTamperedRowIsRefused(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	s := testSealer(t, 1)
	d, err := Open(path, s)
	if err != nil {
		t.Fatal(err)
	}
	if err := leasedPut(ctx, d, "prof", fullToken(), 0); err != nil {
		t.Fatal(err)
	}
	if err := leasedPut(ctx, d, "other", fullToken(), 0); err != nil {
		t.Fatal(err)
	}
	d.Close()

	raw := rawDB(t, path)
	var access []byte
	if err := raw.QueryRow(`SELECT access FROM tokens WHERE profile = 'prof'`).Scan(&access); err != nil {
		t.Fatal(err)
	}
	if len(access) == 0 {
		t.Fatal("access column is empty")
	}
	access[len(access)/2] ^= 0x01
	if res, err := raw.Exec(`UPDATE tokens SET access = ? WHERE profile = 'prof'`, access); err != nil {
		t.Fatal(err)
	} else if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("tampering updated %d rows, want 1", n)
	}
	raw.Close()

	d = openDB(t, path, s)
	got, err := d.Get(ctx, "prof")
	if err == nil {
		t.Fatalf("Get of a tampered row: got %+v, want an error", got)
	}
	if msg := err.Error(); !strings.Contains(msg, `"prof"`) {
		t.Errorf("Get of a tampered row: got %q, want it to name profile \"prof\"", msg)
	}
	if !errors.Is(err, seal.ErrOpen) {
		t.Errorf("got %v, want it to wrap seal.ErrOpen", err)
	}
	if got, err := d.Get(ctx, "other"); err != nil || got == nil || got.AccessToken != accessSecret {
		t.Errorf("Get of an untouched row: got %+v, %v", got, err)
	}
}

func TestRowMovedToAnotherProfileIsRefused(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	s := testSealer(t, 1)
	d, err := Open(path, s)
	if err != nil {
		t.Fatal(err)
	}
	if err := leasedPut(ctx, d, "prof", fullToken(), 0); err != nil {
		t.Fatal(err)
	}
	d.Close()

	raw := rawDB(t, path)
	if _, err := raw.Exec(`UPDATE tokens SET profile = 'thief' WHERE profile = 'prof'`); err != nil {
		t.Fatal(err)
	}
	raw.Close()

	d = openDB(t, path, s)
	if got, err := d.Get(ctx, "thief"); err == nil {
		t.Fatalf("Get of a row renamed to another profile: got %+v, want an error", got)
	} else if !strings.Contains(err.Error(), `"thief"`) {
		t.Errorf("got %q, want it to name profile \"thief\"", err)
	}
}

func TestOpenCorruptFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	garbage := bytes.Repeat([]byte("this is not a SQLite database!\x00\xff"), 4096/32)
	if len(garbage) != 4096 {
		t.Fatalf("garbage is %d bytes", len(garbage))
	}
	if err := os.WriteFile(path, garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := Open(path, testSealer(t, 1))
	if err == nil {
		d.Close()
		t.Fatalf("Open of a garbage file: got nil error, want one")
	}
	if msg := err.Error(); !strings.Contains(msg, "corrupt") || !strings.Contains(msg, path) {
		t.Errorf("got %q, want it to say corrupt and name the file", msg)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(after, garbage) {
		t.Errorf("Open changed the corrupt file: got %d bytes, want the original 4096 untouched", len(after))
	}
}

// A newer release whose migrations only added is used as it is: replicas
// and CLI runs of this release keep working while others are upgraded.
func TestOpenNewerCompatibleSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	d := openDB(t, path, testSealer(t, 1))
	l, err := d.Acquire(context.Background(), "p", store.NewOwner(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Put(context.Background(), "p", fullToken(), 0, l); err != nil {
		t.Fatal(err)
	}
	d.Close()
	raw := rawDB(t, path)
	if _, err := raw.Exec(fmt.Sprintf(`PRAGMA user_version = %d; CREATE TABLE added_later (x INTEGER)`, len(migrations)+1)); err != nil {
		t.Fatal(err)
	}
	again := openDB(t, path, testSealer(t, 1))
	if got, err := again.Get(context.Background(), "p"); err != nil || got == nil {
		t.Fatalf("Get on the newer schema: %v, %v", got, err)
	}
	if v := userVersion(t, path); v != len(migrations)+1 {
		t.Errorf("schema %d after the open, want the newer %d left alone", v, len(migrations)+1)
	}
}

func TestOpenNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	d, err := Open(path, testSealer(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	raw := rawDB(t, path)
	// A newer release whose schema 99 changed what this one reads.
	if _, err := raw.Exec(`PRAGMA user_version = 99; UPDATE schema_floor SET min_reader = 99`); err != nil {
		t.Fatal(err)
	}
	raw.Close()

	d, err = Open(path, testSealer(t, 1))
	if err == nil {
		d.Close()
		t.Fatalf("Open of a schema 99 file: got nil error, want one")
	}
	if msg, want := err.Error(), fmt.Sprintf("newer tokenbroker (schema 99, which needs a tokenbroker that knows schema 99 or later; this one knows %d)", len(migrations)); !strings.Contains(msg, want) {
		t.Errorf("got %q, want it to say %q", msg, want)
	}
	raw = rawDB(t, path)
	var v int
	if err := raw.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	if v != 99 {
		t.Errorf("user_version after the refused Open: got %d, want 99", v)
	}
}
