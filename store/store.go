// Package store defines where token state lives. The store is the single
// source of truth: every process and replica reads and writes tokens through
// it, and a token is handed out only after it is committed here.
package store

import (
	"context"
	"errors"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/tokenbroker/tokenbroker/failure"

	"github.com/tokenbroker/tokenbroker/token"
)

// ErrConflict is returned by Put when the stored generation is not the
// expected one: someone else stored a newer token first.
var ErrConflict = errors.New("store: the token changed concurrently")

// ErrUnavailable is in the chain of every error that says the state could
// not be reached (a database down, cut off or too slow): it is not the
// vendor's trouble, and callers are told so (503, not 502).
var ErrUnavailable = errors.New("store: the state is unavailable")

// Unavailable marks err as the state being unavailable, reading as err.
func Unavailable(err error) error {
	if err == nil {
		return nil
	}
	return unavailableError{err}
}

type unavailableError struct{ err error }

func (e unavailableError) Error() string        { return e.err.Error() }
func (e unavailableError) Unwrap() error        { return e.err }
func (e unavailableError) Is(target error) bool { return target == ErrUnavailable }

// ErrFenced is returned by Put when the caller's lease was taken over by
// another process after it expired: the caller must not write.
var ErrFenced = errors.New("store: the lease was lost to another process")

// Store keeps token state. Implementations must be safe for concurrent use
// by goroutines and by processes sharing the same state.
type Store interface {
	// Get returns the stored token, or nil when none is stored.
	Get(ctx context.Context, profile string) (*token.Token, error)
	// Put stores tok if the stored generation equals expect (0 when none is
	// stored) and lease is still the profile's current one (ErrNoLease
	// without one). It sets tok.Generation to expect+1 and is durable on
	// return. Callers write through WithLease, which holds the lease.
	Put(ctx context.Context, profile string, tok *token.Token, expect int64, lease *Lease) error
	// Delete forgets a profile's token.
	Delete(ctx context.Context, profile string) error
	// Profiles lists the profiles with stored tokens.
	Profiles(ctx context.Context) ([]string, error)
	// Acquire waits until owner holds the profile's lease, for at most ttl
	// from now unless released; a lease left by a dead process expires. Each
	// grant gets a larger fence than any before it.
	Acquire(ctx context.Context, profile, owner string, ttl time.Duration) (*Lease, error)
	// Release gives up a lease early.
	Release(ctx context.Context, l *Lease) error
	// Append adds an event to the audit log.
	Append(ctx context.Context, e Event) error
	// Events returns a profile's events ("" for all), newest first.
	Events(ctx context.Context, profile string, limit int) ([]Event, error)
	Close() error
}

// Watcher is a store that tells of tokens written by other processes, so
// that their copies in memory can be dropped.
type Watcher interface {
	// Watch calls changed with each profile written elsewhere, or with ""
	// when anything may have changed; it returns at once and stops when ctx ends.
	Watch(ctx context.Context, changed func(profile string))
}

// Limits is a store that keeps rate-limit state for every replica sharing it.
type Limits interface {
	// Reserve takes the next of n slots per rolling window for key and
	// says how long to wait for it; *ratelimit.Refused when longer than maxWait.
	Reserve(ctx context.Context, key string, n int, window, maxWait time.Duration) (time.Duration, error)
	// SpendQuota records that key's daily quota is spent until resetAt.
	SpendQuota(ctx context.Context, key string, resetAt time.Time) error
	// QuotaSpent says until when key's quota is spent (zero: it is not).
	QuotaSpent(ctx context.Context, key string) (time.Time, error)
}

// Holds is a store that keeps, per profile, a time before which no token
// request may be sent: a vendor's Retry-After on one (RingCentral restarts
// its 60 s penalty on every request made during it), obeyed by every
// process and replica that shares the state.
type Holds interface {
	// HoldUntil says until when profile's token requests are held back
	// (zero: they are not).
	HoldUntil(ctx context.Context, profile string) (time.Time, error)
	// SetHold holds profile's token requests back until then; a later hold
	// already stored is kept.
	SetHold(ctx context.Context, profile string, until time.Time) error
}

// Seeds is a store that remembers the configured refresh-token seeds it
// took in, by hash: a seed is single-use at servers with reuse detection,
// and a second state presenting it again would revoke the chain the first
// depends on.
type Seeds interface {
	// SeedTaken says whether, and when, profile's seed with this hash was
	// taken in.
	SeedTaken(ctx context.Context, profile, hash string) (at time.Time, taken bool, err error)
	// TakeSeed records that the seed was taken in (presented to the server).
	TakeSeed(ctx context.Context, profile, hash string, at time.Time) error
}

