package tokenbroker

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/token"
)

// outage is a store that can be cut off: every read fails while it is.
type outage struct {
	store.Store
	down atomic.Bool
}

func (o *outage) Get(ctx context.Context, profile string) (*token.Token, error) {
	if o.down.Load() {
		return nil, errors.New("the state is unavailable")
	}
	return o.Store.Get(ctx, profile)
}

// When PostgreSQL goes away its watch reports that anything may have
// changed; the tokens in memory are then looked up in the store first,
// and while it cannot be read they are still handed out until they
// expire (a replica under load once answered 500 here: the copies had been
// dropped).
func TestInvalidatedTokenIsServedWhileTheStoreIsDown(t *testing.T) {
	srv := &tokenServer{ttl: 3600}
	b, _, _ := newTestBroker(t, srv)
	st, err := b.Store()
	if err != nil {
		t.Fatal(err)
	}
	o := &outage{Store: st}
	b.st = o
	ctx := context.Background()
	first, err := b.Token(ctx, "p", TokenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	o.down.Store(true)
	b.Invalidate("")
	got, err := b.Token(ctx, "p", TokenOptions{})
	if err != nil || got.AccessToken != first.AccessToken {
		t.Fatalf("with the store down after an invalidation: %v, %v; want the token in memory", got, err)
	}
	if srv.requests.Load() != 1 {
		t.Errorf("%d token requests, want 1", srv.requests.Load())
	}
}
