package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"

	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/seal"
	"github.com/tokenbroker/tokenbroker/token"
)

// migration brings the schema from version i to i+1 (PRAGMA user_version).
type migration func(ctx context.Context, tx *sql.Tx, s *seal.Sealer) error

// sealedSchema is the first schema that seals secrets.
const sealedSchema = 2

// minReader is the oldest schema whose binaries can use the schema this
// one leaves: a migration that only adds (a table, a nullable column)
// keeps it; one that changes what older binaries read raises it to its own
// version, and those binaries then refuse the state instead of misreading
// it. Schema 2 moved the tokens into sealed_tokens; 3 to 10 only added.
var minReader = 2

// migrations are append-only: a newer binary must open any older file.
var migrations = []migration{
	// 1: the first release kept tokens as plain JSON.
	execAll(`CREATE TABLE tokens (
		profile    TEXT PRIMARY KEY,
		generation INTEGER NOT NULL,
		data       BLOB NOT NULL,
		updated_at INTEGER NOT NULL
	)`),
	// 2: secrets sealed field by field, leases, the audit log.
	sealTokens,
	// 3: webhook deliveries (a durable queue and the replay guard) and tokens.
	execAll(`CREATE TABLE deliveries (
			seq         INTEGER PRIMARY KEY AUTOINCREMENT,
			profile     TEXT NOT NULL,
			webhook     TEXT NOT NULL,
			delivery_id TEXT NOT NULL,
			service     TEXT NOT NULL,
			ts          TEXT NOT NULL,
			body        BLOB NOT NULL,
			received_at INTEGER NOT NULL,
			forwarded   INTEGER NOT NULL DEFAULT 0,
			UNIQUE (profile, delivery_id)
		)`,
		`CREATE INDEX deliveries_pending ON deliveries (profile, webhook, forwarded, seq)`,
		`CREATE TABLE webhook_tokens (
			profile TEXT NOT NULL,
			webhook TEXT NOT NULL,
			sealed  BLOB NOT NULL,
			PRIMARY KEY (profile, webhook)
		)`),
	// 4: deliveries are also known by their signature (older rows have none).
	execAll(`ALTER TABLE deliveries ADD COLUMN mac TEXT`,
		`CREATE UNIQUE INDEX deliveries_by_mac ON deliveries (profile, mac)`),
	// 5: token requests held back at a vendor's request (Retry-After).
	execAll(`CREATE TABLE holds (
		profile  TEXT PRIMARY KEY,
		until_ms INTEGER NOT NULL
	)`),
	// 6: the refresh-token seeds taken in, by hash.
	execAll(`CREATE TABLE seeds (
		profile  TEXT NOT NULL,
		hash     TEXT NOT NULL,
		taken_ms INTEGER NOT NULL,
		PRIMARY KEY (profile, hash)
	)`),
	// 7: the tenants discovered for MSP profiles, a list per profile.
	execAll(`CREATE TABLE tenant_lists (
		profile TEXT PRIMARY KEY,
		list    BLOB NOT NULL,
		at_ms   INTEGER NOT NULL
	)`),
	// 8: the serve client whose call caused an audit event.
	execAll(`ALTER TABLE audit ADD COLUMN client TEXT NOT NULL DEFAULT ''`),
	// 9: proxied calls per MSP tenant.
	execAll(`CREATE TABLE tenant_calls (
		profile TEXT NOT NULL,
		tenant  TEXT NOT NULL,
		calls   INTEGER NOT NULL,
		last_ms INTEGER NOT NULL,
		PRIMARY KEY (profile, tenant)
	)`),
	// 10: the master keys a rotation left (`tokenbroker rekey`).
	execAll(`CREATE TABLE master_keys (
		id         TEXT PRIMARY KEY,
		state      TEXT NOT NULL,
		wrapped    BLOB,
		wrapped_by TEXT NOT NULL DEFAULT '',
		at_ms      INTEGER NOT NULL
	)`),
}

func execAll(stmts ...string) migration {
	return func(ctx context.Context, tx *sql.Tx, _ *seal.Sealer) error {
		for _, s := range stmts {
			if _, err := tx.ExecContext(ctx, s); err != nil {
				return err
			}
		}
		return nil
	}
}

func sealTokens(ctx context.Context, tx *sql.Tx, s *seal.Sealer) error {
	if err := execAll(
		`CREATE TABLE sealed_tokens (
			profile      TEXT PRIMARY KEY,
			generation   INTEGER NOT NULL,
			meta         BLOB NOT NULL,
			access       BLOB,
			refresh      BLOB,
			prev_refresh BLOB,
			secrets      BLOB,
			updated_at   INTEGER NOT NULL
		)`,
		`CREATE TABLE leases (
			profile    TEXT PRIMARY KEY,
			owner      TEXT NOT NULL,
			fence      INTEGER NOT NULL,
			expires_at INTEGER NOT NULL
		)`,
		`CREATE TABLE audit (
			id          INTEGER PRIMARY KEY AUTOINCREMENT,
			at          INTEGER NOT NULL,
			profile     TEXT NOT NULL,
			action      TEXT NOT NULL,
			grant_type  TEXT NOT NULL DEFAULT '',
			outcome     TEXT NOT NULL,
			error_class TEXT NOT NULL DEFAULT '',
			error       TEXT NOT NULL DEFAULT '',
			pid         INTEGER NOT NULL DEFAULT 0
		)`,
		`CREATE INDEX audit_by_profile ON audit (profile, id)`,
	)(ctx, tx, s); err != nil {
		return err
	}
	rows, err := tx.QueryContext(ctx, `SELECT profile, generation, data, updated_at FROM tokens`)
	if err != nil {
		return err
	}
	type old struct {
		profile string
		gen     int64
		data    []byte
		updated int64
	}
	var olds []old
	for rows.Next() {
		var o old
		if err := rows.Scan(&o.profile, &o.gen, &o.data, &o.updated); err != nil {
			rows.Close()
			return err
		}
		olds = append(olds, o)
	}
	rows.Close()
	for _, o := range olds {
		var t token.Token
		if err := json.Unmarshal(o.data, &t); err != nil {
			return err
		}
		r, err := store.Seal(s, o.profile, o.gen, &t)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO sealed_tokens VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			o.profile, o.gen, r.Meta, r.Access, r.Refresh, r.PrevRefresh, r.Secrets, o.updated); err != nil {
			return err
		}
	}
	return execAll(`DROP TABLE tokens`, `ALTER TABLE sealed_tokens RENAME TO tokens`)(ctx, tx, s)
}
