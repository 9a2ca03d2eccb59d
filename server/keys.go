package server

import (
	"context"
	"time"

	"github.com/tokenbroker/tokenbroker/internal/wait"
	"github.com/tokenbroker/tokenbroker/store"
)

// KeysEvery is how often serve reads the state's master keys again, so
// that a replica learns a rotation's new key (and that old keys were
// retired) even when it reads no token meanwhile. `tokenbroker rekey
// --retire` is refused until three of these have passed since a rotation.
const KeysEvery = 2 * time.Second

// followKeys keeps the store's keyring in line with the state's.
func (s *Server) followKeys(ctx context.Context) {
	rk, ok := s.opts.Store.(store.Rekeyer)
	if !ok {
		return
	}
	var failing bool
	for wait.Sleep(ctx, KeysEvery) == nil {
		err := rk.RefreshKeys(ctx)
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			s.opts.Log.Error("the state's master keys cannot be followed", "error", err)
		case err == nil && failing:
			s.opts.Log.Info("the state's master keys are followed again")
		}
		failing = err != nil
	}
}
