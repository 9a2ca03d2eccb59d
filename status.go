package tokenbroker

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/tokenbroker/tokenbroker/failure"
	"github.com/tokenbroker/tokenbroker/provider"
	"github.com/tokenbroker/tokenbroker/store"
)

// Profile states shown by `status`.
const (
	StateValid      = "valid"
	StateExpiring   = "expiring"    // past its refresh point
	StateExpired    = "expired"     // renewable without a person
	StateNeedsLogin = "needs login" // only a person can get a new token
	StateError      = "error"       // the last renewal failed and no valid token is left
	StateNone       = "none"        // nothing obtained yet
)

// ProfileStatus is one row of `status`. It never holds a secret.
type ProfileStatus struct {
	Profile          string     `json:"profile"`
	Vendor           string     `json:"vendor"`
	State            string     `json:"state"`
	ObtainedAt       *time.Time `json:"obtained_at,omitempty"`
	ExpiresAt        *time.Time `json:"expires_at,omitempty"`
	RefreshExpiresAt *time.Time `json:"refresh_token_expires_at,omitempty"`
	LastRefresh      *time.Time `json:"last_refresh,omitempty"`
	LastError        string     `json:"last_error,omitempty"`
	LastErrorClass   string     `json:"last_error_class,omitempty"`
	NextAction       string     `json:"next_action,omitempty"`
	// Tenants is how many tenants an MSP profile has (they share its
	// token and its budget: the quota below, as this process last heard).
	Tenants        int  `json:"tenants,omitempty"`
	QuotaRemaining *int `json:"quota_remaining,omitempty"`
	QuotaLimit     *int `json:"quota_limit,omitempty"`
}

// statusEvents is how far back `status` looks for the last refresh and error.
const statusEvents = 50

// Status reports every configured profile without renewing anything.
func (b *Broker) Status(ctx context.Context) ([]ProfileStatus, error) {
	var out []ProfileStatus
	var st store.Store
	for _, name := range b.cfg.Names() {
		s := ProfileStatus{Profile: name}
		p, err := b.Provider(name)
		if err != nil {
			s.State, s.LastError, s.LastErrorClass = StateError, err.Error(), failure.KindOf(err).String()
			s.NextAction = "fix the profile in " + b.cfg.Path
			out = append(out, s)
			continue
		}
		d := p.Describe()
		s.Vendor = d.Vendor
		if d.Stateless {
			s.State = StateValid
			out = append(out, s)
			continue
		}
		if st == nil {
			if st, err = b.store(); err != nil {
				return nil, err
			}
		}
		t, terr := st.Get(ctx, name)
		events, err := st.Events(ctx, name, statusEvents)
		if err != nil {
			return nil, err
		}
		var lastFail *store.Event
		for i, e := range events {
			if e.Outcome == "ok" && e.Action != "revoke" {
				at := e.Time
				s.LastRefresh = &at
				break
			}
			if e.Outcome == "failed" && lastFail == nil {
				lastFail = &events[i]
			}
		}
		if lastFail != nil {
			s.LastError, s.LastErrorClass = lastFail.Error, lastFail.ErrorClass
		}
		now := b.opts.Now()
		switch {
		case terr != nil:
			s.State, s.LastError, s.LastErrorClass = StateError, terr.Error(), failure.KindOf(terr).String()
		case t != nil && !t.RefreshRejected.IsZero() && d.Interactive:
			// The vendor refused the stored refresh token: nothing more
			// is sent until a login (see Broker.markRefreshDead).
			s.State = StateNeedsLogin
			if s.LastError == "" {
				s.LastError, s.LastErrorClass = refreshDead(name, t).Error(), failure.Rejected.String()
			}
		case lastFail != nil && lastFail.ErrorClass == failure.Rejected.String() && t != nil:
			// The vendor refused the refresh token or the credentials since the
			// last renewal: only a person can fix it, even while the access
			// token still works (and is still handed out).
			s.State = StateNeedsLogin
		case t.Valid(now, 0):
			s.State = StateValid
			if !b.fresh(t, now, 0) {
				s.State = StateExpiring
			}
		case d.Interactive && !t.RefreshUsable(now):
			s.State = StateNeedsLogin
		case lastFail != nil && lastFail.ErrorClass == failure.Rejected.String():
			s.State = StateNeedsLogin
		case lastFail != nil:
			s.State = StateError
		case t != nil:
			s.State = StateExpired
		default:
			s.State = StateNone
		}
		if t != nil {
			if !t.ObtainedAt.IsZero() {
				at := t.ObtainedAt
				s.ObtainedAt = &at
			}
			if !t.Expiry.IsZero() {
				at := t.Expiry
				s.ExpiresAt = &at
			}
			if t.RefreshToken != "" && !t.RefreshExpiry.IsZero() {
				at := t.RefreshExpiry
				s.RefreshExpiresAt = &at
			}
		}
		s.NextAction = nextAction(name, s.State, d)
		if list, _, err := b.Tenants(ctx, name); err == nil {
			s.Tenants = len(list)
		}
		if rem, limit, ok := b.Quota(name); ok {
			s.QuotaRemaining, s.QuotaLimit = &rem, &limit
		}
		out = append(out, s)
	}
	return out, nil
}

func nextAction(name, state string, d provider.Description) string {
	switch state {
	case StateExpiring, StateExpired:
		return "run `tokenbroker refresh " + name + "`"
	case StateNone:
		if d.Interactive {
			return "run `tokenbroker login " + name + "` or `tokenbroker import " + name + " FILE`"
		}
		return "run `tokenbroker token " + name + "`"
	case StateNeedsLogin:
		if d.Interactive {
			return "run `tokenbroker login " + name + "` or `tokenbroker import " + name + " FILE`"
		}
		return "check the profile's credentials, then run `tokenbroker refresh " + name + "`"
	case StateError:
		return "see the last error; then run `tokenbroker refresh " + name + "`"
	}
	return ""
}

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

// maintainIdle is how often a profile without a known expiry, or one that
// can only be fixed by a person, is looked at again.
const maintainIdle = time.Hour

// Maintain renews the profile's token if it is due, for the background
// refresher, and says when it next needs attention (zero: never).
func (b *Broker) Maintain(ctx context.Context, name string) (time.Time, error) {
	p, err := b.Provider(name)
	if err != nil {
		return time.Time{}, err
	}
	if p.Describe().Stateless {
		return time.Time{}, nil
	}
	if _, err := b.Token(ctx, name, TokenOptions{Strict: true}); err != nil {
		return time.Time{}, err
	}
	c := b.mem(name)
	if c == nil || c.refreshAt.IsZero() {
		return b.opts.Now().Add(maintainIdle), nil
	}
	// Each replica looks a little after the refresh point, by its own draw:
	// the first renews, the others hear of it (NOTIFY) and find the new
	// token stored, instead of all queueing for the lease at once.
	spread := min(c.tok.Lifetime()/20, maintainSpreadMax)
	if spread > 0 {
		return c.refreshAt.Add(rand.N(spread)), nil
	}
	return c.refreshAt, nil
}

// maintainSpreadMax bounds the per-replica delay of background renewals.
const maintainSpreadMax = 2 * time.Minute

// Generation is the stored token's generation (0 when none).
func (b *Broker) Generation(ctx context.Context, name string) (int64, error) {
	t, err := b.Stored(ctx, name)
	if err != nil || t == nil {
		return 0, err
	}
	return t.Generation, nil
}
