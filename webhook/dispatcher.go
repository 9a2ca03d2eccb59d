package webhook

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/tokenbroker/tokenbroker/store"
)

// Route is one webhook's way to its sink.
type Route struct {
	Profile, Webhook string
	Sink             Sink
}

// Dispatcher forwards queued deliveries to their sinks, in order, marking
// them forwarded only after the sink took them. With several replicas, a
// webhook's queue is drained by whichever replica holds its lease.
type Dispatcher struct {
	Store   store.Store // must also be a store.Webhooks
	Owner   string
	Log     *slog.Logger
	Observe Observer

	mu     sync.Mutex
	routes []Route
	wake   chan struct{}
	once   sync.Once
}

// Tuning of the dispatcher.
const (
	batch        = 500
	pollEvery    = time.Second
	sinkBackoff  = 2 * time.Second
	leaseFor     = 30 * time.Second
	leaseTryWait = 20 * time.Millisecond
)

func (d *Dispatcher) init() { d.once.Do(func() { d.wake = make(chan struct{}, 1) }) }

// SetRoutes replaces the routes (after a config reload), closing old sinks.
func (d *Dispatcher) SetRoutes(routes []Route) {
	d.mu.Lock()
	old := d.routes
	d.routes = routes
	d.mu.Unlock()
	for _, r := range old {
		r.Sink.Close()
	}
	d.Wake()
}

// Wake asks for a round now (a delivery was queued).
func (d *Dispatcher) Wake() {
	d.init()
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Run forwards until ctx ends.
func (d *Dispatcher) Run(ctx context.Context) {
	d.init()
	obs := d.Observe
	if obs == nil {
		obs = noObserver{}
	}
	q := d.Store.(store.Webhooks)
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	failedUntil := map[string]time.Time{}
	for {
		d.mu.Lock()
		routes := d.routes
		d.mu.Unlock()
		for _, r := range routes {
			key := r.Profile + "\x00" + r.Webhook
			if time.Now().Before(failedUntil[key]) {
				continue
			}
			if err := d.drain(ctx, q, r, obs); err != nil && ctx.Err() == nil {
				obs.Failed(r.Profile)
				if d.Log != nil {
					d.Log.Warn("forwarding webhook deliveries failed, will retry", "profile", r.Profile, "webhook", r.Webhook, "error", err)
				}
				failedUntil[key] = time.Now().Add(sinkBackoff)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-d.wake:
		case <-t.C:
		}
	}
}

// drain forwards a route's pending deliveries, under its lease.
func (d *Dispatcher) drain(ctx context.Context, q store.Webhooks, r Route, obs Observer) error {
	lctx, cancel := context.WithTimeout(ctx, leaseTryWait)
	lease, err := d.Store.Acquire(lctx, "webhook\x00"+r.Profile+"\x00"+r.Webhook, d.Owner, leaseFor)
	cancel()
	if err != nil {
		return nil // another replica is forwarding this webhook
	}
	defer d.Store.Release(context.WithoutCancel(ctx), lease)
	for ctx.Err() == nil {
		ds, err := q.Pending(ctx, r.Profile, r.Webhook, batch)
		if err != nil || len(ds) == 0 {
			return err
		}
		if err := r.Sink.Deliver(ctx, ds); err != nil {
			return err
		}
		seqs := make([]int64, len(ds))
		for i, dl := range ds {
			seqs[i] = dl.Seq
		}
		if err := q.Forwarded(ctx, seqs); err != nil {
			return err
		}
		obs.Forwarded(r.Profile, len(ds))
		if len(ds) < batch {
			return nil
		}
	}
	return nil
}
