// Package storetest holds the tests every store must pass, run against
// SQLite and PostgreSQL together.
package storetest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/internal/pgtest"
	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/postgres"
	"github.com/tokenbroker/tokenbroker/store/seal"
	"github.com/tokenbroker/tokenbroker/store/sqlite"
	"github.com/tokenbroker/tokenbroker/token"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Stop()
	os.Exit(code)
}

// rekeyable is a store whose keys rotate, with its webhooks.
type rekeyable interface {
	store.Store
	store.Rekeyer
	store.Webhooks
}

// opener opens one more process's handle on a state, with one key.
type opener func(t *testing.T, key []byte) rekeyable

func stores(t *testing.T) map[string]opener {
	path := filepath.Join(t.TempDir(), "state.db")
	var dsn string
	return map[string]opener{
		"sqlite": func(t *testing.T, key []byte) rekeyable {
			d, err := sqlite.Open(path, sealerOf(t, key))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { d.Close() })
			return d
		},
		"postgres": func(t *testing.T, key []byte) rekeyable {
			if dsn == "" {
				dsn = pgtest.Start(t).Database(t)
			}
			d, err := postgres.Open(context.Background(), dsn, sealerOf(t, key))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { d.Close() })
			return d
		},
	}
}

func sealerOf(t *testing.T, key []byte) *seal.Sealer {
	s, err := seal.New(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func key(b byte) []byte { return bytes.Repeat([]byte{b}, seal.KeySize) }

// put writes a token for profile through its lease.
func put(t *testing.T, st store.Store, profile, access string) {
	t.Helper()
	err := store.WithLease(context.Background(), st, profile, "test", 10*time.Second, func(l *store.Leased) error {
		cur, err := l.Get(context.Background())
		if err != nil {
			return err
		}
		var gen int64
		if cur != nil {
			gen = cur.Generation
		}
		return l.Put(context.Background(), &token.Token{AccessToken: access, RefreshToken: "r-" + access, Secrets: map[string]string{"client_secret": "s-" + profile}}, gen)
	})
	if err != nil {
		t.Fatalf("put %s: %v", profile, err)
	}
}

func access(t *testing.T, st store.Store, profile string) string {
	t.Helper()
	tok, err := st.Get(context.Background(), profile)
	if err != nil {
		t.Fatalf("get %s: %v", profile, err)
	}
	if tok == nil {
		t.Fatalf("get %s: no token", profile)
	}
	return tok.AccessToken
}

func sealing(t *testing.T, st store.Rekeyer) map[string]int {
	t.Helper()
	ks, err := st.Keys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ks.Sealing
}

func TestRekeyThenRetire(t *testing.T) {
	ctx := context.Background()
	oldKey, newKey := key(1), key(2)
	oldID, newID := seal.KeyID(oldKey), seal.KeyID(newKey)
	for name, open := range stores(t) {
		t.Run(name, func(t *testing.T) {
			admin := open(t, oldKey)
			replica := open(t, oldKey) // another process, never told of the new key
			put(t, admin, "aruba", "tok-1")
			put(t, admin, "ruckus", "tok-2")
			if err := admin.PutWebhookToken(ctx, "aruba", "alerts", &store.WebhookToken{Current: "wh-1"}); err != nil {
				t.Fatal(err)
			}
			_ = access(t, replica, "aruba") // the replica has read under the old key

			rot, err := admin.Rekey(ctx, newKey)
			if err != nil {
				t.Fatal(err)
			}
			if rot.Primary != newID || rot.Previous != oldID || rot.Resealed != 3 {
				t.Fatalf("rotation = %+v, want primary %s previous %s and 3 records", rot, newID, oldID)
			}
			if got := sealing(t, admin); got[newID] != 3 || len(got) != 1 {
				t.Fatalf("after rekey the records are sealed by %v, want all 3 by %s", got, newID)
			}
			// The replica holding only the old key keeps serving: it
			// learns the new key from the state.
			if got := access(t, replica, "ruckus"); got != "tok-2" {
				t.Fatalf("replica reads %q", got)
			}
			wh, err := replica.WebhookToken(ctx, "aruba", "alerts")
			if err != nil || wh.Current != "wh-1" {
				t.Fatalf("replica's webhook token = %+v, %v", wh, err)
			}
			// What it writes is sealed under the new key.
			put(t, replica, "aruba", "tok-3")
			if got := sealing(t, admin); got[newID] != 3 || len(got) != 1 {
				t.Fatalf("after the replica's write the records are sealed by %v, want all by %s", got, newID)
			}
			// A process started with the new key alone reads everything.
			fresh := open(t, newKey)
			if got := access(t, fresh, "aruba"); got != "tok-3" {
				t.Fatalf("new-key process reads %q", got)
			}

			// Retiring needs the new key here.
			if _, err := admin.RetireKeys(ctx, 0); err == nil || !strings.Contains(err.Error(), "started with key "+oldID) {
				t.Fatalf("retire from an old-key process: %v, want a refusal naming %s", err, oldID)
			}
			if _, err := fresh.RetireKeys(ctx, time.Hour); err == nil || !strings.Contains(err.Error(), "retry in") {
				t.Fatalf("retire right after the rotation: %v, want to be told to wait", err)
			}
			rot, err = fresh.RetireKeys(ctx, 0)
			if err != nil {
				t.Fatal(err)
			}
			if len(rot.Retired) != 1 || rot.Retired[0] != oldID {
				t.Fatalf("retired %v, want [%s]", rot.Retired, oldID)
			}
			// Running processes that learned the new key keep serving;
			// one started with the old key now is told what to do.
			if got := access(t, replica, "aruba"); got != "tok-3" {
				t.Fatalf("replica after retire reads %q", got)
			}
			late := open(t, oldKey)
			_, err = late.Get(ctx, "aruba")
			if err == nil || !strings.Contains(err.Error(), "sealed under key "+newID) || !strings.Contains(err.Error(), oldID+" was retired") ||
				!strings.Contains(err.Error(), "rekey --new-key") {
				t.Fatalf("old-key process after retire: %v", err)
			}
			// The retired key can never come back.
			if _, err := fresh.Rekey(ctx, oldKey); err == nil || !strings.Contains(err.Error(), "retired before") {
				t.Fatalf("rekey back to the retired key: %v", err)
			}
			if _, err := fresh.Rekey(ctx, newKey); err == nil || !strings.Contains(err.Error(), "already") {
				t.Fatalf("rekey to the same key: %v", err)
			}
			// A replica refreshing its keys stops holding the retired one.
			if err := replica.RefreshKeys(ctx); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestRekeyChangesNothingWhenARecordDoesNotOpen(t *testing.T) {
	ctx := context.Background()
	for name, open := range stores(t) {
		t.Run(name, func(t *testing.T) {
			admin := open(t, key(1))
			put(t, admin, "good", "tok-good")
			put(t, open(t, key(9)), "foreign", "tok-foreign") // sealed under a key admin does not hold
			_, err := admin.Rekey(ctx, key(2))
			if err == nil || !strings.Contains(err.Error(), `"foreign"`) && !strings.Contains(err.Error(), "foreign") {
				t.Fatalf("rekey over an unreadable record: %v, want an error naming it", err)
			}
			ks, err := admin.Keys(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(ks.Entries) != 0 || ks.Sealing[seal.KeyID(key(1))] != 1 || ks.Sealing["?"] != 1 {
				t.Fatalf("after a failed rekey: %+v, want nothing changed", ks)
			}
			if got := access(t, admin, "good"); got != "tok-good" {
				t.Fatalf("reads %q", got)
			}
			if got := access(t, open(t, key(1)), "good"); got != "tok-good" {
				t.Fatalf("a new process reads %q", got)
			}
		})
	}
}

// TestRekeyUnderConcurrentWrites rotates while processes holding the old
// key keep renewing their tokens; afterwards the old key is retired and a
// process with only the new key reads every last write.
func TestRekeyUnderConcurrentWrites(t *testing.T) {
	ctx := context.Background()
	for name, open := range stores(t) {
		t.Run(name, func(t *testing.T) {
			const writers = 2
			admin := open(t, key(1))
			var stop atomic.Bool
			var wg sync.WaitGroup
			last := make([]atomic.Int64, writers)
			errs := make(chan error, writers)
			for w := range writers {
				h := open(t, key(1))
				put(t, h, fmt.Sprintf("p%d", w), "v0")
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := int64(1); !stop.Load(); i++ {
						err := store.WithLease(ctx, h, fmt.Sprintf("p%d", w), "writer", 10*time.Second, func(l *store.Leased) error {
							cur, err := l.Get(ctx)
							if err != nil {
								return err
							}
							return l.Put(ctx, &token.Token{AccessToken: fmt.Sprint("v", i)}, cur.Generation)
						})
						if err != nil && !errors.Is(err, store.ErrConflict) {
							errs <- err
							return
						}
						if err == nil {
							last[w].Store(i)
						}
					}
				}()
			}
			waitWrites := func() {
				base := make([]int64, writers)
				for w := range writers {
					base[w] = last[w].Load()
				}
				for w := range writers {
					for last[w].Load() < base[w]+1 {
						select {
						case err := <-errs:
							t.Fatal(err)
						case <-time.After(time.Millisecond):
						}
					}
				}
			}
			waitWrites()
			if _, err := admin.Rekey(ctx, key(2)); err != nil {
				t.Fatal(err)
			}
			waitWrites()
			if _, err := open(t, key(2)).RetireKeys(ctx, 0); err != nil {
				t.Fatal(err)
			}
			waitWrites()
			stop.Store(true)
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			fresh := open(t, key(2))
			for w := range writers {
				if got, want := access(t, fresh, fmt.Sprintf("p%d", w)), fmt.Sprint("v", last[w].Load()); got != want {
					t.Fatalf("p%d: new-key process reads %s, want the last write %s", w, got, want)
				}
			}
			if got := sealing(t, fresh); got[seal.KeyID(key(2))] != writers || len(got) != 1 {
				t.Fatalf("records sealed by %v, want all %d by the new key", got, writers)
			}
		})
	}
}
