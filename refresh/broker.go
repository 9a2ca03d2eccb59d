package refresh

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/tokenbroker/tokenbroker"
)

// Broker is the Target of a tokenbroker.Broker: current returns the broker
// to renew through, so that a process swapping brokers on reload (serve)
// keeps one refresher.
func Broker(current func() *tokenbroker.Broker) Target { return brokerTarget{current} }

type brokerTarget struct{ current func() *tokenbroker.Broker }

// maintainIdle is how often a profile without a known expiry, or one that
// can only be fixed by a person, is looked at again.
const maintainIdle = time.Hour

// maintainSpreadMax bounds the per-replica delay of background renewals.
const maintainSpreadMax = 2 * time.Minute

// Maintain renews the profile's token if it is due, and says when it next
// needs attention (zero: never).
func (t brokerTarget) Maintain(ctx context.Context, name string) (time.Time, error) {
	b := t.current()
	p, err := b.Provider(name)
	if err != nil {
		return time.Time{}, err
	}
	if p.Describe().Stateless {
		return time.Time{}, nil
	}
	if _, err := b.Token(ctx, name, tokenbroker.TokenOptions{Strict: true}); err != nil {
		return time.Time{}, err
	}
	at, lifetime := b.NextRenewal(name)
	if at.IsZero() {
		return b.Clock().Now().Add(maintainIdle), nil
	}
	// Each replica looks a little after the refresh point, by its own draw:
	// the first renews, the others hear of it (NOTIFY) and find the new
	// token stored, instead of all queueing for the lease at once.
	if spread := min(lifetime/20, maintainSpreadMax); spread > 0 {
		return at.Add(rand.N(spread)), nil
	}
	return at, nil
}

// Generation is the stored token's generation (0 when none).
func (t brokerTarget) Generation(ctx context.Context, name string) (int64, error) {
	tok, err := t.current().Stored(ctx, name)
	if err != nil || tok == nil {
		return 0, err
	}
	return tok.Generation, nil
}
