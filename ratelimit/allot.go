package ratelimit

import (
	"slices"
	"time"
)

// An account's limit of N calls per window is split between the replicas
// that call it as leased slots: a holder of k slots makes at most k calls
// in any window. The store keeps one ShareRow per holder and runs Allot
// under a lock on the account, with its own clock as now. Two rules make
// the split safe whatever the holders know of each other:
//
//   - a slot counts as in use until a window after its holder stopped
//     using it: after the lease ran out (the holder stops at its own
//     deadline, which is never later than Expires), or after it was given
//     up (the holder stops using it before it asks to give it up);
//   - a holder is granted only slots that are not in use.
//
// So a slot is used by one holder at a time, with a window between two
// holders, and the vendor sees at most N calls in any window. See
// docs/design/2026-12-01-shares.md.

// ShareRow is one holder's part of an account's limit, as the store keeps it.
type ShareRow struct {
	Holder       string
	Slots        int       // calls per window the holder may make
	Expires      time.Time // end of the holder's lease
	Cooling      int       // slots given up, in use until CoolingUntil + window
	CoolingUntil time.Time
}

// ShareAsk is one holder's renewal of its lease.
type ShareAsk struct {
	Account string
	Holder  string
	// Using is the number of slots the holder limits itself to from now
	// on (it already does): slots above it are given up.
	Using  int
	N      int           // the account's calls per window
	Window time.Duration // the window, margin included
	TTL    time.Duration // the lease to grant; 0 leaves the account
}

// ShareGrant is what a renewal gives the holder.
type ShareGrant struct {
	Slots   int // the slots it holds now, for the lease's life
	Target  int // its even part of N: it uses no more than this
	Members int // holders with a lease, itself included
	// Legacy is set by the store when a release older than shares still
	// reserves this account's calls one by one: the holder does so too,
	// holding no slots, so that both count every call.
	Legacy bool
}

// inUse is how many of the row's slots count against the limit at now.
func (r *ShareRow) inUse(now time.Time, window time.Duration) int {
	n := 0
	if r.Expires.Add(window).After(now) {
		n += r.Slots
	}
	if r.CoolingUntil.Add(window).After(now) {
		n += r.Cooling
	}
	return n
}

// giveUp moves k slots that the holder stopped using at `at` to cooling.
func (r *ShareRow) giveUp(k int, at, now time.Time, window time.Duration) {
	if k <= 0 {
		return
	}
	if r.Cooling > 0 && r.CoolingUntil.Add(window).After(now) {
		r.Cooling += k
		r.CoolingUntil = maxTime(r.CoolingUntil, at)
	} else {
		r.Cooling, r.CoolingUntil = k, at
	}
	r.Slots -= k
}

// Allot renews ask's lease among rows (the account's, in any order) at
// now, and returns the rows to store in their place (rows nobody needs any
// more are dropped) and the grant.
func Allot(rows []ShareRow, ask ShareAsk, now time.Time) ([]ShareRow, ShareGrant) {
	w := ask.Window
	me := ShareRow{Holder: ask.Holder}
	out := make([]ShareRow, 0, len(rows)+1)
	var live []string
	used := 0
	for _, r := range rows {
		if r.Holder == ask.Holder {
			me = r
			continue
		}
		if n := r.inUse(now, w); n > 0 || r.Expires.After(now) {
			used += n
			out = append(out, r)
		}
		if r.Expires.After(now) {
			live = append(live, r.Holder)
		}
	}
	if !me.Expires.After(now) {
		// The lease ran out: the holder stopped at its own deadline.
		me.giveUp(me.Slots, me.Expires, now, w)
	}
	me.giveUp(me.Slots-max(ask.Using, 0), now, now, w)
	if ask.TTL <= 0 {
		me.Expires = now
		if me.inUse(now, w) > 0 {
			out = append(out, me)
		}
		return out, ShareGrant{Members: len(live)}
	}
	live = append(live, ask.Holder)
	slices.Sort(live)
	rank := slices.Index(live, ask.Holder)
	target := ask.N / len(live)
	if rank < ask.N%len(live) {
		target++
	}
	if free := ask.N - used - me.inUse(now, w); me.Slots < target && free > 0 {
		me.Slots += min(target-me.Slots, free)
	}
	me.Expires = now.Add(ask.TTL)
	out = append(out, me)
	return out, ShareGrant{Slots: me.Slots, Target: target, Members: len(live)}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
