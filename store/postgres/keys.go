package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tokenbroker/tokenbroker/failure"
	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/seal"
)

// keyLock is the advisory lock of the master keys: a rotation holds it
// exclusively, and every writer of a sealed value shares it while it reads
// the primary and writes, so no value is sealed under a key a rotation is
// replacing.
var keyLock = lockKey("keys", "")

// rotationTimeout bounds a rotation, which reads and writes every record.
const rotationTimeout = time.Minute

// keyTx is a rotation's view of the state inside one transaction.
type keyTx struct{ tx pgExecQuerier }

// pgExecQuerier is a transaction or the pool.
type pgExecQuerier interface {
	pgQuerier
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// pgQuerier is a transaction or the pool.
type pgQuerier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func keyEntries(ctx context.Context, q pgQuerier) ([]store.KeyEntry, error) {
	rows, err := q.Query(ctx, `SELECT id, state, wrapped, wrapped_by, at FROM master_keys ORDER BY at, id`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.KeyEntry, error) {
		var e store.KeyEntry
		err := r.Scan(&e.ID, &e.State, &e.Wrapped, &e.WrappedBy, &e.At)
		return e, err
	})
}

func (k keyTx) KeyEntries(ctx context.Context) ([]store.KeyEntry, error) {
	return keyEntries(ctx, k.tx)
}

// keysSchema is the schema that brought master_keys: a release before it
// would seal under the configured key alone, unaware of a rotation, so a
// rotated state keeps those releases out (they refuse it at start).
const keysSchema = 10

func (k keyTx) PutKeyEntries(ctx context.Context, entries []store.KeyEntry) error {
	if _, err := k.tx.Exec(ctx, `UPDATE tokenbroker_schema SET min_reader = greatest(min_reader, $1)`, keysSchema); err != nil {
		return err
	}
	if _, err := k.tx.Exec(ctx, `DELETE FROM master_keys`); err != nil {
		return err
	}
	for _, e := range entries {
		if _, err := k.tx.Exec(ctx, `INSERT INTO master_keys (id, state, wrapped, wrapped_by, at) VALUES ($1, $2, $3, $4, $5)`,
			e.ID, e.State, e.Wrapped, e.WrappedBy, e.At); err != nil {
			return err
		}
	}
	return nil
}

func (k keyTx) SealedRecords(ctx context.Context) ([]store.Sealed, error) {
	rows, err := k.tx.Query(ctx, `SELECT profile, generation, meta, access, refresh, prev_refresh, secrets FROM tokens`)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Sealed, error) {
		var s store.Sealed
		err := r.Scan(&s.Profile, &s.Generation, &s.Row.Meta, &s.Row.Access, &s.Row.Refresh, &s.Row.PrevRefresh, &s.Row.Secrets)
		return s, err
	})
	if err != nil {
		return nil, err
	}
	rows, err = k.tx.Query(ctx, `SELECT profile, webhook, sealed FROM webhook_tokens`)
	if err != nil {
		return nil, err
	}
	hooks, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Sealed, error) {
		var s store.Sealed
		err := r.Scan(&s.Profile, &s.Webhook, &s.Value)
		return s, err
	})
	return append(out, hooks...), err
}

func (k keyTx) UpdateSealed(ctx context.Context, r store.Sealed) error {
	var err error
	if r.Webhook != "" {
		_, err = k.tx.Exec(ctx, `UPDATE webhook_tokens SET sealed = $1 WHERE profile = $2 AND webhook = $3`, r.Value, r.Profile, r.Webhook)
	} else {
		_, err = k.tx.Exec(ctx, `UPDATE tokens SET access = $1, refresh = $2, prev_refresh = $3, secrets = $4 WHERE profile = $5 AND generation = $6`,
			r.Row.Access, r.Row.Refresh, r.Row.PrevRefresh, r.Row.Secrets, r.Profile, r.Generation)
	}
	return err
}

// rotator gives the DB its store.Rekeyer methods. A rotation holds the
// key lock exclusively and tells the replicas that anything may have
// changed.
func (d *DB) rotator() store.Rotator {
	return store.Rotator{
		Sealer: d.sealer,
		Opened: d.sealer.Primary(),
		// On the database's clock, so that `rekey --retire`'s wait after a
		// rotation holds whichever machines ran the two.
		Now: func() time.Time { return time.Now().Add(time.Duration(d.offset.Load())) },
		InTx: func(ctx context.Context, f func(store.KeyTx) error) error {
			d.clockOffset(ctx)
			ctx, cancel := context.WithTimeout(ctx, rotationTimeout)
			defer cancel()
			tx, err := d.pool.Begin(ctx)
			if err != nil {
				return unavailable(err)
			}
			defer tx.Rollback(ctx)
			if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, keyLock); err != nil {
				return unavailable(err)
			}
			if err := f(keyTx{tx}); err != nil {
				return unavailable(err)
			}
			if _, err := tx.Exec(ctx, `SELECT pg_notify($1, '')`, channel); err != nil {
				return unavailable(err)
			}
			if err := tx.Commit(ctx); err != nil {
				return &failure.Error{Kind: failure.Other, Msg: "the PostgreSQL state did not confirm the key change", Err: store.Unavailable(redact(err)),
					Hint: "it took effect whole or not at all: see `tokenbroker rekey --status` once the database answers"}
			}
			return nil
		},
		Read: func(ctx context.Context, f func(store.KeyTx) error) error {
			ctx, cancel := context.WithTimeout(ctx, rotationTimeout)
			defer cancel()
			tx, err := d.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
			if err != nil {
				return unavailable(err)
			}
			defer tx.Rollback(ctx)
			return unavailable(f(keyTx{tx}))
		},
		Entries: func(ctx context.Context) ([]store.KeyEntry, error) {
			ctx, cancel := d.op(ctx)
			defer cancel()
			entries, err := keyEntries(ctx, d.pool)
			return entries, unavailable(err)
		},
	}
}

// checkPrimary makes a writer seal under the state's primary key: it
// shares the key lock for the rest of its transaction and reads the
// primary under it.
func (d *DB) checkPrimary(ctx context.Context, tx pgx.Tx) (*seal.Sealer, error) {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock_shared($1)`, keyLock); err != nil {
		return nil, unavailable(err)
	}
	var primary string
	err := tx.QueryRow(ctx, `SELECT id FROM master_keys WHERE state = 'primary'`).Scan(&primary)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, unavailable(err)
	}
	return store.CheckPrimary(d.sealer, primary, func() ([]store.KeyEntry, error) { return keyEntries(ctx, tx) })
}
