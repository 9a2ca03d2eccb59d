// Package onecore runs the CLI on one P: its init sets GOMAXPROCS to 1
// unless the environment sets it. Only the CLI's main imports it. Go runs
// package inits in import-path order, each once its imports have run;
// needing only os and runtime, this one runs before the heavy ones
// (modernc's libc and SQLite, golang.org/x, net/http), which then run on
// one P too.
//
// A CLI command is one serial job. With a second P every goroutine a
// library starts (the database/sql opener, a single-flight call) wakes a
// second thread, and copy-on-write faults cost TLB-flush IPIs to the other
// core: together about 0.5 ms of a cached `tokenbroker token` on a 2-core
// VM, and 0.3 ms more when the change waits for main
// (docs/design/2026-12-01-lean-cli.md). Commands that serve call
// runtime.SetDefaultGOMAXPROCS.
package onecore

import (
	"os"
	"runtime"
)

// Cut says whether init set GOMAXPROCS to 1.
var Cut bool

func init() {
	if _, set := os.LookupEnv("GOMAXPROCS"); !set {
		runtime.GOMAXPROCS(1)
		Cut = true
	}
}
