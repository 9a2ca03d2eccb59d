package main

import (
	"context"
	"fmt"
	"log"
	"path/filepath"
	"sync"
	"time"

	"github.com/tokenbroker/tokenbroker"
	"github.com/tokenbroker/tokenbroker/config"
)

// perLifetime runs callers goroutines asking for the token for three token
// lifetimes and counts the upstream token requests per lifetime: the
// broker's promise is exactly one.
func perLifetime(callers, ttl int, dir string) string {
	up := startUpstream()
	defer up.close()
	up.ttl.Store(int64(ttl)) // seconds; renewed at 80% of this, less jitter
	cfg := &config.Config{State: "sqlite:" + filepath.Join(dir, "lifetime.db"), Profiles: map[string]*config.Profile{
		"p": {Name: "p", Provider: "oauth2", TokenURL: up.url + "/token", ClientID: "id", ClientSecret: "secret"},
	}}
	st, err := tokenbroker.OpenStore(cfg)
	if err != nil {
		log.Fatal(err)
	}
	b := tokenbroker.New(cfg, tokenbroker.Options{Store: st})
	defer b.Close()
	lifetimes := 3
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(lifetimes*ttl)*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	var calls, failures sync.Map
	start := make(chan struct{})
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			n, bad := 0, 0
			for ctx.Err() == nil {
				if _, err := b.Token(ctx, "p", tokenbroker.TokenOptions{}); err != nil && ctx.Err() == nil {
					bad++
				}
				n++
			}
			calls.Store(i, n)
			failures.Store(i, bad)
		}()
	}
	close(start)
	wg.Wait()
	total, bad := 0, 0
	calls.Range(func(_, v any) bool { total += v.(int); return true })
	failures.Range(func(_, v any) bool { bad += v.(int); return true })
	// Each token lives ttl and is renewed at 80% of it (less up to 5%
	// jitter): one request per lifetime means consecutive requests are about
	// 0.75-0.8 of a lifetime apart, never closer.
	up.mu.Lock()
	issued := up.issued
	up.mu.Unlock()
	minGap := time.Duration(1<<63 - 1)
	for i := 1; i < len(issued); i++ {
		minGap = min(minGap, issued[i].Sub(issued[i-1]))
	}
	perLife := 1.0
	if minGap < time.Duration(ttl)*time.Second/2 {
		perLife = 2 // two requests inside one lifetime
	}
	return fmt.Sprintf("%d concurrent callers, %d Token calls in %ds (tokens of %ds): %d upstream token requests, closest two %s apart = %.2f of a lifetime: %.0f request per token lifetime, %d errors",
		callers, total, lifetimes*ttl, ttl, len(issued), minGap.Round(time.Millisecond), minGap.Seconds()/float64(ttl), perLife, bad)
}
