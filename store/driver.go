package store

import (
	"context"
	"fmt"
	"sort"
	"sync"

	"github.com/tokenbroker/tokenbroker/failure"
	"github.com/tokenbroker/tokenbroker/store/seal"
)

// Driver opens one kind of state location. Drivers register themselves
// when their package is imported (store/sqlite, store/postgres), as
// database/sql's do, so a program links only the stores it imports.
type Driver struct {
	// Open opens the location (what Kind leaves after the scheme), sealing
	// with s. The context bounds the connection, not the store's life.
	Open func(ctx context.Context, location string, s *seal.Sealer) (Store, error)
	// KeyDir is the directory where a master key file may be kept beside
	// the state, or "" for a shared store, whose replicas share no
	// directory and must each be given the key.
	KeyDir func(location string) string
}

var (
	driversMu sync.RWMutex
	drivers   = map[string]Driver{}
)

// Register makes a driver available under its kind ("sqlite",
// "postgres"). It panics if the kind is registered twice, which only a
// programming error does.
func Register(kind string, d Driver) {
	driversMu.Lock()
	defer driversMu.Unlock()
	if _, dup := drivers[kind]; dup {
		panic("store: Register called twice for " + kind)
	}
	drivers[kind] = d
}

// Lookup returns the driver for a state location and the location as the
// driver takes it. A kind whose package was not imported is a config error
// that says which import it needs.
func Lookup(location string) (Driver, string, error) {
	kind, rest := Kind(location)
	driversMu.RLock()
	d, ok := drivers[kind]
	driversMu.RUnlock()
	if !ok {
		return Driver{}, "", &failure.Error{Kind: failure.Config,
			Msg:  fmt.Sprintf("state: this program has no %s store (it has: %v)", kind, Kinds()),
			Hint: fmt.Sprintf("import _ \"github.com/tokenbroker/tokenbroker/store/%s\" in the program", kind)}
	}
	return d, rest, nil
}

// Kinds lists the registered kinds, sorted.
func Kinds() []string {
	driversMu.RLock()
	defer driversMu.RUnlock()
	out := make([]string, 0, len(drivers))
	for k := range drivers {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
