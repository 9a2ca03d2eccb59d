package main

// The bench's states: SQLite, and PostgreSQL for -scale.
import (
	_ "github.com/tokenbroker/tokenbroker/store/postgres"
	_ "github.com/tokenbroker/tokenbroker/store/sqlite"
)
