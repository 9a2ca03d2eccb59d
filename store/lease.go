package store

import (
	"context"
	"errors"
	"time"

	"github.com/tokenbroker/tokenbroker/token"
)

// ErrNoLease is returned by Put called without the profile's lease: token
// state is written only through WithLease.
var ErrNoLease = errors.New("store: a token is written only under the profile's lease (store.WithLease)")

// Leased is one profile's token state while its lease is held, handed to
// the function given to WithLease: the way to write a profile's token.
// It is valid only until that function returns.
type Leased struct {
	st    Store
	lease *Lease
}

// Profile is the leased profile.
func (l *Leased) Profile() string { return l.lease.Profile }

// Owner is the lease's holder: acquiring again as the same owner takes a
// lease that could not be released (the state was unreachable) back at
// once, rather than after its time to live.
func (l *Leased) Owner() string { return l.lease.Owner }

// Get reads the profile's stored token (nil when none).
func (l *Leased) Get(ctx context.Context) (*token.Token, error) {
	return l.st.Get(ctx, l.lease.Profile)
}

// Put stores tok if the stored generation is expect (0 when none) and the
// lease is still this one; see Store.Put.
func (l *Leased) Put(ctx context.Context, tok *token.Token, expect int64) error {
	return l.st.Put(ctx, l.lease.Profile, tok, expect, l.lease)
}

// Delete forgets the profile's token.
func (l *Leased) Delete(ctx context.Context) error { return l.st.Delete(ctx, l.lease.Profile) }

// WithLease holds profile's lease (waiting for it, held for at most ttl)
// while fn runs, and releases it when fn returns, even if ctx has ended:
// the one place where a lease is taken and given back.
func WithLease(ctx context.Context, st Store, profile, owner string, ttl time.Duration, fn func(*Leased) error) error {
	lease, err := st.Acquire(ctx, profile, owner, ttl)
	if err != nil {
		return err
	}
	defer st.Release(context.WithoutCancel(ctx), lease)
	return fn(&Leased{st: st, lease: lease})
}
