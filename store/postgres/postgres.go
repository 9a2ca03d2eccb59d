// Package postgres is the Store for several replicas: token state, leases,
// the audit log, rate-limit slots and spent quotas live in one PostgreSQL
// database, and replicas hear of each other's renewals by LISTEN/NOTIFY.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tokenbroker/tokenbroker/failure"
	"github.com/tokenbroker/tokenbroker/ratelimit"
	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/seal"
	"github.com/tokenbroker/tokenbroker/token"
)

// channel is the NOTIFY channel of token changes; the payload is the profile.
const channel = "tokenbroker_tokens"

// DB is a Store on PostgreSQL.
type DB struct {
	pool   *pgxpool.Pool
	sealer *seal.Sealer
	store.Rotator

	offset   atomic.Int64 // database clock minus this machine's, in nanoseconds
	offsetAt atomic.Int64 // when offset was measured (unix nanoseconds)
}

// Open connects, and migrates the schema under an advisory lock so that
// replicas starting together do not race.
func Open(ctx context.Context, dsn string, s *seal.Sealer) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, &failure.Error{Kind: failure.Config, Msg: "state: not a PostgreSQL connection string", Err: redact(err)}
	}
	cfg.MaxConns = max(cfg.MaxConns, 16)
	cfg.ConnConfig.ConnectTimeout = connectTimeout
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, unavailable(err)
	}
	d := &DB{pool: pool, sealer: s}
	d.Rotator = d.rotator()
	if err := d.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return d, nil
}

// Every call to the database is bounded, so that a database that is
// gone, or a network that swallows packets (a blackhole), is noticed in
// seconds: the call fails as the state being unavailable, and the broker
// serves what it holds in memory.
const (
	connectTimeout = 3 * time.Second
	opTimeout      = 3 * time.Second
)

// op bounds one database call, within the caller's own deadline.
func (d *DB) op(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, opTimeout)
}

// redact keeps a password in a DSN out of error messages.
func redact(err error) error {
	msg := err.Error()
	if i := strings.Index(msg, "://"); i >= 0 {
		if j := strings.Index(msg[i:], "@"); j >= 0 {
			msg = msg[:i+3] + "…" + msg[i+j:]
		}
	}
	return errors.New(msg)
}

func unavailable(err error) error {
	if err == nil {
		return nil
	}
	var fe *failure.Error
	if errors.As(err, &fe) || errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrFenced) {
		return err
	}
	return &failure.Error{Kind: failure.Other, Msg: "the PostgreSQL state is unavailable", Err: store.Unavailable(redact(err)),
		Hint: "tokens in memory are served until they expire; check the database"}
}

// minReader is the oldest schema whose binaries can use the schema this
// one leaves: a migration that only adds keeps it; one that changes what
// older binaries read raises it to its own version. Schemas 2 to 4 only
// added.
var minReader = 1

