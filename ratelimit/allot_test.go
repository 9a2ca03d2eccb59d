package ratelimit

import (
	"math/rand/v2"
	"testing"
	"time"
)

// simHolder follows Share's protocol: it limits itself before it asks to
// give slots up, counts its lease from when it sent the renewal, treats an
// answer later than the renewal timeout as a failure (although the store
// applied it), and calls whenever its share allows.
type simHolder struct {
	name     string
	slots    int
	deadline time.Time
	calls    []time.Time
	cutFrom  time.Time // renewals are lost (a partition) from cutFrom to cutTo
	cutTo    time.Time
	joinAt   time.Time
	leaveAt  time.Time
	nextAsk  time.Time
	inFlight *simAsk
}

type simAsk struct {
	sent, arrive, answer time.Time
	ask                  ShareAsk
	grant                ShareGrant
	applied              bool
}

// TestAllotNeverExceedsTheLimit runs replicas that join, leave, lose the
// store for a while and see renewals delayed past their timeout, and
// checks that the vendor never sees more than N calls in any window, and
// that the limit is shared out again after each change.
func TestAllotNeverExceedsTheLimit(t *testing.T) {
	const (
		n      = 7
		window = 1030 * time.Millisecond
		tick   = 5 * time.Millisecond
		span   = 120 * time.Second
	)
	for seed := range uint64(20) {
		rng := rand.New(rand.NewPCG(seed, 1))
		t0 := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
		var rows []ShareRow
		var hs []*simHolder
		for i := range 2 + rng.IntN(5) {
			h := &simHolder{name: string(rune('a' + i)), joinAt: t0.Add(time.Duration(rng.IntN(20)) * time.Second), leaveAt: t0.Add(span)}
			if rng.IntN(2) == 0 {
				h.cutFrom = t0.Add(time.Duration(10+rng.IntN(80)) * time.Second)
				h.cutTo = h.cutFrom.Add(time.Duration(rng.IntN(15000)) * time.Millisecond)
			}
			if rng.IntN(3) == 0 {
				h.leaveAt = t0.Add(time.Duration(40+rng.IntN(60)) * time.Second)
			}
			hs = append(hs, h)
		}
		var all []time.Time
		for now := t0; now.Before(t0.Add(span)); now = now.Add(tick) {
			for _, h := range hs {
				if now.Before(h.joinAt) {
					continue
				}
				if a := h.inFlight; a != nil {
					if !a.applied && !now.Before(a.arrive) {
						rows, a.grant = Allot(rows, a.ask, now) // the store's clock is now
						a.applied = true
					}
					if a.applied && !now.Before(a.answer) {
						h.inFlight = nil
						if a.answer.Sub(a.sent) <= shareRenewTimeout && a.ask.TTL > 0 {
							h.slots = min(a.grant.Slots, a.grant.Target)
							h.deadline = a.sent.Add(ShareTTL)
						}
					}
				}
				if !now.Before(h.deadline) {
					h.slots = 0
				}
				leaving := !now.Before(h.leaveAt)
				if h.inFlight == nil && !now.Before(h.nextAsk) && !(leaving && h.deadline.IsZero()) {
					ask := ShareAsk{Holder: h.name, Using: h.slots, N: n, Window: window, TTL: ShareTTL}
					if leaving {
						h.slots, h.deadline, ask.Using, ask.TTL = 0, time.Time{}, 0, 0
					}
					a := &simAsk{sent: now, ask: ask}
					// Mostly quick; one in ten slow, some past the timeout.
					slow := 20
					if rng.IntN(10) == 0 {
						slow = 700
					}
					a.arrive = now.Add(time.Duration(rng.IntN(slow)) * time.Millisecond)
					a.answer = a.arrive.Add(time.Duration(rng.IntN(slow)) * time.Millisecond)
					if cut := !now.Before(h.cutFrom) && now.Before(h.cutTo); !cut {
						h.inFlight = a
					}
					h.nextAsk = now.Add(shareRenewEvery)
				}
				// Call as often as the share allows.
				for h.slots > 0 && now.Before(h.deadline) && inWindow(h.calls, now, window) < h.slots {
					h.calls = append(h.calls, now)
					all = append(all, now)
				}
			}
		}
		for i := range all {
			if c := inWindow(all[:i+1], all[i], window); c > n {
				t.Fatalf("seed %d: %d calls in the window ending %s", seed, c, all[i].Sub(t0))
			}
		}
		// Shared out again: in the last 10 s nobody is cut, and every
		// holder still there got its turns.
		tail := t0.Add(span - 10*time.Second)
		total := 0
		for _, h := range hs {
			total += inWindow(h.calls, t0.Add(span), 10*time.Second)
		}
		t.Logf("seed %d: %d holders, %d calls in the last 10 s", seed, len(hs), total)
		if want := int(float64(n) * 9 / window.Seconds()); total < want && countStaying(hs, tail) > 0 {
			t.Errorf("seed %d: %d calls in the last 10 s, want at least %d (the whole limit shared out)", seed, total, want)
		}
	}
}

