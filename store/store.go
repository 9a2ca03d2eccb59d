// Package store defines where token state lives. The store is the single
// source of truth: every process and replica reads and writes tokens through
// it, and a token is handed out only after it is committed here.
package store

import (
	"context"
	"errors"
	"strings"

	"github.com/tokenbroker/tokenbroker/token"
)

// ErrConflict is returned by Put when the stored generation is not the
// expected one: someone else stored a newer token first.
var ErrConflict = errors.New("store: token changed concurrently")

// Store keeps token state. Implementations must be safe for concurrent use
// by multiple goroutines and, for the file and database stores, processes.
type Store interface {
	// Get returns the stored token, or nil when none is stored.
	Get(ctx context.Context, profile string) (*token.Token, error)
	// Put stores tok if the stored generation equals expect (0 when none is
	// stored), setting tok.Generation to expect+1. It is durable on return.
	Put(ctx context.Context, profile string, tok *token.Token, expect int64) error
	// Delete forgets a profile's token.
	Delete(ctx context.Context, profile string) error
	// Profiles lists the profiles that have stored state.
	Profiles(ctx context.Context) ([]string, error)
	Close() error
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
