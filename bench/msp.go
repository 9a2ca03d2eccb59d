package main

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenbroker/tokenbroker"
	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/emulator"
	"github.com/tokenbroker/tokenbroker/server"
)

// mspTenants measures one MSP with many tenants: tokens per lifetime when
// callers ask for every tenant's token at once (RUCKUS One, short-lived
// tokens), memory per tenant, and Aruba's 7 calls/s held for tenants
// calling through the proxy together, each one served.
func mspTenants(rep *report, dir string, tenants, callers, lifetime, proxied int, proxyFor time.Duration) {
	// Tokens per lifetime, all tenants of one MSP.
	rk := emulator.NewRuckus(nil)
	rk.TokenTTL = time.Duration(lifetime) * time.Second
	rk.DelegatedTenants = nil
	for i := range tenants {
		rk.DelegatedTenants = append(rk.DelegatedTenants, fmt.Sprintf("delegated-%05d", i+1))
	}
	var mu sync.Mutex
	var issued []time.Time
	up := serveOn(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/oauth2/token") {
			mu.Lock()
			issued = append(issued, time.Now())
			mu.Unlock()
		}
		rk.ServeHTTP(w, r)
	}))
	defer up.Close()
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var list []config.Tenant // what the profile's tenants cost is measured from here
	for _, id := range rk.DelegatedTenants {
		list = append(list, config.Tenant{ID: id, Name: "customer-" + strings.TrimPrefix(id, "delegated-")})
	}
	cfg := &config.Config{State: "sqlite:" + filepath.Join(dir, "msp.db"), Profiles: map[string]*config.Profile{
		"msp": {Name: "msp", Provider: "ruckus-one", BaseURL: "http://" + up.Addr, TenantID: rk.TenantID,
			ClientID: config.Secret(rk.ClientID), ClientSecret: config.Secret(rk.ClientSecret), Tenants: config.Tenants{List: list}},
	}}
	st, err := tokenbroker.OpenStore(cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	b := tokenbroker.New(cfg, tokenbroker.Options{Store: st})
	defer b.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Duration(lifetime)*time.Second)
	var wg sync.WaitGroup
	var calls, failed atomic.Int64
	for c := range callers {
		wg.Go(func() {
			for i := c; ctx.Err() == nil; i += callers {
				if _, err := b.Handout(ctx, "msp/"+list[i%tenants].Name, tokenbroker.TokenOptions{}); err != nil && ctx.Err() == nil {
					failed.Add(1)
				}
				calls.Add(1)
			}
		})
	}
	wg.Wait()
	cancel()
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(b)
	mu.Lock()
	minGap := time.Duration(1<<63 - 1)
	for i := 1; i < len(issued); i++ {
		minGap = min(minGap, issued[i].Sub(issued[i-1]))
	}
	requests := len(issued)
	mu.Unlock()
	rep.printf("- **One token for the whole MSP**: %d concurrent callers asked for the tokens of %d RUCKUS One tenants (`msp/customer-N`) for three %d-s token lifetimes: %d hand-outs, **%d token requests in all**, the closest two %.2f of a lifetime apart, %d errors. (Each token is renewed once, at 65-80%% of its life, so three lifetimes see the first request and up to four renewals.)\n",
		callers, tenants, lifetime, calls.Load(), requests, minGap.Seconds()/float64(lifetime), failed.Load())
	rep.printf("- **Memory**: %.0f bytes per tenant (the heap with the %d-tenant MSP profile in use, its token handed out to each, less the heap before the profile was made, per tenant).\n",
		float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/float64(tenants), tenants)

	// Aruba's 7 calls/s per MSP, for tenants calling through the proxy at once.
	ar := emulator.NewAruba(nil)
	arubaUp := serveOn(ar)
	defer arubaUp.Close()
	var alist []config.Tenant
	for _, c := range ar.Customers[:min(proxied, len(ar.Customers))] {
		alist = append(alist, config.Tenant{ID: c.ID, Name: c.Name})
	}
	acfg := &config.Config{State: "sqlite:" + filepath.Join(dir, "msp-aruba.db"), Profiles: map[string]*config.Profile{
		"msp": {Name: "msp", Provider: "aruba-central", BaseURL: "http://" + arubaUp.Addr, ClientID: config.Secret(ar.ClientID),
			ClientSecret: config.Secret(ar.ClientSecret), Tenants: config.Tenants{List: alist}},
	}}
	ast, err := tokenbroker.OpenStore(acfg)
	if err != nil {
		log.Fatal(err)
	}
	defer ast.Close()
	srv, err := server.New(acfg, server.Options{Store: ast, APIKey: brokerKey})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := srv.Broker().Import(context.Background(), "msp", ar.IssueOfflineToken(), tokenbroker.ImportOptions{}); err != nil {
		log.Fatal(err)
	}
	front := serveBroker(srv)
	defer front.Close()
	pctx, pcancel := context.WithTimeout(context.Background(), proxyFor)
	defer pcancel()
	served := make([]int, len(alist))
	var refused, bad atomic.Int64
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: len(alist)}}
	start := time.Now()
	for i, tn := range alist {
		wg.Go(func() {
			for pctx.Err() == nil {
				req, _ := http.NewRequestWithContext(pctx, http.MethodGet, "http://"+front.Addr+"/proxy/msp/monitoring/v1/aps", nil)
				req.Header.Set("Authorization", "Bearer "+brokerKey)
				req.Header.Set("X-Tokenbroker-Tenant", tn.Name)
				resp, err := client.Do(req)
				if err != nil {
					if pctx.Err() == nil {
						bad.Add(1)
					}
					continue
				}
				resp.Body.Close()
				switch {
				case resp.StatusCode == 200:
					served[i]++
				case resp.StatusCode == 429 && resp.Header.Get(tokenbroker.RefusedHeader) != "":
					refused.Add(1) // tokenbroker's own: wait as told
					select {
					case <-pctx.Done():
					case <-time.After(time.Second):
					}
				default:
					bad.Add(1)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	accepted, limited := ar.APIStats()
	least, most := slices.Min(served), slices.Max(served)
	rep.printf("- **One budget for all tenants**: %d Aruba tenants called through the proxy at once for %s, each as fast as it was let: %d calls accepted = **%.2f calls/s in aggregate** (the MSP's limit is 7/s), **%d answered 429 by the emulator**, %d told by tokenbroker to wait, %d errors; **every tenant served: the least %d calls, the most %d**.\n",
		len(alist), proxyFor, accepted, float64(accepted)/elapsed.Seconds(), limited, refused.Load(), bad.Load(), least, most)
}
