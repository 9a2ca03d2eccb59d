package tokenbroker

import (
	"context"
	"time"
)

// Observer is told what the broker does, for metrics. Implementations must
// be safe for concurrent use and fast: they run on the request path.
type Observer interface {
	// Requested is one upstream token request (action obtain or refresh),
	// with its outcome.
	Requested(profile, action string, err error, took time.Duration)
	// Waited is a call that queued for its rate-limit slot.
	Waited(profile string, d time.Duration)
	// Refused is a call answered 429 by tokenbroker itself.
	Refused(profile string)
}

type noObserver struct{}

func (noObserver) Requested(string, string, error, time.Duration) {}
func (noObserver) Waited(string, time.Duration)                   {}
func (noObserver) Refused(string)                                 {}

func (b *Broker) observe() Observer {
	if b.opts.Observer == nil {
		return noObserver{}
	}
	return b.opts.Observer
}

// Rejected is told that the vendor's API refused an access token. It
// returns the token to retry with: a newer one when another caller already
// renewed, else a forced renewal shared by all who saw the same rejection.
func (b *Broker) Rejected(ctx context.Context, name, rejected string) (*Token, error) {
	if t := b.cached(name); t != nil && t.AccessToken != rejected {
		return t.Clone(), nil
	}
	v, err, _ := b.flights.Do(name+"\x00rejected", func() (any, error) {
		if t := b.cached(name); t != nil && t.AccessToken != rejected {
			return t, nil
		}
		return b.Token(ctx, name, TokenOptions{Force: true})
	})
	if err != nil {
		return nil, err
	}
	return v.(*Token).Clone(), nil
}
