package postgres

import (
	"context"
	"testing"

	"github.com/tokenbroker/tokenbroker/internal/pgtest"
)

// A rotated state keeps out releases that know nothing of rotation, also
// after every later open (which rewrites the schema row).
func TestRekeyRaisesTheReaderFloor(t *testing.T) {
	dsn := pgtest.Start(t).Database(t)
	d := open(t, dsn)
	newKey := make([]byte, 32)
	newKey[0] = 1
	if _, err := d.Rekey(context.Background(), newKey); err != nil {
		t.Fatal(err)
	}
	again := open(t, dsn)
	var floor int
	if err := again.pool.QueryRow(context.Background(), `SELECT min_reader FROM tokenbroker_schema`).Scan(&floor); err != nil || floor != keysSchema {
		t.Fatalf("floor after a rotation and a reopen: %d %v, want %d", floor, err, keysSchema)
	}
}
