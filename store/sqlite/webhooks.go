package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/tokenbroker/tokenbroker/store"
)

// Enqueue implements store.Webhooks.
func (d *DB) Enqueue(ctx context.Context, dl *store.Delivery) (bool, error) {
	res, err := d.db.ExecContext(ctx, `INSERT INTO deliveries (profile, webhook, delivery_id, service, ts, body, received_at, mac)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		dl.Profile, dl.Webhook, dl.ID, dl.Service, dl.Timestamp, dl.Body, dl.ReceivedAt.UnixMilli(), nullable(dl.MAC))
	if err != nil {
		return false, d.describe(err)
	}
	n, err := res.RowsAffected()
	if err != nil || n == 0 {
		return false, d.describe(err)
	}
	dl.Seq, _ = res.LastInsertId()
	return true, nil
}

// Pending implements store.Webhooks.
func (d *DB) Pending(ctx context.Context, profile, webhook string, limit int) ([]store.Delivery, error) {
	rows, err := d.db.QueryContext(ctx, `SELECT seq, delivery_id, service, ts, body, received_at FROM deliveries
		WHERE profile = ? AND webhook = ? AND forwarded = 0 ORDER BY seq LIMIT ?`, profile, webhook, limit)
	if err != nil {
		return nil, d.describe(err)
	}
	defer rows.Close()
	var out []store.Delivery
	for rows.Next() {
		dl := store.Delivery{Profile: profile, Webhook: webhook}
		var at int64
		if err := rows.Scan(&dl.Seq, &dl.ID, &dl.Service, &dl.Timestamp, &dl.Body, &at); err != nil {
			return nil, d.describe(err)
		}
		dl.ReceivedAt = time.UnixMilli(at)
		out = append(out, dl)
	}
	return out, d.describe(rows.Err())
}

// Forwarded implements store.Webhooks, and forgets deliveries too old to
// be replayed.
func (d *DB) Forwarded(ctx context.Context, seqs []int64) error {
	if len(seqs) == 0 {
		return nil
	}
	args := make([]any, len(seqs))
	for i, s := range seqs {
		args[i] = s
	}
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return d.describe(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `UPDATE deliveries SET forwarded = 1 WHERE seq IN (?`+strings.Repeat(",?", len(seqs)-1)+`)`, args...); err != nil {
		return d.describe(err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM deliveries WHERE forwarded = 1 AND received_at < ?`,
		d.now().Add(-store.DeliveryRetention).UnixMilli()); err != nil {
		return d.describe(err)
	}
	return d.describe(tx.Commit())
}

// WebhookToken implements store.Webhooks.
func (d *DB) WebhookToken(ctx context.Context, profile, webhook string) (*store.WebhookToken, error) {
	var sealed []byte
	err := d.db.QueryRowContext(ctx, `SELECT sealed FROM webhook_tokens WHERE profile = ? AND webhook = ?`, profile, webhook).Scan(&sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, d.describe(err)
	}
	return store.UnsealFollowing(ctx, d, func() (*store.WebhookToken, error) {
		return store.UnsealWebhookToken(d.sealer, profile, webhook, sealed)
	})
}

// PutWebhookToken implements store.Webhooks.
func (d *DB) PutWebhookToken(ctx context.Context, profile, webhook string, t *store.WebhookToken) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return d.describe(err)
	}
	defer tx.Rollback()
	sealer, err := d.checkPrimary(ctx, tx)
	if err != nil {
		return err
	}
	sealed, err := store.SealWebhookToken(sealer, profile, webhook, t)
	if err != nil {
		return err
	}
	if _, err = tx.ExecContext(ctx, `INSERT INTO webhook_tokens (profile, webhook, sealed) VALUES (?, ?, ?)
		ON CONFLICT (profile, webhook) DO UPDATE SET sealed = excluded.sealed`, profile, webhook, sealed); err != nil {
		return d.describe(err)
	}
	return d.describe(tx.Commit())
}

// nullable stores "" as NULL, which a unique index does not compare.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}
