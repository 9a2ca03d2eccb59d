package postgres

import (
	"context"
	"testing"
	"time"

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

// A rotation is dated on the database's clock, so that the wait before
// retiring holds whichever machines rotate and retire.
func TestRotationIsDatedOnTheDatabasesClock(t *testing.T) {
	d := open(t, pgtest.Start(t).Database(t))
	d.clockOffset(context.Background())
	d.offset.Add(int64(time.Hour)) // as if this machine's clock were an hour behind
	d.offsetAt.Store(time.Now().UnixNano())
	newKey := make([]byte, 32)
	newKey[0] = 2
	if _, err := d.Rekey(context.Background(), newKey); err != nil {
		t.Fatal(err)
	}
	var at time.Time
	if err := d.pool.QueryRow(context.Background(), `SELECT max(at) FROM master_keys`).Scan(&at); err != nil {
		t.Fatal(err)
	}
	if skew := time.Until(at); skew < 59*time.Minute || skew > 61*time.Minute {
		t.Fatalf("the rotation is dated %s from this machine's clock, want the database's (an hour ahead)", skew)
	}
}
