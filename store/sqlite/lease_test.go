package sqlite

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/store"
)

func TestLeaseExclusiveUntilReleased(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	da := openDB(t, path, testSealer(t, 1))
	db := openDB(t, path, testSealer(t, 1)) // B is another process
	a, b := store.NewOwner(), store.NewOwner()

	start := time.Now()
	la, err := da.Acquire(ctx, "p", a, time.Hour)
	if err != nil {
		t.Fatalf("Acquire by A: %v", err)
	}
	if la.Fence != 1 || la.Owner != a || la.Profile != "p" {
		t.Errorf("A's lease: got %+v, want fence 1, owner %q, profile p", la, a)
	}
	if d := la.Expires.Sub(start); d < time.Hour-time.Second || d > time.Hour+time.Second {
		t.Errorf("A's lease expires %v after the call, want about 1h", d)
	}

	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	lb, err := db.Acquire(short, "p", b, time.Hour)
	cancel()
	if err == nil {
		t.Fatalf("Acquire by B while A holds the lease: got %+v, want an error", lb)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Acquire by B: got %v, want it to wrap context.DeadlineExceeded", err)
	}

	// Another profile is independent.
	if lo, err := db.Acquire(ctx, "other", b, time.Hour); err != nil || lo.Fence != 1 {
		t.Errorf("Acquire of another profile: got %+v, %v, want fence 1", lo, err)
	}

	if err := da.Release(ctx, la); err != nil {
		t.Fatalf("Release by A: %v", err)
	}
	within, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	lb, err = db.Acquire(within, "p", b, time.Hour)
	if err != nil {
		t.Fatalf("Acquire by B after A released: %v", err)
	}
	if lb.Fence != 2 || lb.Owner != b {
		t.Errorf("B's lease: got %+v, want fence 2, owner %q", lb, b)
	}
}

