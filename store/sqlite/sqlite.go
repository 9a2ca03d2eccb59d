// Package sqlite is the default Store: one file on the local machine, shared
// by every tokenbroker process through SQLite's locking (WAL mode, every
// commit fsynced).
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/url"
	"path/filepath"
	"sync"
	"time"

	"modernc.org/sqlite" // the pure-Go driver, registered as "sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/tokenbroker/tokenbroker/failure"
	"github.com/tokenbroker/tokenbroker/internal/secretfile"
	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/seal"
	"github.com/tokenbroker/tokenbroker/token"
)

// auditKeep is how many audit events are kept.
const auditKeep = 10000

// DB is a Store on a SQLite file.
type DB struct {
	db     *sql.DB
	path   string
	sealer *seal.Sealer
	now    func() time.Time
	store.Rotator
	stmts sync.Map // query text -> *sql.Stmt, prepared on first use
}

// Open opens (creating if needed) the state file at path, sealing with s.
// The directory is made 0700 and the file 0600; an existing file that others
// may read is refused.
func Open(path string, s *seal.Sealer) (*DB, error) {
	if err := secretfile.MkdirPrivate(filepath.Dir(path)); err != nil {
		return nil, stateErr(path, "cannot create the state directory", err, "")
	}
	if err := secretfile.CreatePrivate(path); err != nil {
		return nil, stateErr(path, "cannot create the state file", err, "check that the directory is writable")
	}
	if err := seal.CheckPrivate(path, "state file"); err != nil {
		return nil, &failure.Error{Kind: failure.Config, Msg: err.Error()}
	}
	// The path is escaped: '?', '#' and '%' would otherwise be read as URI syntax.
	dsn := "file:" + (&url.URL{Path: path}).EscapedPath() +
		"?_pragma=busy_timeout(30000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=secure_delete(on)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, stateErr(path, "cannot open the state", err, "")
	}
	d := &DB{db: db, path: path, sealer: s, now: time.Now}
	d.Rotator = d.rotator()
	// Switching a new file to WAL takes an exclusive lock, for which SQLite
	// does not honour the busy timeout: processes opening a fresh state at
	// the same moment retry instead of failing.
	for attempt := 0; ; attempt++ {
		err = d.migrate(context.Background())
		if err == nil || !isBusy(err) || attempt == openAttempts {
			break
		}
		time.Sleep(time.Duration(rand.N(20)+5) * time.Millisecond)
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	// SQLite makes its journal files with the state file's mode, which
	// on Windows says nothing: they get the state file's access list.
	for _, f := range []string{path + "-wal", path + "-shm"} {
		if err := secretfile.MakePrivate(f); err != nil {
			db.Close()
			return nil, stateErr(f, "cannot make the journal file private", err, "")
		}
	}
	return d, nil
}

// openAttempts bounds retries of a busy first open (about 2.5 s in all).
const openAttempts = 100

func isBusy(err error) bool {
	c := code(err)
	return c == sqlite3.SQLITE_BUSY || c == sqlite3.SQLITE_LOCKED
}

// code is SQLite's primary result code of err (0 for errors not SQLite's).
func code(err error) int {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() & 0xff // an extended code carries the primary one in its low byte
	}
	return 0
}

func stateErr(path, msg string, err error, hint string) error {
	return &failure.Error{Kind: failure.Other, Msg: msg + " " + path, Err: err, Hint: hint}
}

