package tokenbroker

import (
	"os"
	"testing"

	"github.com/tokenbroker/tokenbroker/internal/pgtest"
)

// TestMain stops the PostgreSQL cluster the tests started, if any.
func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.Stop()
	os.Exit(code)
}
