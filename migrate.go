package tokenbroker

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/failure"
	"github.com/tokenbroker/tokenbroker/store"
)

// MigrateResult says what Migrate moved.
type MigrateResult struct {
	Tokens int
	Events int
}

// auditCopyLimit bounds the audit events moved with the tokens.
const auditCopyLimit = 100000

// Migrate copies every token and the audit log from one state location to
// another (SQLite or PostgreSQL, either way), each opened with the master
// key cfg names. The target must hold none of the source's profiles; every
// copied token is read back and compared before Migrate reports success.
func Migrate(ctx context.Context, cfg *config.Config, from, to string) (MigrateResult, error) {
	var res MigrateResult
	if from == to {
		return res, failure.New(failure.Config, "--from and --to are the same state")
	}
	open := func(loc string) (store.Store, error) {
		c := *cfg
		c.State = loc
		return OpenStore(&c)
	}
	src, err := open(from)
	if err != nil {
		return res, err
	}
	defer src.Close()
	dst, err := open(to)
	if err != nil {
		return res, err
	}
	defer dst.Close()
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
		err = store.WithLease(ctx, dst, n, "migrate", time.Minute, func(l *store.Leased) error { return l.Put(ctx, t, 0) })
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
	events, err := src.Events(ctx, "", auditCopyLimit)
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
