package tokenbroker

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/failure"
	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/seal"
)

// OpenStore opens the store the configuration names, sealing with the master
// key: `key:` in the config, else $TOKENBROKER_KEY, else a key file beside
// the state, made on first use. The store's driver must be imported:
//
//	import _ "github.com/tokenbroker/tokenbroker/store/sqlite"
func OpenStore(cfg *config.Config) (store.Store, error) {
	d, location, err := store.Lookup(cfg.State)
	if err != nil {
		return nil, err
	}
	key, err := masterKey(cfg, d.KeyDir(location))
	if err != nil {
		return nil, err
	}
	s, err := seal.New(key)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return d.Open(ctx, location, s)
}

// MasterKeyDir is the directory whose key file holds the master key, or ""
// when the key comes from `key:` in the config or $TOKENBROKER_KEY (and a
// rotation must give the new key the same way).
func MasterKeyDir(cfg *config.Config) (string, error) {
	if cfg.Key.IsSet() || os.Getenv("TOKENBROKER_KEY") != "" {
		return "", nil
	}
	d, location, err := store.Lookup(cfg.State)
	if err != nil {
		return "", err
	}
	return d.KeyDir(location), nil
}

func masterKey(cfg *config.Config, stateDir string) ([]byte, error) {
	keyErr := func(err error) error {
		return &failure.Error{Kind: failure.Config, Msg: "master key: " + err.Error()}
	}
	if cfg.Key.IsSet() {
		text, err := cfg.Key.Resolve()
		if err != nil {
			return nil, keyErr(err)
		}
		k, err := seal.DecodeKey(text, "`key:` in the config")
		if err != nil {
			return nil, keyErr(err)
		}
		return k, nil
	}
	if text := os.Getenv("TOKENBROKER_KEY"); text != "" {
		k, err := seal.DecodeKey(text, "$TOKENBROKER_KEY")
		if err != nil {
			return nil, keyErr(err)
		}
		return k, nil
	}
	if stateDir == "" {
		return nil, keyErr(errors.New("a PostgreSQL state needs `key:` in the config or $TOKENBROKER_KEY, the same on every replica"))
	}
	k, err := seal.FileKey(stateDir)
	if err != nil {
		return nil, keyErr(err)
	}
	return k, nil
}
