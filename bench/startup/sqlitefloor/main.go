// Command sqlitefloor opens a SQLite file with modernc's driver and reads
// one row: the bench's floor for a CLI that answers from SQLite.
package main

import (
	"database/sql"
	"fmt"
	"os"

	_ "modernc.org/sqlite"
)

func main() {
	db, err := sql.Open("sqlite", "file:"+os.Args[1]+"?mode=ro")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer db.Close()
	var n int64
	if err := db.QueryRow(`SELECT generation FROM tokens LIMIT 1`).Scan(&n); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(n)
}
