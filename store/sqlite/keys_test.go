package sqlite

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/tokenbroker/tokenbroker/store/seal"
)

// A rotated state keeps out releases that know nothing of rotation: they
// would seal under the old key alone.
func TestRekeyRaisesTheReaderFloor(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	d := openDB(t, path, testSealer(t, 1))
	if _, err := d.Rekey(context.Background(), bytes.Repeat([]byte{2}, seal.KeySize)); err != nil {
		t.Fatal(err)
	}
	d.Close()
	openDB(t, path, testSealer(t, 2)).Close()
	var floor int
	if err := rawDB(t, path).QueryRow(`SELECT min_reader FROM schema_floor`).Scan(&floor); err != nil || floor != keysSchema {
		t.Fatalf("floor after a rotation and a reopen: %d %v, want %d", floor, err, keysSchema)
	}
}
