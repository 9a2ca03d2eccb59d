package coarse

import (
	"testing"
	"time"
)

func TestExactWhenNotStarted(t *testing.T) {
	before := time.Now()
	n := Now()
	after := time.Now()
	if n.Before(before.Round(0)) || n.After(after.Round(0)) {
		t.Fatalf("Now() = %v, not between %v and %v", n, before, after)
	}
}

func TestStartsNest(t *testing.T) {
	stop1 := Start()
	stop2 := Start()
	if now.Load() == 0 {
		t.Fatal("the clock does not tick after Start")
	}
	if n := Now(); n.After(time.Now()) {
		t.Fatalf("a ticking Now() = %v is ahead of the time", n)
	}
	stop1()
	stop1() // a second call is a no-op, not a second release
	if now.Load() == 0 {
		t.Fatal("the clock stopped while a Start is still in effect")
	}
	stop2()
	if now.Load() != 0 {
		t.Fatal("the clock ticks after every Start was stopped")
	}
	// Started again, it ticks from a fresh reading.
	before := time.Now().Round(0)
	stop := Start()
	defer stop()
	if Now().Before(before) {
		t.Fatal("a restarted clock shows a time before its start")
	}
}