// describe turns SQLite's terse errors into what to do.
func (d *DB) describe(err error) error {
	if err == nil {
		return nil
	}
	var fe *failure.Error
	if errors.As(err, &fe) {
		return err
	}
	var pe *fs.PathError
	switch c := code(err); {
	case isBusy(err):
		return stateErr(d.path, "the state is locked by another process:", store.Unavailable(err),
			"another tokenbroker holds the state's write lock; tokens in memory are served meanwhile")
	case c == sqlite3.SQLITE_NOTADB, c == sqlite3.SQLITE_CORRUPT:
		return stateErr(d.path, "the state file is corrupt or not a tokenbroker state:", err,
			"move it aside to start afresh (tokens will then be obtained again); it was left as it is")
	case c == sqlite3.SQLITE_READONLY, c == sqlite3.SQLITE_CANTOPEN, c == sqlite3.SQLITE_PERM, errors.As(err, &pe) && errors.Is(pe.Err, fs.ErrPermission):
		return stateErr(d.path, "the state cannot be written:", err,
			"make the state file and its directory writable by this user; nothing was changed")
	}
	return stateErr(d.path, "state error:", err, "")
}

// migrate brings the file to the newest schema, in one transaction.
func (d *DB) migrate(ctx context.Context) error {
	// Most opens find the schema current: they read the version without
	// taking the write lock that a migration needs, so CLI runs reading a
	// token do not queue behind each other or behind serve.
	var current int
	if err := d.db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&current); err != nil {
		return d.describe(err)
	}
	if current == len(migrations) {
		return nil
	}
	if current > len(migrations) {
		return d.newerSchema(ctx, current)
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return d.describe(err)
	}
	defer tx.Rollback()
	var v int
	if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
		return d.describe(err)
	}
	if v > len(migrations) {
		tx.Rollback()
		return d.newerSchema(ctx, v)
	}
	if v == len(migrations) {
		return nil
	}
	for i := v; i < len(migrations); i++ {
		if err := migrations[i](ctx, tx, d.sealer); err != nil {
			return d.describe(fmt.Errorf("migration to schema %d: %w", i+1, err))
		}
	}
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, len(migrations))); err != nil {
		return d.describe(err)
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_floor (min_reader INTEGER NOT NULL)`); err != nil {
		return d.describe(err)
	}
	// A floor raised since (a rotation: keysSchema) is kept.
	var floor int
	if err := tx.QueryRowContext(ctx, `SELECT coalesce(max(min_reader), 0) FROM schema_floor`).Scan(&floor); err != nil {
		return d.describe(err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM schema_floor`); err != nil {
		return d.describe(err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_floor (min_reader) VALUES (?)`, max(minReader, min(floor, len(migrations)))); err != nil {
		return d.describe(err)
	}
	if err := tx.Commit(); err != nil {
		return d.describe(err)
	}
	if v >= 1 && v < sealedSchema {
		// Pages the first schema freed before secure_delete was on may still
		// hold plaintext tokens: rewrite the file.
		if _, err := d.db.ExecContext(ctx, `VACUUM`); err != nil {
			return d.describe(err)
		}
	}
	return nil
}

// newerSchema decides about a state a newer tokenbroker migrated: this one
// runs on it if the newer one recorded that binaries knowing this one's
// schema can still use it (its changes only added), and refuses otherwise,
// naming both versions. Replicas are upgraded one at a time this way.
func (d *DB) newerSchema(ctx context.Context, v int) error {
	var floor int
	if err := d.db.QueryRowContext(ctx, `SELECT coalesce(max(min_reader), 0) FROM schema_floor`).Scan(&floor); err != nil {
		floor = 0 // written before floors were recorded: it cannot say
	}
	if floor >= 1 && floor <= len(migrations) {
		return nil
	}
	return stateErr(d.path, fmt.Sprintf("the state was written by a newer tokenbroker (schema %d, which needs a tokenbroker that knows schema %d or later; this one knows %d):", v, max(floor, v), len(migrations)), nil, "upgrade tokenbroker")
}

// Get implements store.Store.
func (d *DB) Get(ctx context.Context, profile string) (*token.Token, error) {
	var gen int64
	var r store.Row
	found, err := d.queryRow(ctx, `SELECT generation, meta, access, refresh, prev_refresh, secrets FROM tokens WHERE profile = ?`,
		[]any{profile}, &gen, &r.Meta, &r.Access, &r.Refresh, &r.PrevRefresh, &r.Secrets)
	if err != nil || !found {
		return nil, err
	}
	return store.UnsealFollowing(ctx, d, func() (*token.Token, error) { return store.Unseal(d.sealer, profile, gen, r) })
}

// Put implements store.Store.
func (d *DB) Put(ctx context.Context, profile string, tok *token.Token, expect int64, lease *store.Lease) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return d.describe(err)
	}
	defer tx.Rollback()
	var gen int64
	err = tx.QueryRowContext(ctx, `SELECT generation FROM tokens WHERE profile = ?`, profile).Scan(&gen)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return d.describe(err)
	}
	if gen != expect {
		return store.ErrConflict
	}
	if lease == nil {
		return store.ErrNoLease
	}
	var owner string
	var fence int64
	if err := tx.QueryRowContext(ctx, `SELECT owner, fence FROM leases WHERE profile = ?`, profile).Scan(&owner, &fence); err != nil || owner != lease.Owner || fence != lease.Fence {
		return store.ErrFenced
	}
	sealer, err := d.checkPrimary(ctx, tx)
	if err != nil {
		return err
	}
	r, err := store.Seal(sealer, profile, expect+1, tok)
	if err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO tokens (profile, generation, meta, access, refresh, prev_refresh, secrets, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (profile) DO UPDATE SET generation = excluded.generation, meta = excluded.meta, access = excluded.access,
			refresh = excluded.refresh, prev_refresh = excluded.prev_refresh, secrets = excluded.secrets, updated_at = excluded.updated_at`,
		profile, expect+1, r.Meta, r.Access, r.Refresh, r.PrevRefresh, r.Secrets, d.now().UnixMilli()); err != nil {
		return d.describe(err)
	}
	if err := tx.Commit(); err != nil {
		return d.describe(err)
	}
	tok.Generation = expect + 1
	return nil
}