func TestLeaseExpiresAndIsTakenOver(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	da := openDB(t, path, testSealer(t, 1))
	db := openDB(t, path, testSealer(t, 1))
	a, b := store.NewOwner(), store.NewOwner()

	la, err := da.Acquire(ctx, "p", a, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	// This waits on the store's own expiry of A's 50ms lease.
	within, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	lb, err := db.Acquire(within, "p", b, time.Hour)
	if err != nil {
		t.Fatalf("Acquire by B after A's lease expired: %v", err)
	}
	if lb.Fence <= la.Fence || lb.Owner != b {
		t.Errorf("B's lease: got %+v, want owner %q and a fence above A's %d", lb, b, la.Fence)
	}
}

func TestPutWithSupersededLeaseIsFenced(t *testing.T) {
	ctx := context.Background()
	d := openDB(t, filepath.Join(t.TempDir(), "state.db"), testSealer(t, 1))
	clk := &clock{now: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	d.now = clk.Now
	a, b := store.NewOwner(), store.NewOwner()

	la, err := d.Acquire(ctx, "p", a, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	first := fullToken()
	if err := d.Put(ctx, "p", first, 0, la); err != nil {
		t.Fatalf("Put by the lease holder: %v", err)
	}

	clk.Add(2 * time.Minute) // A stalls past its lease
	lb, err := d.tryAcquire(ctx, "p", b, time.Minute)
	if err != nil || lb == nil {
		t.Fatalf("tryAcquire by B after A's lease expired: got %+v, %v, want a lease", lb, err)
	}
	if lb.Fence != la.Fence+1 {
		t.Errorf("B's fence: got %d, want %d", lb.Fence, la.Fence+1)
	}

	late := first.Clone()
	late.AccessToken = "written-by-a-stale-holder"
	if err := d.Put(ctx, "p", late, 1, la); !errors.Is(err, store.ErrFenced) {
		t.Errorf("Put with a superseded lease: got %v, want ErrFenced", err)
	}
	if got, err := d.Get(ctx, "p"); err != nil || !sameToken(got, first) {
		t.Errorf("after the fenced Put: got %+v, %v, want the first token unchanged", got, err)
	}

	// A forged lease naming B's fence but A as owner is fenced too.
	forged := *la
	forged.Fence = lb.Fence
	if err := d.Put(ctx, "p", late, 1, &forged); !errors.Is(err, store.ErrFenced) {
		t.Errorf("Put with the right fence but the wrong owner: got %v, want ErrFenced", err)
	}

	// The stale holder's Release does not free B's lease.
	if err := d.Release(ctx, la); err != nil {
		t.Fatal(err)
	}
	if lc, err := d.tryAcquire(ctx, "p", store.NewOwner(), time.Minute); err != nil || lc != nil {
		t.Errorf("tryAcquire by C after A's stale Release: got %+v, %v, want none (B still holds it)", lc, err)
	}

	next := first.Clone()
	next.AccessToken = "written-by-b"
	if err := d.Put(ctx, "p", next, 1, lb); err != nil {
		t.Errorf("Put by the current holder: %v", err)
	}
	if got, err := d.Get(ctx, "p"); err != nil || got.AccessToken != "written-by-b" || got.Generation != 2 {
		t.Errorf("after B's Put: got %+v, %v, want B's token at generation 2", got, err)
	}
}

func TestPutWithLeaseOfUnleasedProfileIsFenced(t *testing.T) {
	ctx := context.Background()
	d := openDB(t, filepath.Join(t.TempDir(), "state.db"), testSealer(t, 1))
	l, err := d.Acquire(ctx, "a", "owner", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	wrong := *l
	wrong.Profile = "b"
	if err := d.Put(ctx, "b", fullToken(), 0, &wrong); !errors.Is(err, store.ErrFenced) {
		t.Errorf("Put with a lease on a profile that has none: got %v, want ErrFenced", err)
	}
	if got, err := d.Get(ctx, "b"); got != nil || err != nil {
		t.Errorf("after the fenced Put: got %+v, %v, want nil, nil", got, err)
	}
}

func TestFencesGrowWithEveryGrant(t *testing.T) {
	ctx := context.Background()
	d := openDB(t, filepath.Join(t.TempDir(), "state.db"), testSealer(t, 1))
	owner := store.NewOwner()
	var last int64
	for i := range 5 {
		l, err := d.Acquire(ctx, "p", owner, time.Hour) // the holder may take it again
		if err != nil {
			t.Fatal(err)
		}
		if l.Fence <= last {
			t.Errorf("grant %d: fence %d, want more than %d", i, l.Fence, last)
		}
		last = l.Fence
		if i%2 == 0 {
			if err := d.Release(ctx, l); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := d.Release(ctx, nil); err != nil {
		t.Errorf("Release(nil): %v", err)
	}
}

func TestLeaseOfDeadOwnerIsTakenAtOnce(t *testing.T) {
	ctx := context.Background()
	d := openDB(t, filepath.Join(t.TempDir(), "state.db"), testSealer(t, 1))
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sleep", "0")
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot start sleep: %v", err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	dead := host + "/" + strconv.Itoa(cmd.Process.Pid) + "/x"
	if !store.OwnerDead(dead) {
		t.Fatalf("OwnerDead(%q) = false, want true", dead)
	}

	ld, err := d.Acquire(ctx, "p", dead, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	l, err := d.tryAcquire(ctx, "p", store.NewOwner(), time.Hour)
	if err != nil || l == nil {
		t.Fatalf("first try to take the hour-long lease of a dead process: got %+v, %v, want a lease", l, err)
	}
	if l.Fence != ld.Fence+1 {
		t.Errorf("fence: got %d, want %d", l.Fence, ld.Fence+1)
	}

	// A holder that may be alive (another host) is waited for.
	if _, err := d.Acquire(ctx, "q", "some-other-host/"+strconv.Itoa(cmd.Process.Pid)+"/x", time.Hour); err != nil {
		t.Fatal(err)
	}
	if l, err := d.tryAcquire(ctx, "q", store.NewOwner(), time.Hour); err != nil || l != nil {
		t.Errorf("try to take the lease of another host's process: got %+v, %v, want none", l, err)
	}
}