func countStaying(hs []*simHolder, at time.Time) int {
	c := 0
	for _, h := range hs {
		if h.leaveAt.After(at) {
			c++
		}
	}
	return c
}

// inWindow counts the calls in (end-window, end].
func inWindow(calls []time.Time, end time.Time, window time.Duration) int {
	c := 0
	for i := len(calls) - 1; i >= 0 && calls[i].After(end.Add(-window)); i-- {
		if !calls[i].After(end) {
			c++
		}
	}
	return c
}

// A replica alone takes the whole limit; a second one gets its even part
// once the first gives it up and the given-up slots have cooled a window.
func TestAllotSharesEvenly(t *testing.T) {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	w := time.Second
	ask := func(rows []ShareRow, holder string, using int) ([]ShareRow, ShareGrant) {
		return Allot(rows, ShareAsk{Holder: holder, Using: using, N: 7, Window: w, TTL: ShareTTL}, now)
	}
	rows, g := ask(nil, "a", 0)
	if g.Slots != 7 || g.Target != 7 || g.Members != 1 {
		t.Fatalf("alone: %+v", g)
	}
	rows, g = ask(rows, "b", 0)
	if g.Slots != 0 || g.Target != 3 || g.Members != 2 {
		t.Fatalf("b joins while a holds all: %+v", g)
	}
	rows, g = ask(rows, "a", 7)
	if g.Slots != 7 || g.Target != 4 {
		t.Fatalf("a is told its part: %+v", g)
	}
	rows, g = ask(rows, "a", 4) // a limits itself to 4, then gives 3 up
	if g.Slots != 4 {
		t.Fatalf("a after giving up: %+v", g)
	}
	rows, g = ask(rows, "b", 0)
	if g.Slots != 0 {
		t.Fatalf("b got slots still cooling: %+v", g)
	}
	now = now.Add(w)
	rows, g = ask(rows, "b", 0)
	if g.Slots != 3 {
		t.Fatalf("b after the cooling window: %+v", g)
	}
	// b leaves; its slots are a's a window later.
	rows, _ = Allot(rows, ShareAsk{Holder: "b", N: 7, Window: w}, now)
	rows, g = ask(rows, "a", 4)
	if g.Slots != 4 || g.Target != 7 || g.Members != 1 {
		t.Fatalf("a right after b left: %+v", g)
	}
	now = now.Add(w)
	rows, g = ask(rows, "a", 4)
	if g.Slots != 7 {
		t.Fatalf("a a window after b left: %+v", g)
	}
	// a lease that ran out frees its slots a window after it ended.
	now = now.Add(ShareTTL)
	rows, g = ask(rows, "c", 0)
	if g.Slots != 0 || g.Members != 1 {
		t.Fatalf("c while a's expired slots cool: %+v", g)
	}
	now = now.Add(w)
	_, g = ask(rows, "c", 0)
	if g.Slots != 7 {
		t.Fatalf("c after a's lease ran out: %+v", g)
	}
}
