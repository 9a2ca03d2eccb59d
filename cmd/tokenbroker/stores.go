package main

// The CLI opens either store the config names.
import (
	_ "github.com/tokenbroker/tokenbroker/store/postgres"
	_ "github.com/tokenbroker/tokenbroker/store/sqlite"
)