// Delete implements store.Store.
func (d *DB) Delete(ctx context.Context, profile string) error {
	_, err := d.db.ExecContext(ctx, `DELETE FROM tokens WHERE profile = ?`, profile)
	return d.describe(err)
}

// Acquire implements store.Store. SQLite has no notifications between
// processes, so a waiter polls, with jitter, until the holder commits and
// releases or its lease expires.
func (d *DB) Acquire(ctx context.Context, profile, owner string, ttl time.Duration) (*store.Lease, error) {
	return store.WaitForLease(ctx, profile, func() (*store.Lease, error) { return d.tryAcquire(ctx, profile, owner, ttl) })
}

func (d *DB) tryAcquire(ctx context.Context, profile, owner string, ttl time.Duration) (*store.Lease, error) {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, d.describe(err)
	}
	defer tx.Rollback()
	now := d.now()
	var holder string
	var fence, expires int64
	err = tx.QueryRowContext(ctx, `SELECT owner, fence, expires_at FROM leases WHERE profile = ?`, profile).Scan(&holder, &fence, &expires)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, d.describe(err)
	}
	if err == nil && holder != owner && expires > now.UnixMilli() && !store.OwnerDead(holder) {
		return nil, nil // held by someone alive
	}
	l := &store.Lease{Profile: profile, Owner: owner, Fence: fence + 1, Expires: now.Add(ttl)}
	if _, err := tx.ExecContext(ctx, `INSERT INTO leases (profile, owner, fence, expires_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (profile) DO UPDATE SET owner = excluded.owner, fence = excluded.fence, expires_at = excluded.expires_at`,
		profile, owner, l.Fence, l.Expires.UnixMilli()); err != nil {
		return nil, d.describe(err)
	}
	return l, d.describe(tx.Commit())
}

// Release implements store.Store. The row stays, so fences keep growing.
func (d *DB) Release(ctx context.Context, l *store.Lease) error {
	if l == nil {
		return nil
	}
	_, err := d.db.ExecContext(ctx, `UPDATE leases SET expires_at = 0 WHERE profile = ? AND owner = ? AND fence = ?`, l.Profile, l.Owner, l.Fence)
	return d.describe(err)
}

