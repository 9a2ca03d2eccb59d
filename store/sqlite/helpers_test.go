package sqlite

import (
	"bytes"
	"database/sql"
	"os"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/store/seal"
	"github.com/tokenbroker/tokenbroker/token"
)

// Long, distinctive secrets: if any of them is found in a file's bytes, it
// was written in plaintext.
const (
	accessSecret  = "ACCESS-7f3e9a1c5b2d4e6f-8a0b1c2d3e4f5061-access-token"
	refreshSecret = "REFRESH-0c9d8e7f6a5b4c3d-2e1f0a9b8c7d6e5f-refresh-token"
	prevSecret    = "PREVREFRESH-1a2b3c4d5e6f7081-92a3b4c5d6e7f809-prev"
	clientSecret  = "CLIENTSECRET-f0e1d2c3b4a59687-78695a4b3c2d1e0f-secret"
	// scopeCanary is not secret: it is stored in plaintext metadata, so it
	// proves that the byte scan looks at the right files.
	scopeCanary = "SCOPE-CANARY-5e4d3c2b1a09f8e7"
)

var allSecrets = []string{accessSecret, refreshSecret, prevSecret, clientSecret}

func testSealer(t *testing.T, b byte) *seal.Sealer {
	t.Helper()
	s, err := seal.New(bytes.Repeat([]byte{b}, seal.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// openDB opens path and closes it at the end of the test.
func openDB(t *testing.T, path string, s *seal.Sealer) *DB {
	t.Helper()
	d, err := Open(path, s)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// rawDB opens path with the driver alone, bypassing the store.
func rawDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func fullToken() *token.Token {
	now := time.Date(2025, 3, 4, 5, 6, 7, 890_000_000, time.UTC)
	return &token.Token{
		AccessToken:      accessSecret,
		TokenType:        "Bearer",
		RefreshToken:     refreshSecret,
		PrevRefreshToken: prevSecret,
		Expiry:           now.Add(time.Hour),
		RefreshExpiry:    now.Add(30 * 24 * time.Hour),
		Scope:            scopeCanary,
		ObtainedAt:       now,
		Grant:            "refresh_token",
		Extra:            map[string]any{"owner_id": "o-42", "count": float64(7), "nested": map[string]any{"a": "b"}},
		Secrets:          map[string]string{"client_id": "cid-1", "client_secret": clientSecret},
	}
}

// sameToken compares tokens, times by instant.
func sameToken(a, b *token.Token) bool {
	if a == nil || b == nil {
		return a == b
	}
	ac, bc := a.Clone(), b.Clone()
	for _, p := range []struct{ x, y *time.Time }{{&ac.Expiry, &bc.Expiry}, {&ac.RefreshExpiry, &bc.RefreshExpiry}, {&ac.ObtainedAt, &bc.ObtainedAt}} {
		if !p.x.Equal(*p.y) {
			return false
		}
		*p.x, *p.y = time.Time{}, time.Time{}
	}
	return reflect.DeepEqual(ac, bc)
}

// stateFiles reads the database, its WAL and its shared-memory file as they
// are; a missing file reads as nil.
func stateFiles(t *testing.T, path string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		b, err := os.ReadFile(p)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		out[p] = b
	}
	return out
}

// clock is a settable time source for DB.now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
