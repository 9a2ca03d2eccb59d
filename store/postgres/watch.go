package postgres

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/jackc/pgx/v5"
)

// Watch tells changed about every token another replica writes: at once by
// LISTEN/NOTIFY, and by polling as a fallback for notifications lost while
// the listening connection was down. changed("") means anything may have
// changed (after a reconnect). It returns when ctx ends.
func (d *DB) Watch(ctx context.Context, changed func(profile string)) {
	go d.listen(ctx, changed)
	go d.poll(ctx, changed)
}

// listenQuiet is how long the LISTEN connection may be quiet before it is
// pinged.
const listenQuiet = 5 * time.Second

// pollEvery is how often the fallback looks for changes.
const pollEvery = 10 * time.Second

func (d *DB) listen(ctx context.Context, changed func(string)) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		conn, err := pgx.ConnectConfig(ctx, d.pool.Config().ConnConfig.Copy())
		if err == nil {
			_, err = conn.Exec(ctx, "LISTEN "+channel)
		}
		if err == nil {
			backoff = 100 * time.Millisecond
			changed("") // notifications may have been missed while disconnected
			for {
				// A quiet connection is pinged now and then: over a network
				// that swallows packets, a LISTEN would otherwise wait for
				// ever on a connection that is gone.
				wctx, cancel := context.WithTimeout(ctx, listenQuiet)
				n, werr := conn.WaitForNotification(wctx)
				cancel()
				if werr == nil {
					changed(n.Payload)
					continue
				}
				if ctx.Err() != nil || !errors.Is(werr, context.DeadlineExceeded) {
					break
				}
				pctx, pcancel := context.WithTimeout(ctx, opTimeout)
				perr := conn.Ping(pctx)
				pcancel()
				if perr != nil {
					break
				}
			}
		}
		if conn != nil {
			conn.Close(context.Background())
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff/2 + rand.N(backoff)):
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

func (d *DB) poll(ctx context.Context, changed func(string)) {
	var since time.Time
	if err := d.pool.QueryRow(ctx, `SELECT clock_timestamp()`).Scan(&since); err != nil {
		since = time.Now().Add(-pollEvery)
	}
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rows, err := d.pool.Query(ctx, `SELECT profile, updated_at FROM tokens WHERE updated_at > $1`, since)
		if err != nil {
			continue // the listener's reconnect will resynchronise
		}
		for rows.Next() {
			var p string
			var at time.Time
			if rows.Scan(&p, &at) == nil {
				changed(p)
				if at.After(since) {
					since = at
				}
			}
		}
		rows.Close()
	}
}