// migrations are append-only; version i+1 is migrations[i].
var migrations = []string{
	`CREATE TABLE tokens (
		profile      text PRIMARY KEY,
		generation   bigint NOT NULL,
		meta         bytea NOT NULL,
		access       bytea,
		refresh      bytea,
		prev_refresh bytea,
		secrets      bytea,
		updated_at   timestamptz NOT NULL DEFAULT clock_timestamp()
	);
	CREATE INDEX tokens_updated ON tokens (updated_at);
	CREATE TABLE leases (
		profile    text PRIMARY KEY,
		owner      text NOT NULL,
		fence      bigint NOT NULL,
		expires_at timestamptz NOT NULL
	);
	CREATE TABLE audit (
		id          bigserial PRIMARY KEY,
		at          timestamptz NOT NULL,
		profile     text NOT NULL,
		action      text NOT NULL,
		grant_type  text NOT NULL DEFAULT '',
		outcome     text NOT NULL,
		error_class text NOT NULL DEFAULT '',
		error       text NOT NULL DEFAULT '',
		pid         integer NOT NULL DEFAULT 0
	);
	CREATE INDEX audit_by_profile ON audit (profile, id);
	CREATE TABLE rate_slots (
		key  text NOT NULL,
		slot timestamptz NOT NULL
	);
	CREATE INDEX rate_slots_by_key ON rate_slots (key, slot DESC);
	CREATE TABLE spent_quotas (
		key      text PRIMARY KEY,
		reset_at timestamptz NOT NULL
	);`,
	`CREATE TABLE deliveries (
		seq         bigserial PRIMARY KEY,
		profile     text NOT NULL,
		webhook     text NOT NULL,
		delivery_id text NOT NULL,
		service     text NOT NULL,
		ts          text NOT NULL,
		body        bytea NOT NULL,
		received_at timestamptz NOT NULL,
		forwarded   boolean NOT NULL DEFAULT false,
		UNIQUE (profile, delivery_id)
	);
	CREATE INDEX deliveries_pending ON deliveries (profile, webhook, forwarded, seq);
	CREATE TABLE webhook_tokens (
		profile text NOT NULL,
		webhook text NOT NULL,
		sealed  bytea NOT NULL,
		PRIMARY KEY (profile, webhook)
	);`,
	// Deliveries are also known by their signature (older rows have none).
	`ALTER TABLE deliveries ADD COLUMN mac text;
	CREATE UNIQUE INDEX deliveries_by_mac ON deliveries (profile, mac);`,
	// Token requests held back at a vendor's request (Retry-After).
	`CREATE TABLE holds (
		profile  text PRIMARY KEY,
		until_at timestamptz NOT NULL
	);`,
	// The refresh-token seeds taken in, by hash.
	`CREATE TABLE seeds (
		profile  text NOT NULL,
		hash     text NOT NULL,
		taken_at timestamptz NOT NULL,
		PRIMARY KEY (profile, hash)
	);`,
	// Leased shares of the rate limits; a reservation made one by one
	// (holder '') comes from a release without shares.
	`CREATE TABLE rate_shares (
		key           text NOT NULL,
		holder        text NOT NULL,
		slots         integer NOT NULL,
		expires_at    timestamptz NOT NULL,
		cooling       integer NOT NULL,
		cooling_until timestamptz NOT NULL,
		PRIMARY KEY (key, holder)
	);
	ALTER TABLE rate_slots ADD COLUMN holder text NOT NULL DEFAULT '';`,
	// The tenants discovered for MSP profiles, a list per profile.
	`CREATE TABLE tenant_lists (
		profile text PRIMARY KEY,
		list    bytea NOT NULL,
		at      timestamptz NOT NULL
	);`,
	// The serve client whose call caused an audit event.
	`ALTER TABLE audit ADD COLUMN client text NOT NULL DEFAULT '';`,
	// Proxied calls per MSP tenant.
	`CREATE TABLE tenant_calls (
		profile   text NOT NULL,
		tenant    text NOT NULL,
		calls     bigint NOT NULL,
		last_call timestamptz NOT NULL,
		PRIMARY KEY (profile, tenant)
	);`,
	// The master keys a rotation left (`tokenbroker rekey`).
	`CREATE TABLE master_keys (
		id         text PRIMARY KEY,
		state      text NOT NULL,
		wrapped    bytea,
		wrapped_by text NOT NULL DEFAULT '',
		at         timestamptz NOT NULL
	);`,
}

// migrationLock is the advisory lock key of schema changes.
const migrationLock = 0x746f6b656e62 // "tokenb"

