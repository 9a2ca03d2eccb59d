// Package pgtest gives tests a real PostgreSQL: $TOKENBROKER_TEST_POSTGRES
// when set, else a throwaway cluster made with the machine's initdb and
// pg_ctl (run as the postgres user when root) on a free port. Without
// PostgreSQL a test is skipped with the reason, unless CI=true, where it
// fails: CI must test what it claims.
package pgtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// runAs is the user the server runs as when the tests run as root
// (PostgreSQL refuses to run as root).
type runAs struct{ uid, gid int }

// Cluster is a running PostgreSQL.
type Cluster struct {
	DSN     string // a superuser connection string to the "postgres" database
	dir     string
	port    int
	pgCtl   string
	asUser  *runAs // nil: as this process's user
	managed bool
}

var (
	shared     *Cluster
	sharedErr  error
	sharedOnce sync.Once
)

// Start returns the cluster shared by the tests of this process, starting
// it on first use. The caller's test is skipped (or failed under CI) when
// no PostgreSQL can be had.
func Start(t testing.TB) *Cluster {
	t.Helper()
	sharedOnce.Do(func() { shared, sharedErr = start() })
	if sharedErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("PostgreSQL is required under CI: %v", sharedErr)
		}
		t.Skipf("no PostgreSQL: %v (set TOKENBROKER_TEST_POSTGRES or install postgresql)", sharedErr)
	}
	return shared
}

// StartCluster is Start for programs that are not tests (the benchmarks).
func StartCluster() (*Cluster, error) {
	sharedOnce.Do(func() { shared, sharedErr = start() })
	return shared, sharedErr
}

// NewDatabase makes a fresh database and returns its DSN.
func (c *Cluster) NewDatabase(name string) (string, error) {
	if err := c.psql("CREATE DATABASE " + name); err != nil {
		return "", err
	}
	return c.dsnFor(name), nil
}

// Stop ends a cluster this package started; call it from TestMain.
func Stop() {
	if shared != nil && shared.managed {
		shared.ctl("stop", "-m", "immediate")
		os.RemoveAll(shared.dir)
	}
}

// Database makes a fresh database for one test and returns its DSN.
func (c *Cluster) Database(t testing.TB) string {
	t.Helper()
	dsn, err := c.NewDatabase(fmt.Sprintf("tb_%d_%d", os.Getpid(), time.Now().UnixNano()))
	if err != nil {
		t.Fatalf("create database: %v", err)
	}
	return dsn
}

// Restart stops and starts a cluster this package manages (to test
// reconnection). It fails the test for an external cluster.
func (c *Cluster) Restart(t testing.TB) {
	t.Helper()
	if !c.managed {
		t.Skip("cannot restart an external PostgreSQL")
	}
	if out, err := c.ctl("restart", "-m", "fast", "-w"); err != nil {
		t.Fatalf("pg_ctl restart: %v\n%s", err, out)
	}
}

// StopServer and StartServer take the server down and up (managed only).
func (c *Cluster) StopServer(t testing.TB) {
	t.Helper()
	if !c.managed {
		t.Skip("cannot stop an external PostgreSQL")
	}
	if out, err := c.ctl("stop", "-m", "fast", "-w"); err != nil {
		t.Fatalf("pg_ctl stop: %v\n%s", err, out)
	}
}

func (c *Cluster) StartServer(t testing.TB) {
	t.Helper()
	if out, err := c.ctl("start", "-w", "-l", filepath.Join(c.dir, "log"), "-o", c.opts()); err != nil {
		t.Fatalf("pg_ctl start: %v\n%s", err, out)
	}
}

func (c *Cluster) dsnFor(db string) string {
	if !c.managed {
		return c.DSN // an external DSN names its database
	}
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.port, db)
}

func (c *Cluster) opts() string {
	return fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300", c.port, c.dir)
}

func start() (*Cluster, error) {
	if dsn := os.Getenv("TOKENBROKER_TEST_POSTGRES"); dsn != "" {
		return &Cluster{DSN: dsn}, nil
	}
	initdb, err := find("initdb")
	if err != nil {
		return nil, err
	}
	pgCtl, err := find("pg_ctl")
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "tokenbroker-pg-")
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir, pgCtl: pgCtl, managed: true}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root and there is no postgres user to run the server as")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		c.asUser = &runAs{uid: uid, gid: gid}
		os.Chown(dir, uid, gid)
	}
	if c.port, err = freePort(); err != nil {
		return nil, err
	}
	cmd := exec.Command(initdb, "-D", filepath.Join(dir, "data"), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
	c.asUser.apply(cmd)
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("initdb: %v\n%s", err, out)
	}
	if out, err := c.ctl("start", "-w", "-l", filepath.Join(dir, "log"), "-o", c.opts()); err != nil {
		return nil, fmt.Errorf("pg_ctl start: %v\n%s", err, out)
	}
	c.DSN = c.dsnFor("postgres")
	return c, nil
}

func (c *Cluster) ctl(args ...string) ([]byte, error) {
	cmd := exec.Command(c.pgCtl, append([]string{"-D", filepath.Join(c.dir, "data")}, args...)...)
	c.asUser.apply(cmd)
	return cmd.CombinedOutput()
}

func (c *Cluster) psql(sql string) error {
	psql, err := find("psql")
	if err != nil {
		return err
	}
	out, err := exec.Command(psql, c.DSN, "-v", "ON_ERROR_STOP=1", "-c", sql).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %s", err, out)
	}
	return nil
}

// find looks on PATH, then in Debian's versioned directories.
func find(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/" + name)
	if len(matches) > 0 {
		return matches[len(matches)-1], nil
	}
	return "", fmt.Errorf("%s not found", name)
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}
