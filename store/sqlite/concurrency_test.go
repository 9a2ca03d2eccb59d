package sqlite

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/token"
)

// TestConcurrentHandlesSerialiseThroughLeases has 8 goroutines, each with its
// own *DB on one file as separate processes would have, increment a counter
// kept in the token under the profile's lease.
func TestConcurrentHandlesSerialiseThroughLeases(t *testing.T) {
	const workers, rounds = 8, 25
	path := filepath.Join(t.TempDir(), "state.db")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// The file is made first: a fresh file opened by several processes at
	// once can fail, see TestKnownBugConcurrentFirstOpen.
	first, err := Open(path, testSealer(t, 1))
	if err != nil {
		t.Fatal(err)
	}
	first.Close()

	var (
		mu   sync.Mutex
		errs []error
	)
	fail := func(err error) {
		mu.Lock()
		defer mu.Unlock()
		errs = append(errs, err)
	}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			d, err := Open(path, testSealer(t, 1)) // every worker opens the file at once
			if err != nil {
				fail(fmt.Errorf("worker %d: Open: %w", w, err))
				return
			}
			defer d.Close()
			owner := store.NewOwner()
			for r := range rounds {
				if err := increment(ctx, d, owner); err != nil {
					fail(fmt.Errorf("worker %d round %d: %w", w, r, err))
					return
				}
			}
		}()
	}
	close(start)
	wg.Wait()

	for _, err := range errs {
		if strings.Contains(err.Error(), "database is locked") {
			t.Errorf("got a locking error, want SQLite to wait for the lock: %v", err)
		} else {
			t.Error(err)
		}
	}

	d := openDB(t, path, testSealer(t, 1))
	got, err := d.Get(context.Background(), "shared")
	if err != nil {
		t.Fatal(err)
	}
	if got == nil {
		t.Fatal("no token stored")
	}
	if want := int64(workers * rounds); got.Generation != want {
		t.Errorf("generation: got %d, want %d", got.Generation, want)
	}
	if want := fmt.Sprintf("count-%d", workers*rounds); got.AccessToken != want {
		t.Errorf("counter: got %q, want %q (lost updates)", got.AccessToken, want)
	}
	if n, _ := got.Extra["n"].(float64); n != workers*rounds {
		t.Errorf("Extra counter: got %v, want %d", got.Extra["n"], workers*rounds)
	}
}

func increment(ctx context.Context, d *DB, owner string) error {
	l, err := d.Acquire(ctx, "shared", owner, 30*time.Second)
	if err != nil {
		return fmt.Errorf("Acquire: %w", err)
	}
	defer d.Release(context.Background(), l)
	cur, err := d.Get(ctx, "shared")
	if err != nil {
		return fmt.Errorf("Get: %w", err)
	}
	next := &token.Token{AccessToken: "count-1", Grant: "test", Extra: map[string]any{"n": 1.0}}
	var gen int64
	if cur != nil {
		var n int
		if _, err := fmt.Sscanf(cur.AccessToken, "count-%d", &n); err != nil {
			return fmt.Errorf("stored counter %q: %w", cur.AccessToken, err)
		}
		next.AccessToken = fmt.Sprintf("count-%d", n+1)
		next.Extra["n"] = cur.Extra["n"].(float64) + 1
		gen = cur.Generation
	}
	if err := d.Put(ctx, "shared", next, gen, l); err != nil {
		return fmt.Errorf("Put: %w", err)
	}
	if err := d.Release(ctx, l); err != nil {
		return fmt.Errorf("Release: %w", err)
	}
	return nil
}