func (d *DB) migrate(ctx context.Context) error {
	tx, err := d.pool.Begin(ctx)
	if err != nil {
		return unavailable(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
		return unavailable(err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS tokenbroker_schema (version integer NOT NULL)`); err != nil {
		return unavailable(err)
	}
	// Which binaries may still use the schema (an older release inserts
	// its version alone, and the column's default says it cannot tell).
	if _, err := tx.Exec(ctx, `ALTER TABLE tokenbroker_schema ADD COLUMN IF NOT EXISTS min_reader integer NOT NULL DEFAULT 0`); err != nil {
		return unavailable(err)
	}
	var v, floor int
	if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0), coalesce(max(min_reader), 0) FROM tokenbroker_schema`).Scan(&v, &floor); err != nil {
		return unavailable(err)
	}
	if v > len(migrations) {
		// A newer replica migrated: run on it if it says binaries of this
		// schema can, so replicas are upgraded one at a time.
		if floor >= 1 && floor <= len(migrations) {
			return nil
		}
		return &failure.Error{Kind: failure.Other, Msg: fmt.Sprintf("the PostgreSQL state was written by a newer tokenbroker (schema %d, which needs a tokenbroker that knows schema %d or later; this one knows %d)", v, max(floor, v), len(migrations)),
			Hint: "upgrade tokenbroker"}
	}
	for i := v; i < len(migrations); i++ {
		if _, err := tx.Exec(ctx, migrations[i]); err != nil {
			return unavailable(fmt.Errorf("migration to schema %d: %w", i+1, err))
		}
	}
	if _, err := tx.Exec(ctx, `DELETE FROM tokenbroker_schema`); err != nil {
		return unavailable(err)
	}
	// A floor raised since (a rotation: keysSchema) is kept.
	if _, err := tx.Exec(ctx, `INSERT INTO tokenbroker_schema (version, min_reader) VALUES ($1, $2)`, len(migrations), max(minReader, min(floor, len(migrations)))); err != nil {
		return unavailable(err)
	}
	return unavailable(tx.Commit(ctx))
}

// Get implements store.Store.
func (d *DB) Get(ctx context.Context, profile string) (*token.Token, error) {
	ctx, cancel := d.op(ctx)
	defer cancel()
	var gen int64
	var r store.Row
	err := d.pool.QueryRow(ctx, `SELECT generation, meta, access, refresh, prev_refresh, secrets FROM tokens WHERE profile = $1`, profile).
		Scan(&gen, &r.Meta, &r.Access, &r.Refresh, &r.PrevRefresh, &r.Secrets)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, unavailable(err)
	}
	return store.UnsealFollowing(ctx, d, func() (*token.Token, error) { return store.Unseal(d.sealer, profile, gen, r) })
}

// lockKey turns a name into an advisory lock key.
func lockKey(kind, name string) int64 {
	h := fnv.New64a()
	h.Write([]byte(kind + "\x00" + name))
	return int64(h.Sum64())
}

// Put implements store.Store, and notifies the other replicas.
func (d *DB) Put(ctx context.Context, profile string, tok *token.Token, expect int64, lease *store.Lease) error {
	ctx, cancel := d.op(ctx)
	defer cancel()
	tx, err := d.pool.Begin(ctx)
	if err != nil {
		return unavailable(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey("token", profile)); err != nil {
		return unavailable(err)
	}
	var gen int64
	err = tx.QueryRow(ctx, `SELECT generation FROM tokens WHERE profile = $1`, profile).Scan(&gen)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return unavailable(err)
	}
	if gen != expect {
		return store.ErrConflict
	}
	if lease == nil {
		return store.ErrNoLease
	}
	var owner string
	var fence int64
	if err := tx.QueryRow(ctx, `SELECT owner, fence FROM leases WHERE profile = $1`, profile).Scan(&owner, &fence); err != nil || owner != lease.Owner || fence != lease.Fence {
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
	if _, err := tx.Exec(ctx, `INSERT INTO tokens (profile, generation, meta, access, refresh, prev_refresh, secrets, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, clock_timestamp())
		ON CONFLICT (profile) DO UPDATE SET generation = excluded.generation, meta = excluded.meta, access = excluded.access,
			refresh = excluded.refresh, prev_refresh = excluded.prev_refresh, secrets = excluded.secrets, updated_at = excluded.updated_at`,
		profile, expect+1, r.Meta, r.Access, r.Refresh, r.PrevRefresh, r.Secrets); err != nil {
		return unavailable(err)
	}
	if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, channel, profile); err != nil {
		return unavailable(err)
	}
	if err := tx.Commit(ctx); err != nil {
		return unavailable(err)
	}
	tok.Generation = expect + 1
	return nil
}

// Delete implements store.Store.
func (d *DB) Delete(ctx context.Context, profile string) error {
	ctx, cancel := d.op(ctx)
	defer cancel()
	tx, err := d.pool.Begin(ctx)
	if err != nil {
		return unavailable(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `DELETE FROM tokens WHERE profile = $1`, profile); err != nil {
		return unavailable(err)
	}
	if _, err := tx.Exec(ctx, `SELECT pg_notify($1, $2)`, channel, profile); err != nil {
		return unavailable(err)
	}
	return unavailable(tx.Commit(ctx))
}

// Profiles implements store.Store.
func (d *DB) Profiles(ctx context.Context) ([]string, error) {
	ctx, cancel := d.op(ctx)
	defer cancel()
	rows, err := d.pool.Query(ctx, `SELECT profile FROM tokens ORDER BY profile`)
	if err != nil {
		return nil, unavailable(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	return out, unavailable(err)
}

// Acquire implements store.Store, on the database's clock so that replicas
// with skewed clocks agree on expiry.
func (d *DB) Acquire(ctx context.Context, profile, owner string, ttl time.Duration) (*store.Lease, error) {
	return store.WaitForLease(ctx, profile, func() (*store.Lease, error) { return d.tryAcquire(ctx, profile, owner, ttl) })
}

func (d *DB) tryAcquire(ctx context.Context, profile, owner string, ttl time.Duration) (*store.Lease, error) {
	ctx, cancel := d.op(ctx)
	defer cancel()
	tx, err := d.pool.Begin(ctx)
	if err != nil {
		return nil, unavailable(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey("lease", profile)); err != nil {
		return nil, unavailable(err)
	}
	var now, expires time.Time
	if err := tx.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&now); err != nil {
		return nil, unavailable(err)
	}
	var holder string
	var fence int64
	err = tx.QueryRow(ctx, `SELECT owner, fence, expires_at FROM leases WHERE profile = $1`, profile).Scan(&holder, &fence, &expires)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, unavailable(err)
	}
	live := expires.After(now)
	if holder != "" && holder != owner && live && !store.OwnerDead(holder) {
		return nil, nil
	}
	l := &store.Lease{Profile: profile, Owner: owner, Fence: fence + 1, Expires: now.Add(ttl)}
	if _, err := tx.Exec(ctx, `INSERT INTO leases (profile, owner, fence, expires_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (profile) DO UPDATE SET owner = excluded.owner, fence = excluded.fence, expires_at = excluded.expires_at`,
		profile, owner, l.Fence, l.Expires); err != nil {
		return nil, unavailable(err)
	}
	return l, unavailable(tx.Commit(ctx))
}

// Release implements store.Store; the row stays, so fences keep growing.
func (d *DB) Release(ctx context.Context, l *store.Lease) error {
	ctx, cancel := d.op(ctx)
	defer cancel()
	if l == nil {
		return nil
	}
	_, err := d.pool.Exec(ctx, `UPDATE leases SET expires_at = 'epoch' WHERE profile = $1 AND owner = $2 AND fence = $3`, l.Profile, l.Owner, l.Fence)
	return unavailable(err)
}

// Append implements store.Store.
func (d *DB) Append(ctx context.Context, e store.Event) error {
	ctx, cancel := d.op(ctx)
	defer cancel()
	_, err := d.pool.Exec(ctx, `INSERT INTO audit (at, profile, action, grant_type, outcome, error_class, error, pid, client) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		e.Time, e.Profile, e.Action, e.Grant, e.Outcome, e.ErrorClass, e.Error, e.PID, e.Client)
	return unavailable(err)
}

// Events implements store.Store.
func (d *DB) Events(ctx context.Context, profile string, limit int) ([]store.Event, error) {
	ctx, cancel := d.op(ctx)
	defer cancel()
	const cols = `SELECT at, profile, action, grant_type, outcome, error_class, error, pid, client FROM audit`
	var rows pgx.Rows
	var err error
	if profile == "" {
		rows, err = d.pool.Query(ctx, cols+` ORDER BY id DESC LIMIT $1`, limit)
	} else {
		// One condition, so a cached generic plan still uses the
		// (profile, id) index.
		rows, err = d.pool.Query(ctx, cols+` WHERE profile = $1 ORDER BY id DESC LIMIT $2`, profile, limit)
	}
	if err != nil {
		return nil, unavailable(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Event, error) {
		var e store.Event
		err := r.Scan(&e.Time, &e.Profile, &e.Action, &e.Grant, &e.Outcome, &e.ErrorClass, &e.Error, &e.PID, &e.Client)
		return e, err
	})
	return out, unavailable(err)
}

// lateSlot is how far past its slot a reservation may come back and still
// be used; a later one is given up and a new slot taken, since sending it
// now could squeeze n+1 calls into the vendor's window.
const lateSlot = 10 * time.Millisecond

// Reserve implements store.Limits: the rolling-window reservation of
// ratelimit.Window (paced), kept in the database so every replica shares it.
func (d *DB) Reserve(ctx context.Context, key string, n int, window, maxWait time.Duration) (time.Duration, error) {
	for {
		slot, err := d.reserve(ctx, key, n, window, maxWait)
		if err != nil {
			return 0, err
		}
		// The slot is a moment on the database's clock: wait until that
		// moment here, not for a span counted from whenever this answer
		// arrived, so lock waits and commit latency do not squeeze calls.
		if wait := time.Until(slot.Add(-d.clockOffset(ctx))); wait > -lateSlot {
			return max(0, wait), nil
		}
	}
}

func (d *DB) reserve(ctx context.Context, key string, n int, window, maxWait time.Duration) (time.Time, error) {
	ctx, cancel := d.op(ctx)
	defer cancel()
	tx, err := d.pool.Begin(ctx)
	if err != nil {
		return time.Time{}, unavailable(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey("rate", key)); err != nil {
		return time.Time{}, unavailable(err)
	}
	var now time.Time
	var nth, newest *time.Time
	if err := tx.QueryRow(ctx, `SELECT clock_timestamp(),
		(SELECT slot FROM rate_slots WHERE key = $1 ORDER BY slot DESC OFFSET $2 LIMIT 1),
		(SELECT max(slot) FROM rate_slots WHERE key = $1)`, key, n-1).Scan(&now, &nth, &newest); err != nil {
		return time.Time{}, unavailable(err)
	}
	// As ratelimit.Window: n per window, and paced at least window/n apart.
	slot := now
	if nth != nil && nth.Add(window).After(slot) {
		slot = nth.Add(window)
	}
	if newest != nil && newest.Add(window/time.Duration(n)).After(slot) {
		slot = newest.Add(window / time.Duration(n))
	}
	if wait := slot.Sub(now); wait > maxWait {
		return time.Time{}, &ratelimit.Refused{RetryAfter: wait, Reason: "rate limit queue is full"}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO rate_slots (key, slot, holder) VALUES ($1, $2, 'shares')`, key, slot); err != nil {
		return time.Time{}, unavailable(err)
	}
	if rand.N(64) == 0 { // now and then, forget slots no window can see
		if _, err := tx.Exec(ctx, `DELETE FROM rate_slots WHERE key = $1 AND slot < $2`, key, now.Add(-2*window)); err != nil {
			return time.Time{}, unavailable(err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return time.Time{}, unavailable(err)
	}
	return slot, nil
}

// LeaseShares implements ratelimit.Leaser: it renews a replica's shares
// of accounts' limits (ratelimit.Allot) in one transaction on the
// database's clock, under a lock on each account (taken in key order, so
// replicas cannot deadlock). While a release without shares still
// reserves an account's calls one by one, it grants no slots of it and
// says so (Legacy).
func (d *DB) LeaseShares(ctx context.Context, asks []ratelimit.ShareAsk) ([]ratelimit.ShareGrant, error) {
	ctx, cancel := d.op(ctx)
	defer cancel()
	tx, err := d.pool.Begin(ctx)
	if err != nil {
		return nil, unavailable(err)
	}
	defer tx.Rollback(ctx)
	var accounts []string
	for _, a := range asks {
		accounts = append(accounts, a.Account)
	}
	locks := slices.Clone(accounts)
	slices.Sort(locks)
	locks = slices.Compact(locks)
	keys := make([]int64, len(locks))
	for i, a := range locks {
		keys[i] = lockKey("share", a)
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS t(k)`, keys); err != nil {
		return nil, unavailable(err)
	}
	var now time.Time
	if err := tx.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&now); err != nil {
		return nil, unavailable(err)
	}
	rows, err := tx.Query(ctx, `SELECT key, holder, slots, expires_at, cooling, cooling_until FROM rate_shares WHERE key = ANY($1)`, locks)
	if err != nil {
		return nil, unavailable(err)
	}
	held := map[string][]ratelimit.ShareRow{}
	var key string
	var r ratelimit.ShareRow
	_, err = pgx.ForEachRow(rows, []any{&key, &r.Holder, &r.Slots, &r.Expires, &r.Cooling, &r.CoolingUntil}, func() error {
		held[key] = append(held[key], r)
		return nil
	})
	if err != nil {
		return nil, unavailable(err)
	}
	// Accounts an older release reserves one by one (holder '').
	legacy := map[string]bool{}
	windows := make([]float64, len(asks))
	for i, a := range asks {
		windows[i] = a.Window.Seconds()
	}
	lrows, err := tx.Query(ctx, `SELECT DISTINCT a.key FROM unnest($1::text[], $2::float8[]) AS a(key, w)
		JOIN rate_slots s ON s.key = a.key AND s.holder = '' AND s.slot > $3::timestamptz - make_interval(secs => a.w)`, accounts, windows, now)
	if err != nil {
		return nil, unavailable(err)
	}
	_, err = pgx.ForEachRow(lrows, []any{&key}, func() error { legacy[key] = true; return nil })
	if err != nil {
		return nil, unavailable(err)
	}
	grants := make([]ratelimit.ShareGrant, len(asks))
	for i, a := range asks {
		if legacy[a.Account] {
			a.N = 0
		}
		held[a.Account], grants[i] = ratelimit.Allot(held[a.Account], a, now)
		grants[i].Legacy = legacy[a.Account]
	}
	if _, err := tx.Exec(ctx, `DELETE FROM rate_shares WHERE key = ANY($1)`, locks); err != nil {
		return nil, unavailable(err)
	}
	var ks, holders []string
	var slots, cooling []int32
	var expires, until []time.Time
	for _, k := range locks {
		for _, r := range held[k] {
			ks, holders, slots, expires = append(ks, k), append(holders, r.Holder), append(slots, int32(r.Slots)), append(expires, r.Expires)
			cooling, until = append(cooling, int32(r.Cooling)), append(until, r.CoolingUntil)
		}
	}
	if len(ks) > 0 {
		if _, err := tx.Exec(ctx, `INSERT INTO rate_shares (key, holder, slots, expires_at, cooling, cooling_until)
			SELECT * FROM unnest($1::text[], $2::text[], $3::integer[], $4::timestamptz[], $5::integer[], $6::timestamptz[])`,
			ks, holders, slots, expires, cooling, until); err != nil {
			return nil, unavailable(err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, unavailable(err)
	}
	return grants, nil
}

// clockOffset is the database clock minus this machine's, measured NTP-style
// (the sample with the shortest round trip) and refreshed every 30 s.
func (d *DB) clockOffset(ctx context.Context) time.Duration {
	ctx, cancel := d.op(ctx)
	defer cancel()
	if at := d.offsetAt.Load(); at != 0 && time.Since(time.Unix(0, at)) < 30*time.Second {
		return time.Duration(d.offset.Load())
	}
	best, bestRTT := time.Duration(0), time.Duration(1<<62)
	for range 3 {
		var db time.Time
		t0 := time.Now()
		if err := d.pool.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&db); err != nil {
			return time.Duration(d.offset.Load())
		}
		rtt := time.Since(t0)
		if rtt < bestRTT {
			best, bestRTT = db.Sub(t0.Add(rtt/2)), rtt
		}
	}
	d.offset.Store(int64(best))
	d.offsetAt.Store(time.Now().UnixNano())
	return best
}

// SpendQuota implements store.Limits: the vendor said the daily quota of key
// is spent until resetAt.
func (d *DB) SpendQuota(ctx context.Context, key string, resetAt time.Time) error {
	ctx, cancel := d.op(ctx)
	defer cancel()
	_, err := d.pool.Exec(ctx, `INSERT INTO spent_quotas (key, reset_at) VALUES ($1, $2)
		ON CONFLICT (key) DO UPDATE SET reset_at = excluded.reset_at`, key, resetAt)
	return unavailable(err)
}

// QuotaSpent implements store.Limits: until when key's quota is spent
// (zero when it is not).
func (d *DB) QuotaSpent(ctx context.Context, key string) (time.Time, error) {
	ctx, cancel := d.op(ctx)
	defer cancel()
	var at time.Time
	err := d.pool.QueryRow(ctx, `SELECT reset_at FROM spent_quotas WHERE key = $1 AND reset_at > clock_timestamp()`, key).Scan(&at)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, nil
	}
	return at, unavailable(err)
}

// Close implements store.Store.
func (d *DB) Close() error {
	d.pool.Close()
	return nil
}

func init() {
	store.Register("postgres", store.Driver{
		Open: func(ctx context.Context, dsn string, s *seal.Sealer) (store.Store, error) {
			return Open(ctx, dsn, s)
		},
		KeyDir: func(string) string { return "" },
	})
}

// HoldUntil implements store.Holds.
func (d *DB) HoldUntil(ctx context.Context, profile string) (time.Time, error) {
	ctx, cancel := d.op(ctx)
	defer cancel()
	var at time.Time
	err := d.pool.QueryRow(ctx, `SELECT until_at FROM holds WHERE profile = $1`, profile).Scan(&at)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, nil
	}
	return at, unavailable(err)
}

// SetHold implements store.Holds.
func (d *DB) SetHold(ctx context.Context, profile string, until time.Time) error {
	ctx, cancel := d.op(ctx)
	defer cancel()
	_, err := d.pool.Exec(ctx, `INSERT INTO holds (profile, until_at) VALUES ($1, $2)
		ON CONFLICT (profile) DO UPDATE SET until_at = greatest(holds.until_at, excluded.until_at)`, profile, until)
	return unavailable(err)
}

// TenantList implements store.TenantLists.
func (d *DB) TenantList(ctx context.Context, profile string) ([]byte, time.Time, error) {
	ctx, cancel := d.op(ctx)
	defer cancel()
	var list []byte
	var at time.Time
	err := d.pool.QueryRow(ctx, `SELECT list, at FROM tenant_lists WHERE profile = $1`, profile).Scan(&list, &at)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, time.Time{}, nil
	}
	return list, at, unavailable(err)
}

// PutTenantList implements store.TenantLists.
func (d *DB) PutTenantList(ctx context.Context, profile string, list []byte, at time.Time) error {
	ctx, cancel := d.op(ctx)
	defer cancel()
	_, err := d.pool.Exec(ctx, `INSERT INTO tenant_lists (profile, list, at) VALUES ($1, $2, $3)
		ON CONFLICT (profile) DO UPDATE SET list = excluded.list, at = excluded.at`, profile, list, at)
	return unavailable(err)
}

// AddTenantCalls implements store.TenantCalls.
func (d *DB) AddTenantCalls(ctx context.Context, profile string, calls map[string]store.TenantCall) error {
	ctx, cancel := d.op(ctx)
	defer cancel()
	var tenants []string
	var counts []int64
	var lasts []time.Time
	for t, c := range calls {
		tenants, counts, lasts = append(tenants, t), append(counts, c.Calls), append(lasts, c.Last)
	}
	_, err := d.pool.Exec(ctx, `INSERT INTO tenant_calls (profile, tenant, calls, last_call)
		SELECT $1, * FROM unnest($2::text[], $3::bigint[], $4::timestamptz[])
		ON CONFLICT (profile, tenant) DO UPDATE SET calls = tenant_calls.calls + excluded.calls,
			last_call = greatest(tenant_calls.last_call, excluded.last_call)`, profile, tenants, counts, lasts)
	return unavailable(err)
}

// TenantCalls implements store.TenantCalls.
func (d *DB) TenantCalls(ctx context.Context, profile string) (map[string]store.TenantCall, error) {
	ctx, cancel := d.op(ctx)
	defer cancel()
	rows, err := d.pool.Query(ctx, `SELECT tenant, calls, last_call FROM tenant_calls WHERE profile = $1`, profile)
	if err != nil {
		return nil, unavailable(err)
	}
	out := map[string]store.TenantCall{}
	var t string
	var c store.TenantCall
	_, err = pgx.ForEachRow(rows, []any{&t, &c.Calls, &c.Last}, func() error { out[t] = c; return nil })
	return out, unavailable(err)
}

// SeedTaken implements store.Seeds.
func (d *DB) SeedTaken(ctx context.Context, profile, hash string) (time.Time, bool, error) {
	ctx, cancel := d.op(ctx)
	defer cancel()
	var at time.Time
	err := d.pool.QueryRow(ctx, `SELECT taken_at FROM seeds WHERE profile = $1 AND hash = $2`, profile, hash).Scan(&at)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, false, nil
	}
	return at, err == nil, unavailable(err)
}

// TakeSeed implements store.Seeds.
func (d *DB) TakeSeed(ctx context.Context, profile, hash string, at time.Time) error {
	ctx, cancel := d.op(ctx)
	defer cancel()
	_, err := d.pool.Exec(ctx, `INSERT INTO seeds (profile, hash, taken_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`, profile, hash, at)
	return unavailable(err)
}
