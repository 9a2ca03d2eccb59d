package tokenbroker

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/internal/pgtest"
	"github.com/tokenbroker/tokenbroker/store"
)

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Stop()
	os.Exit(code)
}

// TestMigrateBothWays moves state from SQLite to PostgreSQL and back to a
// new SQLite file: every token arrives whole, and so does the audit log.
func TestMigrateBothWays(t *testing.T) {
	pg := pgtest.Start(t).Database(t)
	dir := t.TempDir()
	key := base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	cfg := &config.Config{Key: config.Secret(key)}
	first, back := "sqlite:"+filepath.Join(dir, "a.db"), "sqlite:"+filepath.Join(dir, "b.db")
	c := *cfg
	c.State = first
	st, err := OpenStore(&c)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	want := map[string]*Token{
		"aruba": {AccessToken: "at-a", RefreshToken: "rt-a", PrevRefreshToken: "rt-0", Expiry: time.Now().Add(time.Hour).Round(time.Second),
			Secrets: map[string]string{"client_id": "minted"}, Grant: "refresh_token"},
		"ruckus": {AccessToken: "at-r", Expiry: time.Now().Add(2 * time.Hour).Round(time.Second), Grant: "client_credentials"},
	}
	for n, tok := range want {
		if err := leasedPut(ctx, st, n, tok.Clone(), 0); err != nil {
			t.Fatal(err)
		}
		st.Append(ctx, store.Event{Time: time.Now(), Profile: n, Action: "obtain", Outcome: "ok"})
	}
	st.Close()
	for _, hop := range [][2]string{{first, pg}, {pg, back}} {
		res, err := Migrate(ctx, cfg, hop[0], hop[1])
		if err != nil {
			t.Fatalf("%s -> %s: %v", hop[0], hop[1], err)
		}
		if res.Tokens != 2 || res.Events != 2 {
			t.Errorf("%s -> %s: %+v", hop[0], hop[1], res)
		}
	}
	c.State = back
	st, err = OpenStore(&c)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for n, w := range want {
		got, err := st.Get(ctx, n)
		if err != nil || got.AccessToken != w.AccessToken || got.RefreshToken != w.RefreshToken || got.PrevRefreshToken != w.PrevRefreshToken ||
			!got.Expiry.Equal(w.Expiry) || got.Secrets["client_id"] != w.Secrets["client_id"] {
			t.Errorf("%s after two moves: %+v %v", n, got, err)
		}
	}
	// Moving again onto a state that holds the profiles copies nothing.
	if _, err := Migrate(ctx, cfg, first, back); err == nil {
		t.Error("a migration over existing profiles succeeded")
	}
}
