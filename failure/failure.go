// Package failure classes errors so that the CLI can pick an exit code, the
// refresher can decide whether to retry, and every message names the profile,
// the endpoint and what to do next.
package failure

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Kind is the class of a failure. Its order matches DESIGN.md's exit codes.
type Kind int

const (
	// Other is anything not classed below (exit 1).
	Other Kind = iota
	// Config is a usage or configuration error (exit 2).
	Config
	// Rejected means the vendor refused the credentials: re-login or a new
	// secret is needed; retrying will not help (exit 3).
	Rejected
	// RateLimited means the vendor answered 429 or a quota is spent (exit 4).
	RateLimited
	// Unreachable means the vendor could not be reached or answered 5xx (exit 5).
	Unreachable
	// Protocol means the vendor answered something that is not a token
	// (HTML, invalid JSON, no access_token, too large): exit 1.
	Protocol
)

var kindNames = map[Kind]string{
	Other: "error", Config: "config", Rejected: "rejected",
	RateLimited: "rate_limited", Unreachable: "unreachable", Protocol: "protocol",
}

func (k Kind) String() string { return kindNames[k] }

// ExitCode maps a kind to the exit code DESIGN.md fixes.
func (k Kind) ExitCode() int {
	switch k {
	case Config:
		return 2
	case Rejected:
		return 3
	case RateLimited:
		return 4
	case Unreachable:
		return 5
	}
	return 1
}

// Transient reports whether retrying later may succeed.
func (k Kind) Transient() bool { return k == RateLimited || k == Unreachable }

// Error is a classed failure. Its message never contains secrets: callers
// build it from names, URLs without credentials and the vendor's error text.
type Error struct {
	Kind     Kind
	Profile  string
	Endpoint string // the URL or step involved, without query string
	Msg      string // what went wrong, in plain words
	Hint     string // what to do about it
	// RetryAfter is the vendor's Retry-After, when it sent one.
	RetryAfter time.Duration
	// Code is the vendor's OAuth error code (invalid_grant, invalid_client),
	// when it sent one, and invalid_client for a 401 without one (RFC 6749
	// 5.2): it says whether the grant or the client was refused.
	Code string
	Err  error
}

func (e *Error) Error() string {
	var b strings.Builder
	if e.Profile != "" {
		fmt.Fprintf(&b, "profile %q: ", e.Profile)
	}
	b.WriteString(e.Msg)
	if e.Endpoint != "" {
		fmt.Fprintf(&b, " (%s)", e.Endpoint)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	if e.Hint != "" {
		b.WriteString(": ")
		b.WriteString(e.Hint)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// New makes a classed error.
func New(kind Kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// KindOf finds the class of err, Other when it has none.
func KindOf(err error) Kind {
	var fe *Error
	if errors.As(err, &fe) {
		return fe.Kind
	}
	return Other
}

// WithProfile names the profile in err: a classed error that lacks one is
// copied with it (never changed in place: single-flight callers share the
// error), an unclassed one is wrapped.
func WithProfile(err error, profile string) error {
	if err == nil {
		return nil
	}
	var fe *Error
	if errors.As(err, &fe) {
		if fe.Profile != "" {
			return err
		}
		named := *fe
		named.Profile = profile
		return &named
	}
	return &Error{Kind: Other, Profile: profile, Msg: "failed", Err: err}
}
