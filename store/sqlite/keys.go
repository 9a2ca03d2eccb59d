package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/seal"
)

// keyTx is a rotation's view of the state inside one write transaction;
// SQLite's write lock keeps every other writer out until it commits.
type keyTx struct{ tx execQuerier }

// execQuerier is a transaction or the database.
type execQuerier interface {
	querier
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
}

func (k keyTx) KeyEntries(ctx context.Context) ([]store.KeyEntry, error) {
	return keyEntries(ctx, k.tx)
}

// querier is a transaction or the database.
type querier interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
}

func keyEntries(ctx context.Context, q querier) ([]store.KeyEntry, error) {
	rows, err := q.QueryContext(ctx, `SELECT id, state, wrapped, wrapped_by, at_ms FROM master_keys ORDER BY at_ms, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.KeyEntry
	for rows.Next() {
		var e store.KeyEntry
		var at int64
		if err := rows.Scan(&e.ID, &e.State, &e.Wrapped, &e.WrappedBy, &at); err != nil {
			return nil, err
		}
		e.At = time.UnixMilli(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

// keysSchema is the schema that brought master_keys: a release before it
// would seal under the configured key alone, unaware of a rotation, so a
// rotated state keeps those releases out (they refuse it at start).
const keysSchema = 10

func (k keyTx) PutKeyEntries(ctx context.Context, entries []store.KeyEntry) error {
	if _, err := k.tx.ExecContext(ctx, `UPDATE schema_floor SET min_reader = max(min_reader, ?)`, keysSchema); err != nil {
		return err
	}
	if _, err := k.tx.ExecContext(ctx, `DELETE FROM master_keys`); err != nil {
		return err
	}
	for _, e := range entries {
		if _, err := k.tx.ExecContext(ctx, `INSERT INTO master_keys (id, state, wrapped, wrapped_by, at_ms) VALUES (?, ?, ?, ?, ?)`,
			e.ID, e.State, e.Wrapped, e.WrappedBy, e.At.UnixMilli()); err != nil {
			return err
		}
	}
	return nil
}

func (k keyTx) SealedRecords(ctx context.Context) ([]store.Sealed, error) {
	var out []store.Sealed
	rows, err := k.tx.QueryContext(ctx, `SELECT profile, generation, meta, access, refresh, prev_refresh, secrets FROM tokens`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var r store.Sealed
		if err := rows.Scan(&r.Profile, &r.Generation, &r.Row.Meta, &r.Row.Access, &r.Row.Refresh, &r.Row.PrevRefresh, &r.Row.Secrets); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	wrows, err := k.tx.QueryContext(ctx, `SELECT profile, webhook, sealed FROM webhook_tokens`)
	if err != nil {
		return nil, err
	}
	defer wrows.Close()
	for wrows.Next() {
		var r store.Sealed
		if err := wrows.Scan(&r.Profile, &r.Webhook, &r.Value); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, wrows.Err()
}

func (k keyTx) UpdateSealed(ctx context.Context, r store.Sealed) error {
	var err error
	if r.Webhook != "" {
		_, err = k.tx.ExecContext(ctx, `UPDATE webhook_tokens SET sealed = ? WHERE profile = ? AND webhook = ?`, r.Value, r.Profile, r.Webhook)
	} else {
		_, err = k.tx.ExecContext(ctx, `UPDATE tokens SET access = ?, refresh = ?, prev_refresh = ?, secrets = ? WHERE profile = ? AND generation = ?`,
			r.Row.Access, r.Row.Refresh, r.Row.PrevRefresh, r.Row.Secrets, r.Profile, r.Generation)
	}
	return err
}

// rotator gives the DB its store.Rekeyer methods.
func (d *DB) rotator() store.Rotator {
	return store.Rotator{
		Sealer: d.sealer,
		Opened: d.sealer.Primary(),
		Now:    d.now,
		InTx: func(ctx context.Context, f func(store.KeyTx) error) error {
			tx, err := d.db.BeginTx(ctx, nil)
			if err != nil {
				return d.describe(err)
			}
			defer tx.Rollback()
			if err := f(keyTx{tx}); err != nil {
				return d.describe(err)
			}
			return d.describe(tx.Commit())
		},
		Read: func(ctx context.Context, f func(store.KeyTx) error) error {
			return d.describe(f(keyTx{d.db}))
		},
		Entries: func(ctx context.Context) ([]store.KeyEntry, error) {
			entries, err := keyEntries(ctx, d.db)
			return entries, d.describe(err)
		},
	}
}

// checkPrimary makes a writer seal under the state's primary key, read
// inside its write transaction, so that no value is sealed under a key a
// rotation just replaced.
func (d *DB) checkPrimary(ctx context.Context, tx *sql.Tx) (*seal.Sealer, error) {
	var primary string
	err := tx.QueryRowContext(ctx, `SELECT id FROM master_keys WHERE state = 'primary'`).Scan(&primary)
	if err != nil && err != sql.ErrNoRows {
		return nil, d.describe(err)
	}
	return store.CheckPrimary(d.sealer, primary, func() ([]store.KeyEntry, error) { return keyEntries(ctx, tx) })
}
