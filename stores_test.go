package tokenbroker

// The tests open SQLite and PostgreSQL states.
import (
	_ "github.com/tokenbroker/tokenbroker/store/postgres"
	_ "github.com/tokenbroker/tokenbroker/store/sqlite"
)
