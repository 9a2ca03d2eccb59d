// Package status says where each configured profile's token stands and
// what to do next, without renewing anything: the rows of `tokenbroker
// status`, of the local API's /v1/status, of the dashboard and of the
// metrics' state gauges.
package status

import (
	"context"
	"time"

	"github.com/tokenbroker/tokenbroker"
	"github.com/tokenbroker/tokenbroker/failure"
	"github.com/tokenbroker/tokenbroker/provider"
	"github.com/tokenbroker/tokenbroker/store"
)

// Profile states shown by `status`.
const (
	Valid      = "valid"
	Expiring   = "expiring"    // past its refresh point
	Expired    = "expired"     // renewable without a person
	NeedsLogin = "needs login" // only a person can get a new token
	Error      = "error"       // the last renewal failed and no valid token is left
	None       = "none"        // nothing obtained yet
)

// Row is one profile's status. It never holds a secret.
type Row struct {
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

// Of reports every profile the broker is configured with, without
// renewing anything.
func Of(ctx context.Context, b *tokenbroker.Broker) ([]Row, error) {
	var out []Row
	var st store.Store
	cfg := b.Config()
	for _, name := range cfg.Names() {
		s := Row{Profile: name}
		p, err := b.Provider(name)
		if err != nil {
			s.State, s.LastError, s.LastErrorClass = Error, err.Error(), failure.KindOf(err).String()
			s.NextAction = "fix the profile in " + cfg.Path
			out = append(out, s)
			continue
		}
		d := p.Describe()
		s.Vendor = d.Vendor
		if d.Stateless {
			s.State = Valid
			out = append(out, s)
			continue
		}
		if st == nil {
			if st, err = b.Store(); err != nil {
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
		now := b.Clock().Now()
		switch {
		case terr != nil:
			s.State, s.LastError, s.LastErrorClass = Error, terr.Error(), failure.KindOf(terr).String()
		case t != nil && !t.RefreshRejected.IsZero() && d.Interactive:
			// The vendor refused the stored refresh token: nothing more
			// is sent until a login.
			s.State = NeedsLogin
			if s.LastError == "" {
				s.LastError, s.LastErrorClass = tokenbroker.RefreshRejected(name, t).Error(), failure.Rejected.String()
			}
		case lastFail != nil && lastFail.ErrorClass == failure.Rejected.String() && t != nil:
			// The vendor refused the refresh token or the credentials since the
			// last renewal: only a person can fix it, even while the access
			// token still works (and is still handed out).
			s.State = NeedsLogin
		case t.Valid(now, 0):
			s.State = Valid
			if b.Due(t) {
				s.State = Expiring
			}
		case d.Interactive && !t.RefreshUsable(now):
			s.State = NeedsLogin
		case lastFail != nil && lastFail.ErrorClass == failure.Rejected.String():
			s.State = NeedsLogin
		case lastFail != nil:
			s.State = Error
		case t != nil:
			s.State = Expired
		default:
			s.State = None
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
	case Expiring, Expired:
		return "run `tokenbroker refresh " + name + "`"
	case None:
		if d.Interactive {
			return "run `tokenbroker login " + name + "` or `tokenbroker import " + name + " FILE`"
		}
		return "run `tokenbroker token " + name + "`"
	case NeedsLogin:
		if d.Interactive {
			return "run `tokenbroker login " + name + "` or `tokenbroker import " + name + " FILE`"
		}
		return "check the profile's credentials, then run `tokenbroker refresh " + name + "`"
	case Error:
		return "see the last error; then run `tokenbroker refresh " + name + "`"
	}
	return ""
}
