package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/tokenbroker/tokenbroker"
)

// What a short CLI run does not pay for: docs/design/2026-12-01-lean-cli.md.

// Command annotations that say what a command needs of the process.
const (
	// quickRun marks commands that mostly only read and print: they arm
	// the interrupt handler only if they go on to send or write.
	quickRun = "tokenbroker/quick"
	// allCores marks commands that serve (or run emulators): they get
	// every core back.
	allCores = "tokenbroker/all-cores"
)

// interrupts cancels the commands' context on Ctrl-C or SIGTERM. It is
// armed when a command starts work that should end cleanly, not at start:
// os/signal's watcher parks a thread of its own, which cost a cached
// `token` about 0.5 ms. Until then the signals keep their default and end
// the process, which is safe while it has only read.
type interrupts struct {
	once    sync.Once
	cancel  context.CancelFunc // of the commands' context
	stop    func()             // disarms; set when armed
	lastOne func()             // lets the next interrupt end the process; set when armed
}

func (i *interrupts) arm() {
	i.once.Do(func() {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
		done := make(chan struct{})
		go func() {
			for {
				select {
				case <-ch:
					i.cancel() // more are caught too, until lastOne
				case <-done:
					return
				}
			}
		}()
		i.stop = func() { signal.Stop(ch); close(done) }
		i.lastOne = func() { signal.Stop(ch) }
	})
}

// letTheNextEnd gives the signals their default back while the process
// waits on after an interrupt, so that the next one ends it at once. Not
// at the first interrupt itself: a command may still hold the terminal
// (a password prompt with echo off) and must be let restore it.
func (i *interrupts) letTheNextEnd() {
	if i != nil && i.lastOne != nil {
		i.lastOne()
	}
}

// disarm restores the signals' default, and keeps a later arm from
// installing the handler again. Called from the goroutine that armed.
func (i *interrupts) disarm() {
	i.once.Do(func() {})
	if i.stop != nil {
		i.stop()
	}
}

// closeBroker closes the broker, which first waits for renewals in
// flight. After an interrupt it says so when that takes a while: the
// vendor may have rotated the refresh token, so its answer is stored.
func (a *app) closeBroker(ctx context.Context) {
	if a.broker == nil {
		return
	}
	if ctx.Err() == nil {
		a.broker.Close()
		return
	}
	done := make(chan struct{})
	go func() { a.broker.Close(); close(done) }()
	select {
	case <-done:
		return
	case <-time.After(200 * time.Millisecond):
		a.interrupts.letTheNextEnd()
		fmt.Fprintln(a.stderr, "tokenbroker: interrupted: finishing the token request under way, so that the vendor's answer is stored (interrupt again to quit now)")
	}
	<-done
}

// prepare is the root's pre-run hook: a command gets the process it needs.
func (a *app) prepare(cmd *cobra.Command) {
	if _, ok := cmd.Annotations[allCores]; ok {
		a.useAllCores()
	}
	if _, ok := cmd.Annotations[quickRun]; !ok {
		a.armInterrupts()
	}
}

// useAllCores undoes internal/onecore, which runs the CLI on one P, for
// a command that serves.
func (a *app) useAllCores() {
	if a.coresCut {
		runtime.SetDefaultGOMAXPROCS()
	}
}

// armInterrupts arms the interrupt handler when main gave the app one.
func (a *app) armInterrupts() {
	if a.interrupts != nil {
		a.interrupts.arm()
	}
}

// armUnlessStored arms the interrupt handler unless the profile's stored
// token will be handed out as it is, with nothing sent or written: the
// common case of `token` and `header`. PROFILE/TENANT and profiles with
// nothing to store always arm.
func (a *app) armUnlessStored(ctx context.Context, b *tokenbroker.Broker, name string, minTTL time.Duration) {
	if a.interrupts == nil || a.storedWillDo(ctx, b, name, minTTL) {
		return
	}
	a.armInterrupts()
}

func (a *app) storedWillDo(ctx context.Context, b *tokenbroker.Broker, name string, minTTL time.Duration) bool {
	if strings.Contains(name, "/") {
		return false
	}
	p, err := b.Provider(name)
	if err != nil || p.Describe().Stateless {
		return false // Stored would obtain a token
	}
	t, err := b.Stored(ctx, name)
	return err == nil && t != nil && !b.Due(t) && t.Valid(b.Clock().Now(), minTTL)
}
