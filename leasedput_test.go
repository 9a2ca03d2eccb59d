package tokenbroker

import (
	"context"
	"time"

	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/token"
)

// leasedPut writes a token as the broker does: under the profile's lease.
func leasedPut(ctx context.Context, st store.Store, profile string, tok *token.Token, expect int64) error {
	return store.WithLease(ctx, st, profile, "test", time.Minute, func(l *store.Leased) error {
		return l.Put(ctx, tok, expect)
	})
}
