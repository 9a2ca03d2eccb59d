package tokenbroker

import (
	"context"
	"time"

	tbclock "github.com/tokenbroker/tokenbroker/clock"
	"github.com/tokenbroker/tokenbroker/store"
)

// Events returns the audit log of a profile ("" for all), newest first.
func (b *Broker) Events(ctx context.Context, profile string, limit int) ([]store.Event, error) {
	if profile != "" {
		if _, err := b.cfg.Profile(profile); err != nil {
			return nil, err
		}
	}
	st, err := b.store()
	if err != nil {
		return nil, err
	}
	return st.Events(ctx, profile, limit)
}

// Clock is the broker's one time source (Options.Clock).
func (b *Broker) Clock() tbclock.Clock { return b.opts.Clock }

// Due says whether t is past the point at which the broker renews it
// ahead of its expiry (or keeps its refresh token alive). A valid token
// that is due is still handed out while its renewal is under way.
func (b *Broker) Due(t *Token) bool { return !b.fresh(t, b.opts.Now(), 0) }

// NextRenewal says when the broker means to renew the profile's token it
// holds in memory, and that token's lifetime; zero when it holds none, or
// one without an expiry. Safe for concurrent use.
func (b *Broker) NextRenewal(name string) (at time.Time, lifetime time.Duration) {
	c := b.mem(name)
	if c == nil {
		return time.Time{}, 0
	}
	return c.refreshAt, c.tok.Lifetime()
}

// RefreshRejected is the error of a profile whose stored refresh token the
// vendor refused at t.RefreshRejected: nothing is sent again until a login.
func RefreshRejected(name string, t *Token) error { return refreshDead(name, t) }
