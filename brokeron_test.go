package tokenbroker

import (
	"path/filepath"
	"testing"

	"github.com/tokenbroker/tokenbroker/config"
)

// brokerOn makes a Broker for profiles on a fresh SQLite state; the test's
// end closes both.
func brokerOn(t testing.TB, profiles map[string]*config.Profile, opts Options) *Broker {
	t.Helper()
	cfg := &config.Config{State: "sqlite:" + filepath.Join(t.TempDir(), "state.db"), Profiles: profiles}
	st, err := OpenStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	opts.Store = st
	b := New(cfg, opts)
	t.Cleanup(func() { b.Close() })
	return b
}
