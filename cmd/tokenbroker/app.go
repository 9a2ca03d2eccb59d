package main

import (
	"fmt"
	"io"
	"os"

	"github.com/tokenbroker/tokenbroker"
	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/store"
)

// app is what every command shares: flags, streams, and the broker, built
// on first use so that commands which need none stay fast.
type app struct {
	configPath, statePath, logLevel string
	stdin                           io.Reader
	stdout, stderr                  io.Writer
	broker                          *tokenbroker.Broker
	interrupts                      *interrupts // main's; nil in-process
	coresCut                        bool        // GOMAXPROCS is 1 (internal/onecore)
}

func (a *app) warn(msg string) { fmt.Fprintf(a.stderr, "tokenbroker: warning: %s\n", msg) }

// loadConfig reads the config named by --config, $TOKENBROKER_CONFIG or the
// default path.
func (a *app) loadConfig() (*config.Config, error) {
	path, explicit := a.configPath, a.configPath != ""
	if !explicit {
		path = config.DefaultPath()
		_, explicit = os.LookupEnv("TOKENBROKER_CONFIG")
	}
	cfg, err := config.Load(path, explicit)
	if err != nil {
		return nil, err
	}
	if a.statePath != "" {
		cfg.State = a.statePath
	}
	return cfg, nil
}

// load returns the broker, warning once about unwise config.
func (a *app) load() (*tokenbroker.Broker, error) {
	if a.broker != nil {
		return a.broker, nil
	}
	cfg, err := a.loadConfig()
	if err != nil {
		return nil, err
	}
	for _, w := range cfg.Warnings() {
		a.warn(w)
	}
	a.broker = tokenbroker.New(cfg, tokenbroker.Options{
		OpenStore: func() (store.Store, error) { return tokenbroker.OpenStore(cfg) },
		Warn:      a.warn,
	})
	return a.broker, nil
}

// brokerFn returns the loaded broker, for parts that take a getter.
func (a *app) brokerFn() func() *tokenbroker.Broker {
	return func() *tokenbroker.Broker { return a.broker }
}
