package sqlite

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/store"
)

func TestAuditEvents(t *testing.T) {
	ctx := context.Background()
	d := openDB(t, filepath.Join(t.TempDir(), "state.db"), testSealer(t, 1))

	if got, err := d.Events(ctx, "", 10); err != nil || len(got) != 0 {
		t.Fatalf("Events of an empty log: got %+v, %v, want none", got, err)
	}

	base := time.Date(2025, 6, 7, 8, 9, 10, 123_000_000, time.UTC)
	var all []store.Event // in the order appended
	for i := range 7 {
		profile := "alpha"
		if i%3 == 1 {
			profile = "beta"
		}
		e := store.Event{
			Time:       base.Add(time.Duration(i) * time.Second),
			Profile:    profile,
			Action:     []string{"obtain", "refresh", "revoke"}[i%3],
			Grant:      fmt.Sprintf("grant-%d", i),
			Outcome:    []string{"ok", "failed"}[i%2],
			ErrorClass: fmt.Sprintf("class-%d", i),
			Error:      fmt.Sprintf("error text %d", i),
			PID:        1000 + i,
		}
		if err := d.Append(ctx, e); err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
		all = append(all, e)
	}
	newestFirst := func(profile string) []store.Event {
		var out []store.Event
		for i := len(all) - 1; i >= 0; i-- {
			if profile == "" || all[i].Profile == profile {
				out = append(out, all[i])
			}
		}
		return out
	}

	for _, c := range []struct {
		profile string
		limit   int
		want    []store.Event
	}{
		{"alpha", 100, newestFirst("alpha")},
		{"beta", 100, newestFirst("beta")},
		{"", 100, newestFirst("")},
		{"", 3, newestFirst("")[:3]},
		{"alpha", 2, newestFirst("alpha")[:2]},
		{"gamma", 100, nil},
	} {
		got, err := d.Events(ctx, c.profile, c.limit)
		if err != nil {
			t.Fatalf("Events(%q, %d): %v", c.profile, c.limit, err)
		}
		if len(got) != len(c.want) {
			t.Errorf("Events(%q, %d): got %d events, want %d: %+v", c.profile, c.limit, len(got), len(c.want), got)
			continue
		}
		for i := range got {
			if !sameEvent(got[i], c.want[i]) {
				t.Errorf("Events(%q, %d)[%d]:\n got %+v\nwant %+v", c.profile, c.limit, i, got[i], c.want[i])
			}
		}
	}
	if got := len(newestFirst("alpha")) + len(newestFirst("beta")); got != len(all) {
		t.Fatalf("test data: %d events in the two profiles, want %d", got, len(all))
	}
}

func TestAuditEventsSharedBetweenProcesses(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	a := openDB(t, path, testSealer(t, 1))
	b := openDB(t, path, testSealer(t, 1))
	if err := a.Append(ctx, store.Event{Time: time.Now(), Profile: "p", Action: "obtain", Outcome: "ok", PID: 1}); err != nil {
		t.Fatal(err)
	}
	got, err := b.Events(ctx, "p", 10)
	if err != nil || len(got) != 1 || got[0].PID != 1 {
		t.Errorf("Events through another handle: got %+v, %v, want the one event", got, err)
	}
}

func sameEvent(a, b store.Event) bool {
	if !a.Time.Equal(b.Time) {
		return false
	}
	a.Time, b.Time = time.Time{}, time.Time{}
	return a == b
}

func TestAuditLogIsTrimmed(t *testing.T) {
	ctx := context.Background()
	d := openDB(t, filepath.Join(t.TempDir(), "state.db"), testSealer(t, 1))
	// Fill the log up to just before a trim point in one transaction.
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO audit (at, profile, action, outcome) VALUES (?, 'p', 'refresh', 'ok')`)
	if err != nil {
		t.Fatal(err)
	}
	const before = auditKeep + 998
	for i := range before {
		if _, err := stmt.ExecContext(ctx, i); err != nil {
			t.Fatal(err)
		}
	}
	stmt.Close()
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	count := func() (n, minID int64) {
		t.Helper()
		if err := d.db.QueryRowContext(ctx, `SELECT count(*), min(id) FROM audit`).Scan(&n, &minID); err != nil {
			t.Fatal(err)
		}
		return n, minID
	}
	e := store.Event{Time: time.Now(), Profile: "p", Action: "obtain", Outcome: "ok", PID: 1}
	if err := d.Append(ctx, e); err != nil { // id 10999: no trim yet
		t.Fatal(err)
	}
	if n, _ := count(); n != before+1 {
		t.Fatalf("events before the trim point: got %d, want %d", n, before+1)
	}
	e.PID = 2
	if err := d.Append(ctx, e); err != nil { // id 11000: trims to the newest auditKeep
		t.Fatal(err)
	}
	n, minID := count()
	if n != auditKeep || minID != before+2-auditKeep+1 {
		t.Errorf("after the trim: got %d events from id %d, want %d from id %d", n, minID, auditKeep, before+2-auditKeep+1)
	}
	got, err := d.Events(ctx, "", 1)
	if err != nil || len(got) != 1 || got[0].PID != 2 {
		t.Errorf("newest event after the trim: got %+v, %v, want PID 2", got, err)
	}
}
