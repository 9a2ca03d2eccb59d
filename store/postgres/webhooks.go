package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/tokenbroker/tokenbroker/store"
)

// Enqueue implements store.Webhooks.
func (d *DB) Enqueue(ctx context.Context, dl *store.Delivery) (bool, error) {
	ctx, cancel := d.op(ctx)
	defer cancel()
	var mac *string
	if dl.MAC != "" {
		mac = &dl.MAC
	}
	err := d.pool.QueryRow(ctx, `INSERT INTO deliveries (profile, webhook, delivery_id, service, ts, body, received_at, mac)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING RETURNING seq`,
		dl.Profile, dl.Webhook, dl.ID, dl.Service, dl.Timestamp, dl.Body, dl.ReceivedAt, mac).Scan(&dl.Seq)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil // seen before
	}
	return err == nil, unavailable(err)
}

// Pending implements store.Webhooks.
func (d *DB) Pending(ctx context.Context, profile, webhook string, limit int) ([]store.Delivery, error) {
	ctx, cancel := d.op(ctx)
	defer cancel()
	rows, err := d.pool.Query(ctx, `SELECT seq, delivery_id, service, ts, body, received_at FROM deliveries
		WHERE profile = $1 AND webhook = $2 AND NOT forwarded ORDER BY seq LIMIT $3`, profile, webhook, limit)
	if err != nil {
		return nil, unavailable(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (store.Delivery, error) {
		dl := store.Delivery{Profile: profile, Webhook: webhook}
		err := r.Scan(&dl.Seq, &dl.ID, &dl.Service, &dl.Timestamp, &dl.Body, &dl.ReceivedAt)
		return dl, err
	})
	return out, unavailable(err)
}

// Forwarded implements store.Webhooks, and forgets deliveries too old to
// be replayed.
func (d *DB) Forwarded(ctx context.Context, seqs []int64) error {
	ctx, cancel := d.op(ctx)
	defer cancel()
	if len(seqs) == 0 {
		return nil
	}
	if _, err := d.pool.Exec(ctx, `UPDATE deliveries SET forwarded = true WHERE seq = ANY($1)`, seqs); err != nil {
		return unavailable(err)
	}
	_, err := d.pool.Exec(ctx, `DELETE FROM deliveries WHERE forwarded AND received_at < clock_timestamp() - $1::interval`,
		store.DeliveryRetention.String())
	return unavailable(err)
}

// WebhookToken implements store.Webhooks.
func (d *DB) WebhookToken(ctx context.Context, profile, webhook string) (*store.WebhookToken, error) {
	ctx, cancel := d.op(ctx)
	defer cancel()
	var sealed []byte
	err := d.pool.QueryRow(ctx, `SELECT sealed FROM webhook_tokens WHERE profile = $1 AND webhook = $2`, profile, webhook).Scan(&sealed)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, unavailable(err)
	}
	return store.UnsealFollowing(ctx, d, func() (*store.WebhookToken, error) {
		return store.UnsealWebhookToken(d.sealer, profile, webhook, sealed)
	})
}

// PutWebhookToken implements store.Webhooks.
func (d *DB) PutWebhookToken(ctx context.Context, profile, webhook string, t *store.WebhookToken) error {
	ctx, cancel := d.op(ctx)
	defer cancel()
	tx, err := d.pool.Begin(ctx)
	if err != nil {
		return unavailable(err)
	}
	defer tx.Rollback(ctx)
	sealer, err := d.checkPrimary(ctx, tx)
	if err != nil {
		return err
	}
	sealed, err := store.SealWebhookToken(sealer, profile, webhook, t)
	if err != nil {
		return err
	}
	if _, err = tx.Exec(ctx, `INSERT INTO webhook_tokens (profile, webhook, sealed) VALUES ($1, $2, $3)
		ON CONFLICT (profile, webhook) DO UPDATE SET sealed = excluded.sealed`, profile, webhook, sealed); err != nil {
		return unavailable(err)
	}
	return unavailable(tx.Commit(ctx))
}
