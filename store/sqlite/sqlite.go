// Package sqlite is the default Store: one file on the local machine, shared
// by every tokenbroker process through SQLite's locking (WAL mode).
package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // the pure-Go driver, registered as "sqlite"

	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/token"
)

// migrations bring a state file from PRAGMA user_version i to i+1. Append
// only: a newer binary must open any older file.
var migrations = []string{
	`CREATE TABLE tokens (
		profile    TEXT PRIMARY KEY,
		generation INTEGER NOT NULL,
		data       BLOB NOT NULL,
		updated_at INTEGER NOT NULL
	)`,
}

// DB is a Store on a SQLite file.
type DB struct {
	db   *sql.DB
	path string
}

// Open opens (creating if needed) the state file at path. The directory is
// made 0700 and the file 0600.
func Open(path string) (*DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("state directory %s: %w", filepath.Dir(path), err)
	}
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600); err != nil {
		return nil, fmt.Errorf("state file %s: %w", path, err)
	} else {
		f.Close()
	}
	dsn := "file:" + path + "?_pragma=busy_timeout(20000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	s := &DB{db: db, path: path}
	if err := s.migrate(); err != nil {
		db.Close()
		return nil, fmt.Errorf("state file %s: %w", path, err)
	}
	return s, nil
}

func (s *DB) migrate() error {
	ctx := context.Background()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var v int
	if err := tx.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil {
		return err
	}
	if v > len(migrations) {
		return fmt.Errorf("written by a newer tokenbroker (schema %d, this one knows %d): upgrade tokenbroker", v, len(migrations))
	}
	for i := v; i < len(migrations); i++ {
		if _, err := tx.Exec(migrations[i]); err != nil {
			return fmt.Errorf("migration %d: %w", i+1, err)
		}
	}
	if v < len(migrations) {
		if _, err := tx.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, len(migrations))); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// Get implements store.Store.
func (s *DB) Get(ctx context.Context, profile string) (*token.Token, error) {
	var gen int64
	var data []byte
	err := s.db.QueryRowContext(ctx, `SELECT generation, data FROM tokens WHERE profile = ?`, profile).Scan(&gen, &data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	t := &token.Token{}
	if err := json.Unmarshal(data, t); err != nil {
		return nil, fmt.Errorf("stored token of profile %q is unreadable: %w", profile, err)
	}
	t.Generation = gen
	return t, nil
}

// Put implements store.Store.
func (s *DB) Put(ctx context.Context, profile string, tok *token.Token, expect int64) error {
	c := tok.Clone()
	c.Generation = expect + 1
	data, err := json.Marshal(c)
	if err != nil {
		return err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var gen int64
	err = tx.QueryRowContext(ctx, `SELECT generation FROM tokens WHERE profile = ?`, profile).Scan(&gen)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return err
	}
	if gen != expect {
		return store.ErrConflict
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO tokens (profile, generation, data, updated_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (profile) DO UPDATE SET generation = excluded.generation, data = excluded.data, updated_at = excluded.updated_at`,
		profile, c.Generation, data, time.Now().Unix()); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	tok.Generation = c.Generation
	return nil
}

// Delete implements store.Store.
func (s *DB) Delete(ctx context.Context, profile string) error {
	_, err := s.db.ExecContext(ctx, `DELETE FROM tokens WHERE profile = ?`, profile)
	return err
}

// Profiles implements store.Store.
func (s *DB) Profiles(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT profile FROM tokens ORDER BY profile`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// Close implements store.Store.
func (s *DB) Close() error { return s.db.Close() }