// Append implements store.Store.
func (d *DB) Append(ctx context.Context, e store.Event) error {
	res, err := d.db.ExecContext(ctx, `INSERT INTO audit (at, profile, action, grant_type, outcome, error_class, error, pid, client) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		e.Time.UnixMilli(), e.Profile, e.Action, e.Grant, e.Outcome, e.ErrorClass, e.Error, e.PID, e.Client)
	if err != nil {
		return d.describe(err)
	}
	if id, err := res.LastInsertId(); err == nil && id%1000 == 0 {
		_, err = d.db.ExecContext(ctx, `DELETE FROM audit WHERE id <= ?`, id-auditKeep)
		return d.describe(err)
	}
	return nil
}

// Events implements store.Store.
func (d *DB) Events(ctx context.Context, profile string, limit int) ([]store.Event, error) {
	const cols = `SELECT at, profile, action, grant_type, outcome, error_class, error, pid, client FROM audit`
	var rows *sql.Rows
	var err error
	if profile == "" {
		rows, err = d.query(ctx, cols+` ORDER BY id DESC LIMIT ?`, limit)
	} else {
		// By the (profile, id) index: the cost does not grow with the other
		// profiles' history.
		rows, err = d.query(ctx, cols+` WHERE profile = ? ORDER BY id DESC LIMIT ?`, profile, limit)
	}
	if err != nil {
		return nil, d.describe(err)
	}
	defer rows.Close()
	var out []store.Event
	for rows.Next() {
		var e store.Event
		var at int64
		if err := rows.Scan(&at, &e.Profile, &e.Action, &e.Grant, &e.Outcome, &e.ErrorClass, &e.Error, &e.PID, &e.Client); err != nil {
			return nil, d.describe(err)
		}
		e.Time = time.UnixMilli(at)
		out = append(out, e)
	}
	return out, d.describe(rows.Err())
}

// queryRow reads at most one row through a prepared statement into dest,
// and says whether there was one.
func (d *DB) queryRow(ctx context.Context, q string, args []any, dest ...any) (bool, error) {
	rows, err := d.query(ctx, q, args...)
	if err != nil {
		return false, d.describe(err)
	}
	defer rows.Close()
	if !rows.Next() {
		return false, d.describe(rows.Err())
	}
	return true, d.describe(rows.Scan(dest...))
}

// query runs a read through a statement prepared once per DB: the reads a
// CLI run or a scrape repeats per profile are parsed by SQLite once.
func (d *DB) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if v, ok := d.stmts.Load(q); ok {
		return v.(*sql.Stmt).QueryContext(ctx, args...)
	}
	st, err := d.db.PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	if v, loaded := d.stmts.LoadOrStore(q, st); loaded {
		st.Close()
		st = v.(*sql.Stmt)
	}
	return st.QueryContext(ctx, args...)
}

// SeedTaken implements store.Seeds.
func (d *DB) SeedTaken(ctx context.Context, profile, hash string) (time.Time, bool, error) {
	var ms int64
	found, err := d.queryRow(ctx, `SELECT taken_ms FROM seeds WHERE profile = ? AND hash = ?`, []any{profile, hash}, &ms)
	if err != nil || !found {
		return time.Time{}, false, err
	}
	return time.UnixMilli(ms), true, nil
}

// TakeSeed implements store.Seeds.
func (d *DB) TakeSeed(ctx context.Context, profile, hash string, at time.Time) error {
	_, err := d.db.ExecContext(ctx, `INSERT INTO seeds (profile, hash, taken_ms) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`, profile, hash, at.UnixMilli())
	return d.describe(err)
}

// HoldUntil implements store.Holds.
func (d *DB) HoldUntil(ctx context.Context, profile string) (time.Time, error) {
	var ms int64
	found, err := d.queryRow(ctx, `SELECT until_ms FROM holds WHERE profile = ?`, []any{profile}, &ms)
	if err != nil || !found {
		return time.Time{}, err
	}
	return time.UnixMilli(ms), nil
}

// SetHold implements store.Holds.
func (d *DB) SetHold(ctx context.Context, profile string, until time.Time) error {
	_, err := d.db.ExecContext(ctx, `INSERT INTO holds (profile, until_ms) VALUES (?, ?)
		ON CONFLICT (profile) DO UPDATE SET until_ms = max(until_ms, excluded.until_ms)`, profile, until.UnixMilli())
	return d.describe(err)
}

// TenantList implements store.TenantLists.
func (d *DB) TenantList(ctx context.Context, profile string) ([]byte, time.Time, error) {
	var list []byte
	var ms int64
	found, err := d.queryRow(ctx, `SELECT list, at_ms FROM tenant_lists WHERE profile = ?`, []any{profile}, &list, &ms)
	if err != nil || !found {
		return nil, time.Time{}, err
	}
	return list, time.UnixMilli(ms), nil
}

// PutTenantList implements store.TenantLists.
func (d *DB) PutTenantList(ctx context.Context, profile string, list []byte, at time.Time) error {
	_, err := d.db.ExecContext(ctx, `INSERT INTO tenant_lists (profile, list, at_ms) VALUES (?, ?, ?)
		ON CONFLICT (profile) DO UPDATE SET list = excluded.list, at_ms = excluded.at_ms`, profile, list, at.UnixMilli())
	return d.describe(err)
}

// AddTenantCalls implements store.TenantCalls.
func (d *DB) AddTenantCalls(ctx context.Context, profile string, calls map[string]store.TenantCall) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return d.describe(err)
	}
	defer tx.Rollback()
	for tenant, c := range calls {
		if _, err := tx.ExecContext(ctx, `INSERT INTO tenant_calls (profile, tenant, calls, last_ms) VALUES (?, ?, ?, ?)
			ON CONFLICT (profile, tenant) DO UPDATE SET calls = calls + excluded.calls, last_ms = max(last_ms, excluded.last_ms)`,
			profile, tenant, c.Calls, c.Last.UnixMilli()); err != nil {
			return d.describe(err)
		}
	}
	return d.describe(tx.Commit())
}

// TenantCalls implements store.TenantCalls.
func (d *DB) TenantCalls(ctx context.Context, profile string) (map[string]store.TenantCall, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT tenant, calls, last_ms FROM tenant_calls WHERE profile = ?`, profile)
	if err != nil {
		return nil, d.describe(err)
	}
	defer rows.Close()
	out := map[string]store.TenantCall{}
	for rows.Next() {
		var t string
		var c store.TenantCall
		var ms int64
		if err := rows.Scan(&t, &c.Calls, &ms); err != nil {
			return nil, d.describe(err)
		}
		c.Last = time.UnixMilli(ms)
		out[t] = c
	}
	return out, d.describe(rows.Err())
}

// Close implements store.Store.
func (d *DB) Close() error {
	d.stmts.Range(func(_, v any) bool {
		v.(*sql.Stmt).Close()
		return true
	})
	return d.db.Close()
}

// Profiles implements store.Store.
func (d *DB) Profiles(ctx context.Context) ([]string, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT profile FROM tokens ORDER BY profile`)
	if err != nil {
		return nil, d.describe(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return nil, d.describe(err)
		}
		out = append(out, p)
	}
	return out, d.describe(rows.Err())
}

func init() {
	store.Register("sqlite", store.Driver{
		Open: func(_ context.Context, path string, s *seal.Sealer) (store.Store, error) {
			return Open(absPath(path), s)
		},
		KeyDir: func(path string) string { return filepath.Dir(absPath(path)) },
	})
}

// absPath makes a relative state path absolute, so the key file lands
// beside the state whatever the working directory later becomes.
func absPath(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return path
}
