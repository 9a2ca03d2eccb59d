package postgres

import (
	"context"
	"errors"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/internal/pgtest"
	"github.com/tokenbroker/tokenbroker/ratelimit"
	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/seal"
	"github.com/tokenbroker/tokenbroker/token"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Stop()
	os.Exit(code)
}

func sealer(t *testing.T) *seal.Sealer {
	s, err := seal.New(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func open(t *testing.T, dsn string) *DB {
	t.Helper()
	d, err := Open(context.Background(), dsn, sealer(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestConcurrentReplicasMigrateOnce(t *testing.T) {
	dsn := pgtest.Start(t).Database(t)
	var wg sync.WaitGroup
	errs := make(chan error, 6)
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := Open(context.Background(), dsn, sealer(t))
			if err == nil {
				d.Close()
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("a replica failed to start: %v", err)
		}
	}
	d := open(t, dsn)
	var v int
	d.pool.QueryRow(context.Background(), `SELECT max(version) FROM tokenbroker_schema`).Scan(&v)
	if v != len(migrations) {
		t.Errorf("schema %d, want %d", v, len(migrations))
	}
}

func TestPutGetConflictAndFence(t *testing.T) {
	d := open(t, pgtest.Start(t).Database(t))
	ctx := context.Background()
	tok := &token.Token{AccessToken: "at-secret", RefreshToken: "rt-secret", Expiry: time.Now().Add(time.Hour).Round(time.Second), Grant: "refresh_token"}
	if err := leasedPut(ctx, d, "p", tok, 0); err != nil {
		t.Fatal(err)
	}
	got, err := d.Get(ctx, "p")
	if err != nil || got.AccessToken != "at-secret" || got.RefreshToken != "rt-secret" || got.Generation != 1 || !got.Expiry.Equal(tok.Expiry) {
		t.Fatalf("got %+v %v", got, err)
	}
	if err := leasedPut(ctx, d, "p", tok, 0); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("stale put: %v, want ErrConflict", err)
	}
	a, err := d.Acquire(ctx, "p", "a", time.Minute)
	if err != nil || a.Fence != 3 { // after the two Puts' leases
		t.Fatalf("acquire: %+v %v", a, err)
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := d.Acquire(short, "p", "b", time.Minute); err == nil {
		t.Fatal("b acquired a held lease")
	}
	d.Release(ctx, a)
	b, err := d.Acquire(ctx, "p", "b", time.Minute)
	if err != nil || b.Fence != a.Fence+1 {
		t.Fatalf("b: %+v %v", b, err)
	}
	if err := d.Put(ctx, "p", tok, 1, a); !errors.Is(err, store.ErrFenced) {
		t.Fatalf("put with a superseded lease: %v, want ErrFenced", err)
	}
	if err := d.Put(ctx, "p", tok, 1, b); err != nil {
		t.Fatalf("put with the current lease: %v", err)
	}
	var raw []byte
	d.pool.QueryRow(ctx, `SELECT access || refresh FROM tokens WHERE profile = 'p'`).Scan(&raw)
	if len(raw) == 0 || string(raw) == "at-secret" || containsAny(raw, "at-secret", "rt-secret") {
		t.Error("tokens are stored in plain text")
	}
}

func containsAny(b []byte, subs ...string) bool {
	for _, s := range subs {
		for i := 0; i+len(s) <= len(b); i++ {
			if string(b[i:i+len(s)]) == s {
				return true
			}
		}
	}
	return false
}

// TestReserveSharedAcrossReplicas: three replicas reserving 7-per-second
// slots at once never put more than 7 in any window.
func TestReserveSharedAcrossReplicas(t *testing.T) {
	dsn := pgtest.Start(t).Database(t)
	replicas := []*DB{open(t, dsn), open(t, dsn), open(t, dsn)}
	const n, window = 7, 1025 * time.Millisecond
	var mu sync.Mutex
	var slots []time.Time
	var wg sync.WaitGroup
	start := time.Now()
	for i := range 60 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d, err := replicas[i%3].Reserve(context.Background(), "aruba|cust", n, window, time.Minute)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			slots = append(slots, start.Add(d)) // approximately: reservations happen within milliseconds
			mu.Unlock()
		}()
	}
	wg.Wait()
	var stored []time.Time
	rows, _ := replicas[0].pool.Query(context.Background(), `SELECT slot FROM rate_slots WHERE key = 'aruba|cust' ORDER BY slot`)
	for rows.Next() {
		var s time.Time
		rows.Scan(&s)
		stored = append(stored, s)
	}
	rows.Close()
	// A reservation that came back too late to use is given up and taken
	// again, so there may be a few more slots than calls.
	if len(stored) < 60 {
		t.Fatalf("%d slots stored, want at least 60", len(stored))
	}
	sort.Slice(stored, func(i, j int) bool { return stored[i].Before(stored[j]) })
	for i := n; i < len(stored); i++ {
		if gap := stored[i].Sub(stored[i-n]); gap < window {
			t.Fatalf("slots %d and %d are %s apart: more than %d in a window", i-n, i, gap, n)
		}
	}
	for i := 1; i < len(stored); i++ {
		if gap := stored[i].Sub(stored[i-1]); gap < window/n-time.Microsecond {
			t.Fatalf("slots %d and %d are %s apart: not paced", i-1, i, gap)
		}
	}
	if _, err := replicas[1].Reserve(context.Background(), "aruba|cust", n, window, time.Second); err == nil {
		t.Error("a reservation past the maximum wait was granted")
	} else {
		var r *ratelimit.Refused
		if !errors.As(err, &r) || r.RetryAfter < 5*time.Second {
			t.Errorf("refusal %v, want *ratelimit.Refused with the wait", err)
		}
	}
}

func TestWatchHearsOtherReplicas(t *testing.T) {
	dsn := pgtest.Start(t).Database(t)
	a, b := open(t, dsn), open(t, dsn)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	heard := make(chan string, 16)
	a.Watch(ctx, func(p string) { heard <- p })
	if p := <-heard; p != "" {
		t.Fatalf("first notice %q, want the resync \"\"", p)
	}
	if err := leasedPut(ctx, b, "ringcentral", &token.Token{AccessToken: "x"}, 0); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-heard:
		if p != "ringcentral" {
			t.Errorf("heard %q", p)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no notification")
	}
}

func TestQuotaShared(t *testing.T) {
	dsn := pgtest.Start(t).Database(t)
	a, b := open(t, dsn), open(t, dsn)
	ctx := context.Background()
	reset := time.Now().Add(time.Hour).Round(time.Millisecond)
	if err := a.SpendQuota(ctx, "k", reset); err != nil {
		t.Fatal(err)
	}
	if until, err := b.QuotaSpent(ctx, "k"); err != nil || !until.Equal(reset) {
		t.Fatalf("other replica sees %v %v, want %v", until, err, reset)
	}
	if until, _ := b.QuotaSpent(ctx, "other"); !until.IsZero() {
		t.Error("an unspent quota reported spent")
	}
}

func TestAuditAndProfiles(t *testing.T) {
	d := open(t, pgtest.Start(t).Database(t))
	ctx := context.Background()
	leasedPut(ctx, d, "b", &token.Token{AccessToken: "x"}, 0)
	leasedPut(ctx, d, "a", &token.Token{AccessToken: "y"}, 0)
	if ps, _ := d.Profiles(ctx); len(ps) != 2 || ps[0] != "a" {
		t.Errorf("profiles %v", ps)
	}
	for i, p := range []string{"a", "b", "a"} {
		d.Append(ctx, store.Event{Time: time.Now(), Profile: p, Action: "refresh", Outcome: "ok", PID: i})
	}
	ev, err := d.Events(ctx, "a", 10)
	if err != nil || len(ev) != 2 || ev[0].PID != 2 {
		t.Errorf("events %+v %v", ev, err)
	}
}

// A hold (a vendor's Retry-After) is shared by every replica and only ever
// lengthened: a replica that saw a shorter Retry-After later does not
// shorten another's.
func TestHoldsAreSharedAndKeepTheLater(t *testing.T) {
	dsn := pgtest.Start(t).Database(t)
	a, b := open(t, dsn), open(t, dsn)
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
	if until, _ := b.HoldUntil(ctx, "other"); !until.IsZero() {
		t.Errorf("another profile is held until %v", until)
	}
}

// A token is written only under the profile's lease.
func TestPutWithoutTheLeaseIsRefused(t *testing.T) {
	d := open(t, pgtest.Start(t).Database(t))
	ctx := context.Background()
	if err := d.Put(ctx, "p", &token.Token{AccessToken: "x"}, 0, nil); !errors.Is(err, store.ErrNoLease) {
		t.Fatalf("Put without a lease: %v, want ErrNoLease", err)
	}
	if got, err := d.Get(ctx, "p"); err != nil || got != nil {
		t.Fatalf("something was written: %v, %v", got, err)
	}
}

// A network that swallows packets (a blackhole: the connections stay open,
// no byte moves) is noticed in seconds: every call fails as the state
// being unavailable instead of hanging, and works again once the network
// does.
func TestBlackholeFailsCallsInsteadOfHanging(t *testing.T) {
	relay, dsn := pgtest.NewRelay(t, pgtest.Start(t).Database(t))
	d := open(t, dsn)
	ctx := context.Background()
	if err := leasedPut(ctx, d, "p", &token.Token{AccessToken: "x"}, 0); err != nil {
		t.Fatal(err)
	}
	relay.Blackhole()
	done := map[string]chan error{}
	for name, call := range map[string]func() error{
		"get":     func() error { _, err := d.Get(ctx, "p"); return err },
		"acquire": func() error { _, err := d.tryAcquire(ctx, "p", "o", time.Minute); return err },
		"reserve": func() error { _, err := d.Reserve(ctx, "k", 7, time.Second, time.Second); return err },
		"events":  func() error { _, err := d.Events(ctx, "p", 10); return err },
	} {
		done[name] = make(chan error, 1)
		go func() { done[name] <- call() }()
	}
	guard := time.After(30 * time.Second) // a hang guard, not a speed test
	for name, ch := range done {
		select {
		case err := <-ch:
			if err == nil {
				t.Errorf("%s through a blackhole: no error", name)
			}
		case <-guard:
			t.Fatalf("%s hung through a blackhole", name)
		}
	}
	relay.Restore()
	var err error
	for range 10 { // the pool may first hand out a connection broken by the timeout
		if _, err = d.Get(ctx, "p"); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("after the network came back: %v", err)
	}
}

// Two replicas share an account's limit through the database: the first
// takes it all, the second its even part once the first has given it up
// and it has cooled; a reservation by a release without shares turns
// shares off (Legacy) until it is a window old.
func TestSharesThroughTheDatabase(t *testing.T) {
	dsn := pgtest.Start(t).Database(t)
	a, b := open(t, dsn), open(t, dsn)
	ctx := context.Background()
	const w = 200 * time.Millisecond
	ask := func(d *DB, holder string, using int) ratelimit.ShareGrant {
		t.Helper()
		g, err := d.LeaseShares(ctx, []ratelimit.ShareAsk{
			{Account: "acct", Holder: holder, Using: using, N: 7, Window: w, TTL: ratelimit.ShareTTL},
			{Account: "other", Holder: holder, Using: 1, N: 1, Window: w, TTL: ratelimit.ShareTTL},
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(g) != 2 || g[1].Legacy {
			t.Fatalf("grants: %+v", g)
		}
		return g[0]
	}
	if g := ask(a, "a", 0); g.Slots != 7 || g.Members != 1 {
		t.Fatalf("a alone: %+v", g)
	}
	if g := ask(b, "b", 0); g.Slots != 0 || g.Target != 3 || g.Members != 2 {
		t.Fatalf("b joins: %+v", g)
	}
	if g := ask(a, "a", 4); g.Slots != 4 || g.Target != 4 {
		t.Fatalf("a gives 3 up: %+v", g)
	}
	time.Sleep(w) // the given-up slots cool a window
	if g := ask(b, "b", 0); g.Slots != 3 {
		t.Fatalf("b after the cooling: %+v", g)
	}
	if _, err := a.pool.Exec(ctx, `INSERT INTO rate_slots (key, slot) VALUES ('acct', clock_timestamp())`); err != nil {
		t.Fatal(err)
	}
	if g := ask(a, "a", 4); !g.Legacy || g.Target != 0 {
		t.Fatalf("beside an older release: %+v", g)
	}
	if _, err := a.Reserve(ctx, "acct", 7, w, time.Minute); err != nil {
		t.Fatal(err)
	}
	time.Sleep(w)
	if g := ask(a, "a", 0); g.Legacy {
		t.Fatalf("this release's own reservations taken for an older release's: %+v", g)
	}
}

// A tenant list is replaced whole and read back by every replica.
func TestTenantListsReplacedWhole(t *testing.T) {
	dsn := pgtest.Start(t).Database(t)
	a, b := open(t, dsn), open(t, dsn)
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

// Tenant call counts add up across replicas and keep the later last call.
func TestTenantCallsAddUp(t *testing.T) {
	dsn := pgtest.Start(t).Database(t)
	a, b := open(t, dsn), open(t, dsn)
	ctx := context.Background()
	t1 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	a.AddTenantCalls(ctx, "msp", map[string]store.TenantCall{"acme": {Calls: 3, Last: t1.Add(time.Minute)}})
	b.AddTenantCalls(ctx, "msp", map[string]store.TenantCall{"acme": {Calls: 2, Last: t1}, "globex": {Calls: 1, Last: t1}})
	got, err := a.TenantCalls(ctx, "msp")
	if err != nil || got["acme"].Calls != 5 || !got["acme"].Last.Equal(t1.Add(time.Minute)) || got["globex"].Calls != 1 {
		t.Fatalf("counts %+v %v", got, err)
	}
}
