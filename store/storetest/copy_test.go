package storetest_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/internal/pgtest"
	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/postgres"
	"github.com/tokenbroker/tokenbroker/store/sqlite"
	"github.com/tokenbroker/tokenbroker/token"
)

// TestCopyBothWays moves state from SQLite to PostgreSQL and back to a new
// SQLite file (`tokenbroker migrate`): every token arrives whole, and so
// does the audit log; a copy onto a state that holds the profiles copies
// nothing.
func TestCopyBothWays(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	openSQLite := func(name string) store.Store {
		d, err := sqlite.Open(filepath.Join(dir, name), sealerOf(t, key(1)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { d.Close() })
		return d
	}
	first, back := openSQLite("a.db"), openSQLite("b.db")
	pg, err := postgres.Open(ctx, pgtest.Start(t).Database(t), sealerOf(t, key(1)))
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	want := map[string]*token.Token{
		"aruba": {AccessToken: "at-a", RefreshToken: "rt-a", PrevRefreshToken: "rt-0", Expiry: time.Now().Add(time.Hour).Round(time.Second),
			Secrets: map[string]string{"client_id": "minted"}, Grant: "refresh_token"},
		"ruckus": {AccessToken: "at-r", Expiry: time.Now().Add(2 * time.Hour).Round(time.Second), Grant: "client_credentials"},
	}
	for n, tok := range want {
		err := store.WithLease(ctx, first, n, "test", time.Minute, func(l *store.Leased) error { return l.Put(ctx, tok.Clone(), 0) })
		if err != nil {
			t.Fatal(err)
		}
		first.Append(ctx, store.Event{Time: time.Now(), Profile: n, Action: "obtain", Outcome: "ok"})
	}
	for _, hop := range [][2]store.Store{{first, pg}, {pg, back}} {
		res, err := store.Copy(ctx, hop[0], hop[1])
		if err != nil {
			t.Fatal(err)
		}
		if res.Tokens != 2 || res.Events != 2 {
			t.Errorf("copied %+v, want 2 tokens and 2 events", res)
		}
	}
	for n, w := range want {
		got, err := back.Get(ctx, n)
		if err != nil || got.AccessToken != w.AccessToken || got.RefreshToken != w.RefreshToken || got.PrevRefreshToken != w.PrevRefreshToken ||
			!got.Expiry.Equal(w.Expiry) || got.Secrets["client_id"] != w.Secrets["client_id"] {
			t.Errorf("%s after two moves: %+v %v", n, got, err)
		}
	}
	if _, err := store.Copy(ctx, first, back); err == nil {
		t.Error("a copy over existing profiles succeeded")
	}
}