// Opening a current state and reading a token take no write lock: a CLI
// run is not held up by a writer (serve renewing, another CLI migrating).
func TestOpenAndGetWhileAWriterHoldsTheLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	s := testSealer(t, 1)
	first := openDB(t, path, s)
	tok := &token.Token{AccessToken: accessSecret, TokenType: "Bearer"}
	l, err := first.Acquire(context.Background(), "p", store.NewOwner(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Put(context.Background(), "p", tok, 0, l); err != nil {
		t.Fatal(err)
	}
	first.Release(context.Background(), l)
	raw := rawDB(t, path)
	conn, err := raw.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	defer conn.ExecContext(context.Background(), "ROLLBACK")
	second := openDB(t, path, s)
	got, err := second.Get(context.Background(), "p")
	if err != nil || got == nil || got.AccessToken != accessSecret {
		t.Fatalf("Get while locked: %v, %v", got, err)
	}
}

var _ store.Holds = (*DB)(nil)

// A hold (a vendor's Retry-After) is seen by every process on the state and
// only ever lengthened.
func TestHoldsAreSharedAndKeepTheLater(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	a, b := openDB(t, path, testSealer(t, 1)), openDB(t, path, testSealer(t, 1))
	ctx := context.Background()
	if until, err := a.HoldUntil(ctx, "rc"); err != nil || !until.IsZero() {
		t.Fatalf("no hold yet: %v, %v", until, err)
	}
	later := time.Date(2026, 12, 1, 9, 1, 0, 0, time.UTC)
	if err := a.SetHold(ctx, "rc", later); err != nil {
		t.Fatal(err)
	}
	if err := b.SetHold(ctx, "rc", later.Add(-30*time.Second)); err != nil {
		t.Fatal(err)
	}
	if until, err := b.HoldUntil(ctx, "rc"); err != nil || !until.Equal(later) {
		t.Fatalf("hold %v (%v), want %v", until, err, later)
	}
}

// A token is written only under the profile's lease: Put without one is
// refused and writes nothing.
func TestPutWithoutTheLeaseIsRefused(t *testing.T) {
	d := openDB(t, filepath.Join(t.TempDir(), "state.db"), testSealer(t, 1))
	ctx := context.Background()
	if err := d.Put(ctx, "p", &token.Token{AccessToken: "x"}, 0, nil); !errors.Is(err, store.ErrNoLease) {
		t.Fatalf("Put without a lease: %v, want ErrNoLease", err)
	}
	if got, err := d.Get(ctx, "p"); err != nil || got != nil {
		t.Fatalf("something was written: %v, %v", got, err)
	}
}

var _ store.TenantLists = (*DB)(nil)

// A tenant list is replaced whole and read back by every process.
func TestTenantListsReplacedWhole(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	a, b := openDB(t, path, testSealer(t, 1)), openDB(t, path, testSealer(t, 1))
	ctx := context.Background()
	if list, at, err := a.TenantList(ctx, "msp"); err != nil || list != nil || !at.IsZero() {
		t.Fatalf("none yet: %q %v %v", list, at, err)
	}
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	for _, l := range []string{`[{"id":"a"},{"id":"b"}]`, `[{"id":"c"}]`} {
		if err := a.PutTenantList(ctx, "msp", []byte(l), at); err != nil {
			t.Fatal(err)
		}
		if got, gotAt, err := b.TenantList(ctx, "msp"); err != nil || string(got) != l || !gotAt.Equal(at) {
			t.Fatalf("read back %q at %v (%v), want %q", got, gotAt, err, l)
		}
		at = at.Add(time.Hour)
	}
}

var _ store.TenantCalls = (*DB)(nil)

// Tenant call counts add up across processes and keep the later last call.
func TestTenantCallsAddUp(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	a, b := openDB(t, path, testSealer(t, 1)), openDB(t, path, testSealer(t, 1))
	ctx := context.Background()
	t1 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	a.AddTenantCalls(ctx, "msp", map[string]store.TenantCall{"acme": {Calls: 3, Last: t1.Add(time.Minute)}})
	b.AddTenantCalls(ctx, "msp", map[string]store.TenantCall{"acme": {Calls: 2, Last: t1}, "globex": {Calls: 1, Last: t1}})
	got, err := a.TenantCalls(ctx, "msp")
	if err != nil || got["acme"].Calls != 5 || !got["acme"].Last.Equal(t1.Add(time.Minute)) || got["globex"].Calls != 1 {
		t.Fatalf("counts %+v %v", got, err)
	}
}
