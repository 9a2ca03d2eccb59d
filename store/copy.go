package store

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/tokenbroker/tokenbroker/failure"
)

// Copied says what Copy moved.
type Copied struct {
	Tokens int
	Events int
}

// copyEvents bounds the audit events moved with the tokens.
const copyEvents = 100000

// Copy copies every token and the audit log from one store to another
// (SQLite or PostgreSQL, either way: `tokenbroker migrate`). The target
// must hold none of the source's profiles; every copied token is read back
// and compared before Copy reports success.
func Copy(ctx context.Context, src, dst Store) (Copied, error) {
	var res Copied
	names, err := src.Profiles(ctx)
	if err != nil {
		return res, err
	}
	sort.Strings(names)
	var clash []string
	for _, n := range names {
		if t, err := dst.Get(ctx, n); err != nil || t != nil {
			clash = append(clash, n)
		}
	}
	if len(clash) > 0 {
		return res, failure.New(failure.Config, "the target already holds (or cannot read) %s: nothing was copied", strings.Join(clash, ", "))
	}
	for _, n := range names {
		t, err := src.Get(ctx, n)
		if err != nil {
			return res, err
		}
		if t == nil {
			continue
		}
		want := t.Clone()
		err = WithLease(ctx, dst, n, "migrate", time.Minute, func(l *Leased) error { return l.Put(ctx, t, 0) })
		if err != nil {
			return res, fmt.Errorf("profile %q: %w", n, err)
		}
		got, err := dst.Get(ctx, n)
		if err != nil || got == nil || got.AccessToken != want.AccessToken || got.RefreshToken != want.RefreshToken ||
			got.PrevRefreshToken != want.PrevRefreshToken || !got.Expiry.Equal(want.Expiry) {
			return res, &failure.Error{Kind: failure.Other, Profile: n, Msg: "the copied token does not read back the same", Err: err}
		}
		res.Tokens++
	}
	events, err := src.Events(ctx, "", copyEvents)
	if err != nil {
		return res, err
	}
	for i := len(events) - 1; i >= 0; i-- { // oldest first, so ids keep their order
		if err := dst.Append(ctx, events[i]); err != nil {
			return res, err
		}
		res.Events++
	}
	return res, nil
}