// TenantLists is a store that keeps the tenants discovered for MSP
// profiles (`tenants: discover`), each list replaced whole on every
// discovery, so a reader sees one discovery or the next, never a mix.
type TenantLists interface {
	// TenantList returns profile's last discovered list (JSON) and when it
	// was discovered; nil when none was.
	TenantList(ctx context.Context, profile string) (list []byte, at time.Time, err error)
	// PutTenantList replaces profile's list.
	PutTenantList(ctx context.Context, profile string, list []byte, at time.Time) error
}

// TenantCall is one tenant's proxied calls as serve counted them.
type TenantCall struct {
	Calls int64
	Last  time.Time
}

// TenantCalls is a store that keeps, per MSP tenant, how many calls the
// serve replicas proxied for it and the last one's time, for `tokenbroker
// tenants` (a CLI cache hit writes nothing).
type TenantCalls interface {
	// AddTenantCalls adds calls made since the last time to each tenant's
	// count (by tenant id), keeping the later last call.
	AddTenantCalls(ctx context.Context, profile string, calls map[string]TenantCall) error
	// TenantCalls returns profile's counts by tenant id.
	TenantCalls(ctx context.Context, profile string) (map[string]TenantCall, error)
}

// Lease is the right to renew one profile's token.
type Lease struct {
	Profile string
	Owner   string
	Fence   int64
	Expires time.Time
}

// Event is one audit log entry. It never holds a secret.
type Event struct {
	Time       time.Time `json:"time"`
	Profile    string    `json:"profile"`
	Action     string    `json:"action"` // obtain, refresh, revoke, import, login
	Grant      string    `json:"grant,omitempty"`
	Outcome    string    `json:"outcome"` // ok, failed
	ErrorClass string    `json:"error_class,omitempty"`
	Error      string    `json:"error,omitempty"`
	PID        int       `json:"pid"`
	// Client is the serve client whose call caused the event ("" for the
	// administrator, the CLI or the broker's own refresher).
	Client string `json:"client,omitempty"`
}

// Kind splits a state location into its scheme and the rest:
// "sqlite:/path" and a bare path are SQLite, "postgres://..." is PostgreSQL.
func Kind(location string) (kind, rest string) {
	switch {
	case strings.HasPrefix(location, "sqlite:"):
		return "sqlite", strings.TrimPrefix(location, "sqlite:")
	case strings.HasPrefix(location, "postgres://"), strings.HasPrefix(location, "postgresql://"):
		return "postgres", location
	}
	return "sqlite", location
}

// Delivery is an accepted webhook delivery waiting for (or handed to) its sink.
type Delivery struct {
	Seq     int64 // order of acceptance, set by the store
	Profile string
	Webhook string
	ID      string // X-Central-Delivery-Id
	// MAC is the delivery's signature (hex of the HMAC): the replay guard.
	// The signed string has no separators, so bytes moved from the service
	// into the id keep a signature valid under a new id; the MAC does not
	// change.
	MAC        string
	Service    string
	Timestamp  string // as the sender sent it
	Body       []byte
	ReceivedAt time.Time
}

// WebhookToken is a webhook's signing token and the one it replaced, kept
// for a grace period so deliveries signed before a rotation still verify.
type WebhookToken struct {
	Current   string
	Previous  string
	RotatedAt time.Time
}

// Webhooks is a store with a durable queue of webhook deliveries.
type Webhooks interface {
	// Enqueue stores an accepted delivery durably; false when its id or
	// its MAC was seen before for the profile (a replay), in which case
	// nothing is stored.
	Enqueue(ctx context.Context, d *Delivery) (bool, error)
	// Pending returns up to limit deliveries of a webhook not yet
	// forwarded, oldest first.
	Pending(ctx context.Context, profile, webhook string, limit int) ([]Delivery, error)
	// Forwarded marks deliveries as handed to their sink.
	Forwarded(ctx context.Context, seqs []int64) error
	// WebhookToken returns a webhook's stored signing tokens (nil: none).
	WebhookToken(ctx context.Context, profile, webhook string) (*WebhookToken, error)
	// PutWebhookToken stores a webhook's signing tokens, sealed.
	PutWebhookToken(ctx context.Context, profile, webhook string, t *WebhookToken) error
}

// DeliveryRetention is how long forwarded deliveries are kept to recognise
// replays; older ones fail the timestamp window anyway.
const DeliveryRetention = time.Hour

// WaitForLease calls try until it grants a lease or fails, waiting between
// attempts with jittered back-off (2 ms doubling to 50 ms): the stores share
// this loop and differ only in how they try.
func WaitForLease(ctx context.Context, profile string, try func() (*Lease, error)) (*Lease, error) {
	wait := 2 * time.Millisecond
	for {
		l, err := try()
		if err != nil || l != nil {
			return l, err
		}
		select {
		case <-ctx.Done():
			return nil, &failure.Error{Kind: failure.Other, Profile: profile, Msg: "gave up waiting for another process or replica renewing this token", Err: ctx.Err()}
		case <-time.After(wait/2 + rand.N(wait)):
		}
		wait = min(wait*2, 50*time.Millisecond)
	}
}
