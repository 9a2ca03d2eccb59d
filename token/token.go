// Package token holds the Token that providers produce, stores keep and the
// broker hands out. It is a leaf package so that provider and store need not
// know each other.
package token

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"time"
)

// Token is one access token and everything needed to renew it.
type Token struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type,omitempty"`
	RefreshToken string `json:"refresh_token,omitempty"`
	// PrevRefreshToken is the refresh token this one replaced, kept as a
	// fallback until the new refresh token has worked once.
	PrevRefreshToken string `json:"prev_refresh_token,omitempty"`
	// Expiry is zero when the vendor did not say: the token is then used
	// until the API answers 401.
	Expiry        time.Time `json:"expiry,omitzero"`
	RefreshExpiry time.Time `json:"refresh_expiry,omitzero"`
	// RefreshRejected is when the vendor refused this refresh token for
	// good: no process presents it again (each try is a request, and a
	// 401 or a restart would make one) until a login stores a new token.
	RefreshRejected time.Time `json:"refresh_rejected,omitzero"`
	Scope           string    `json:"scope,omitempty"`
	ObtainedAt      time.Time `json:"obtained_at"`
	Grant           string    `json:"grant"`
	// Generation grows by one with every stored version; the store's
	// compare-and-swap is keyed on it.
	Generation int64 `json:"generation"`
	// Extra keeps the vendor's other response fields (owner_id, appname...);
	// never secrets.
	Extra map[string]any `json:"extra,omitempty"`
	// Secrets holds secrets minted by a flow that later refreshes need, such
	// as the client credentials Aruba's MSP step issues for a customer.
	Secrets map[string]string `json:"secrets,omitempty"`
}

// TTL is the time left before expiry; a token without a known expiry
// reports a large value so that it is used until rejected.
func (t *Token) TTL(now time.Time) time.Duration {
	if t.Expiry.IsZero() {
		return 1<<63 - 1
	}
	return t.Expiry.Sub(now)
}

// Valid reports whether the token can still be used for at least minTTL.
func (t *Token) Valid(now time.Time, minTTL time.Duration) bool {
	return t != nil && t.AccessToken != "" && t.TTL(now) > minTTL
}

// Lifetime is the span between obtaining and expiry, zero when unknown.
func (t *Token) Lifetime() time.Duration {
	if t.Expiry.IsZero() || t.ObtainedAt.IsZero() {
		return 0
	}
	return t.Expiry.Sub(t.ObtainedAt)
}

// RefreshUsable reports whether the refresh token may still be presented.
func (t *Token) RefreshUsable(now time.Time) bool {
	return t != nil && t.RefreshToken != "" && (t.RefreshExpiry.IsZero() || now.Before(t.RefreshExpiry))
}

// Clone returns a deep copy, so callers can change it without racing.
func (t *Token) Clone() *Token {
	if t == nil {
		return nil
	}
	c := *t
	if t.Extra != nil {
		c.Extra = make(map[string]any, len(t.Extra))
		for k, v := range t.Extra {
			c.Extra[k] = v
		}
	}
	if t.Secrets != nil {
		c.Secrets = make(map[string]string, len(t.Secrets))
		for k, v := range t.Secrets {
			c.Secrets[k] = v
		}
	}
	return &c
}

// Claims decodes the payload of a JWT without verifying it: tokenbroker
// only reads claims for display and expiry hints, it never trusts them.
func Claims(jwt string) (map[string]any, bool) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return nil, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return nil, false
	}
	var claims map[string]any
	if json.Unmarshal(raw, &claims) != nil {
		return nil, false
	}
	return claims, true
}

// ClaimTime reads a numeric date claim (exp, iat, nbf).
func ClaimTime(claims map[string]any, name string) (time.Time, bool) {
	switch v := claims[name].(type) {
	case float64:
		return time.Unix(int64(v), 0), true
	case json.Number:
		n, err := v.Int64()
		return time.Unix(n, 0), err == nil
	}
	return time.Time{}, false
}
