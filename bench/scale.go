package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tokenbroker/tokenbroker"
	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/internal/pgtest"
	"github.com/tokenbroker/tokenbroker/ratelimit"
	"github.com/tokenbroker/tokenbroker/refresh"
	"github.com/tokenbroker/tokenbroker/store"
)

// scale runs an MSP's worth of tenants (profiles) on one PostgreSQL with
// three replicas (brokers with their own connection pools and background
// refreshers, in this process) and reports start-up time, memory per
// profile, refreshes per second (peak against mean), database transactions
// per refresh, and how many rate-limit reservations per second the shared
// limit sustains.
func scale(profiles int, ttl, measure time.Duration) {
	cluster, err := pgtest.StartCluster()
	if err != nil {
		fmt.Printf("scale: no PostgreSQL (%v); skipped\n", err)
		return
	}
	defer pgtest.Stop()
	dsn, err := cluster.NewDatabase(fmt.Sprintf("tb_scale_%d", os.Getpid()))
	if err != nil {
		fmt.Println("scale:", err)
		return
	}
	up := startUpstream()
	defer up.close()
	up.ttl.Store(int64(ttl / time.Second))
	cfg := &config.Config{State: dsn, Key: config.Secret(base64.StdEncoding.EncodeToString(make([]byte, 32))), Profiles: map[string]*config.Profile{}}
	for i := range profiles {
		n := fmt.Sprintf("tenant-%05d", i)
		cfg.Profiles[n] = &config.Profile{Name: n, Provider: "oauth2", TokenURL: up.url + "/token", BaseURL: up.url,
			ClientID: config.Secret("client-" + n), ClientSecret: "secret", RateLimit: &config.RateLimit{PerSecond: 7}}
	}
	names := cfg.Names()
	fmt.Printf("scale: %d profiles, tokens of %s, 3 replicas on one PostgreSQL\n", profiles, ttl)

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var brokers []*tokenbroker.Broker
	var stores []store.Store
	start := time.Now()
	for range 3 {
		st, err := tokenbroker.OpenStore(cfg)
		if err != nil {
			fmt.Println("scale:", err)
			return
		}
		defer st.Close()
		b := tokenbroker.New(cfg, tokenbroker.Options{Store: st})
		if w, ok := st.(store.Watcher); ok {
			w.Watch(ctx, b.Invalidate)
		}
		s := refresh.New(refresh.Broker(func() *tokenbroker.Broker { return b }), nil, nil)
		s.Set(names)
		go s.Run(ctx)
		brokers, stores = append(brokers, b), append(stores, st)
	}
	for up.tokens.Load() < int64(profiles) {
		time.Sleep(100 * time.Millisecond)
	}
	cold := time.Since(start)
	// Every replica holds every token in memory once it has looked at it.
	for _, b := range brokers {
		for _, n := range names {
			b.Token(ctx, n, tokenbroker.TokenOptions{})
		}
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	perProfile := float64(after.HeapAlloc-before.HeapAlloc) / float64(3*profiles)
	fmt.Printf("  cold start: all %d tokens obtained %s after the replicas started (the refresher spreads first renewals over %s)\n",
		profiles, cold.Round(time.Millisecond), min(max(5*time.Second, time.Duration(profiles)*10*time.Millisecond), 5*time.Minute))
	fmt.Printf("  memory: %.1f KiB per profile per replica (heap, tokens and providers in memory)\n", perProfile/1024)

	// A warm start: a fourth replica on the same state, with every token stored.
	t0 := time.Now()
	st4, err := tokenbroker.OpenStore(cfg)
	if err == nil {
		b4 := tokenbroker.New(cfg, tokenbroker.Options{Store: st4})
		for _, n := range names {
			b4.Token(ctx, n, tokenbroker.TokenOptions{})
		}
		fmt.Printf("  warm start: a new replica loaded all %d stored tokens in %s\n", profiles, time.Since(t0).Round(time.Millisecond))
		st4.Close()
	}

	// Steady state: renewals per second, and database work per renewal.
	xacts := func() int64 {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return 0
		}
		defer conn.Close(ctx)
		var n int64
		conn.QueryRow(ctx, `SELECT xact_commit + xact_rollback FROM pg_stat_database WHERE datname = current_database()`).Scan(&n)
		return n
	}
	upBefore, xBefore, mStart := up.tokens.Load(), xacts(), time.Now()
	time.Sleep(measure)
	renewals, tx := up.tokens.Load()-upBefore, xacts()-xBefore
	up.mu.Lock()
	perSecond := map[int64]int{}
	for _, at := range up.issued {
		if at.After(mStart) {
			perSecond[at.Unix()]++
		}
	}
	up.mu.Unlock()
	peak := 0
	for _, c := range perSecond {
		peak = max(peak, c)
	}
	mean := float64(renewals) / measure.Seconds()
	fmt.Printf("  steady state over %s: %d renewals, mean %.1f/s (expected %.1f/s: one per profile per ~72.5%% of a lifetime), peak %d/s (%.1fx the mean)\n",
		measure, renewals, mean, float64(profiles)/(0.725*ttl.Seconds()), peak, float64(peak)/max(mean, 1))
	if renewals > 0 {
		fmt.Printf("  database: %d transactions, %.1f per renewal across the 3 replicas (the lease, the re-read, the write, the audit, and the other replicas' reads)\n",
			tx, float64(tx)/float64(renewals))
	}
	cancel()

	// The shared rate limit: reservations per second across many tenants.
	lim, ok := stores[0].(store.Limits)
	if !ok {
		return
	}
	var done atomic.Int64
	rctx, rcancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer rcancel()
	var wg sync.WaitGroup
	var lat []time.Duration
	var mu sync.Mutex
	for w := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st := stores[w%3].(store.Limits)
			_ = lim
			for i := w; rctx.Err() == nil; i += 64 {
				t0 := time.Now()
				if _, err := st.Reserve(rctx, fmt.Sprintf("tenant-%05d", i%profiles), 7, 1040*time.Millisecond, time.Hour); err == nil {
					done.Add(1)
					mu.Lock()
					lat = append(lat, time.Since(t0))
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	p99 := time.Duration(0)
	if len(lat) > 0 {
		p99 = lat[len(lat)*99/100]
	}
	fmt.Printf("  shared rate limit, one round trip per call (releases before shares): %d reservations/s across %d tenants from 3 replicas (64 workers), p99 %s each\n",
		done.Load()/5, profiles, p99.Round(time.Microsecond))
	shares(stores)
}

// shares measures calls/s within leased shares: three replicas' shares of
// one account whose limit is far above what is asked, renewed through the
// database once a second, 64 workers taking turns; no call makes a round
// trip, so this is the ceiling the shares leave.
func shares(stores []store.Store) {
	const n = 3_000_000 // calls per second: never the bottleneck here
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var list []*ratelimit.Share
	for i, st := range stores {
		l, ok := st.(ratelimit.Leaser)
		if !ok {
			return
		}
		sh := ratelimit.NewShare("bench-account", fmt.Sprintf("replica-%d", i), n, time.Second, 10*time.Second, nil, func(string) {})
		list = append(list, sh)
		go ratelimit.Renew(ctx, l, func() []*ratelimit.Share { return []*ratelimit.Share{sh} })
	}
	deadline := time.Now().Add(15 * time.Second)
	for _, sh := range list {
		for sh.State().Slots < n/3 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
	}
	var done atomic.Int64
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	defer wcancel()
	var wg sync.WaitGroup
	for w := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for wctx.Err() == nil {
				if _, err := list[w%len(list)].Wait(wctx); err == nil {
					done.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	fmt.Printf("  shared rate limit, leased shares (this release): %d calls/s within the shares of 3 replicas (64 workers), no round trip per call\n", done.Load()/5)
}
