// Command bench measures tokenbroker against baselines in one run and prints
// ratios: the local token API against a bare net/http handler, the proxy
// against calling the upstream directly (and against nginx with a fixed
// Authorization header, when nginx is installed, and against a minimal Go
// proxy loop), and upstream token requests per token lifetime under 1,000
// concurrent callers.
//
//	go run ./bench [-duration 5s] [-conns 64]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenbroker/tokenbroker"
	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/server"
)

const brokerKey = "bench-broker-key"

func main() {
	duration := flag.Duration("duration", 5*time.Second, "how long each load runs")
	conns := flag.Int("conns", 64, "concurrent connections of the load generator")
	rounds := flag.Int("rounds", 3, "interleaved rounds of the proxy, nginx and the minimal loop under wrk")
	callers := flag.Int("callers", 1000, "concurrent callers for the token-requests-per-lifetime check")
	scaleOnly := flag.Bool("scale", false, "run only the PostgreSQL scale benchmark (needs PostgreSQL)")
	profiles := flag.Int("profiles", 10000, "profiles (tenants) in the scale benchmark")
	scaleTTL := flag.Duration("scale-ttl", 2*time.Minute, "token lifetime in the scale benchmark")
	measure := flag.Duration("scale-measure", 2*time.Minute, "how long the scale benchmark measures the steady state")
	flag.Parse()
	log.SetFlags(0)
	if *scaleOnly {
		scale(*profiles, *scaleTTL, *measure)
		return
	}

	dir, err := os.MkdirTemp("", "tokenbroker-bench-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	up := startUpstream()
	defer up.close()
	tlsAddr, caFile := startTLSUpstream(dir, up.srv.Handler)

	cfg := &config.Config{State: "sqlite:" + filepath.Join(dir, "state.db"), Profiles: map[string]*config.Profile{
		"bench":       {Name: "bench", Provider: "oauth2", TokenURL: up.url + "/token", BaseURL: up.url, ClientID: "id", ClientSecret: "secret"},
		"bench-https": {Name: "bench-https", Provider: "oauth2", TokenURL: up.url + "/token", BaseURL: "https://" + tlsAddr, ClientID: "id", ClientSecret: "secret"},
	}}
	st, err := tokenbroker.OpenStore(cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	srv, err := server.New(cfg, server.Options{Store: st, APIKey: brokerKey})
	if err != nil {
		log.Fatal(err)
	}
	tb := serveBroker(srv)
	defer tb.Close()

	// The same JSON the token API gives, served by a bare handler.
	h, err := srv.Broker().Handout(context.Background(), "bench", tokenbroker.TokenOptions{})
	if err != nil {
		log.Fatal(err)
	}
	handout, _ := json.Marshal(h)
	bare := serveOn(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(handout)
	}))
	defer bare.Close()

	fmt.Printf("tokenbroker bench: %s per load, %d connections, GOMAXPROCS=%d\n\n", *duration, *conns, runtime.GOMAXPROCS(0))
	auth := map[string]string{"Authorization": "Bearer " + brokerKey}

	bareR := load("bare net/http handler (same JSON)", "http://"+bare.Addr+"/", nil, *duration, *conns)
	apiR := load("tokenbroker token API", "http://"+tb.Addr+"/v1/profiles/bench/token", auth, *duration, *conns)
	fmt.Printf("  token API / bare handler: %.2f of the requests/s\n\n", apiR.rps/bareR.rps)

	directR := load("upstream, direct", up.url+"/api/item", map[string]string{"Authorization": "Bearer " + h.AccessToken}, *duration, *conns)
	proxyR := load("tokenbroker proxy", "http://"+tb.Addr+"/proxy/bench/api/item", auth, *duration, *conns)
	fmt.Printf("  proxy / direct: %.2f of the requests/s; added latency p50 %s, p99 %s\n",
		proxyR.rps/directR.rps, (proxyR.p50 - directR.p50).Round(time.Microsecond), (proxyR.p99 - directR.p99).Round(time.Microsecond))
	if ng, ok := startNginx(dir, up.addr, h.AccessToken, ""); ok {
		nginxR := load("nginx proxy_pass with a fixed Authorization", "http://"+ng.addr+"/api/item", nil, *duration, *conns)
		ng.stop()
		fmt.Printf("  nginx / direct: %.2f; tokenbroker proxy / nginx: %.2f of the requests/s\n\n", nginxR.rps/directR.rps, proxyR.rps/nginxR.rps)
	} else {
		fmt.Printf("  nginx not installed (apt-get install -y nginx): no nginx comparison\n\n")
	}

	// The same loads with wrk, when installed.
	if b, ok := loadWrk("bare net/http handler (same JSON)", "http://"+bare.Addr+"/", nil, *duration, *conns); ok {
		a, _ := loadWrk("tokenbroker token API", "http://"+tb.Addr+"/v1/profiles/bench/token", auth, *duration, *conns)
		fmt.Printf("  token API / bare handler: %.2f of the requests/s (wrk)\n\n", a.rps/b.rps)
	}
	if d, ok := loadWrk("upstream, direct", up.url+"/api/item", map[string]string{"Authorization": "Bearer " + h.AccessToken}, *duration, *conns); ok {
		proxyWrk(d, "http://"+tb.Addr, auth, dir, up.addr, tlsAddr, caFile, h.AccessToken, *rounds, *duration, *conns)
	}

	perLifetime(*callers, dir)
}

// result is one load's outcome.
type result struct {
	rps      float64
	p50, p99 time.Duration
}

// load runs a closed-loop load of conns keep-alive connections for d.
func load(name, url string, headers map[string]string, d time.Duration, conns int) result {
	tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var mu sync.Mutex
	var lat []time.Duration
	var errs atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := make([]time.Duration, 0, 4096)
			req, _ := http.NewRequest(http.MethodGet, url, nil)
			for k, v := range headers {
				req.Header.Set(k, v)
			}
			for ctx.Err() == nil {
				t0 := time.Now()
				resp, err := hc.Do(req)
				if err != nil {
					errs.Add(1)
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					errs.Add(1)
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	r := result{rps: float64(len(lat)) / elapsed.Seconds()}
	if len(lat) > 0 {
		r.p50, r.p99 = lat[len(lat)/2], lat[len(lat)*99/100]
	}
	fmt.Printf("%-46s %9.0f req/s   p50 %8s   p99 %8s   errors %d\n", name, r.rps, r.p50.Round(time.Microsecond), r.p99.Round(time.Microsecond), errs.Load())
	return r
}

// upstream is a vendor API that answers a small JSON body, and a token
// endpoint that counts its requests.
type upstream struct {
	url, addr string
	srv       *http.Server
	tokens    atomic.Int64
	ttl       atomic.Int64 // seconds
	mu        sync.Mutex
	issued    []time.Time // when each token request arrived
}

func startUpstream() *upstream {
	u := &upstream{}
	u.ttl.Store(3600)
	body := []byte(`{"id":"ap-1","name":"6c:f3:7f:c3:5d:92","model":"AP-134","status":"Up","serial":"AX0140586"}`)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", func(w http.ResponseWriter, r *http.Request) {
		n := u.tokens.Add(1)
		u.mu.Lock()
		u.issued = append(u.issued, time.Now())
		u.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"access_token":"bench-token-%d","token_type":"Bearer","expires_in":%d}`, n, u.ttl.Load())
	})
	mux.HandleFunc("GET /api/item", func(w http.ResponseWriter, r *http.Request) {
		if len(r.Header.Get("Authorization")) < 8 {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})
	s := serveOn(mux)
	u.srv, u.addr, u.url = s.Server, s.Addr, "http://"+s.Addr
	return u
}

func (u *upstream) close() { u.srv.Close() }

type served struct {
	*http.Server
	Addr string
}

// serveBroker is the local API as `serve` runs it.
func serveBroker(srv *server.Server) served {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	hs, ln := srv.HTTPServer(ln, nil)
	go hs.Serve(ln)
	return served{hs, ln.Addr().String()}
}

func serveOn(h http.Handler) served {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	s := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go s.Serve(ln)
	return served{s, ln.Addr().String()}
}

// proxyWrk compares the proxy with nginx and with the minimal Go loop under
// wrk in interleaved rounds, so that drift on a shared machine (other
// tenants, frequency changes) falls on all of them alike, and reports the
// median ratio of the rounds with their range. Each round also compares
// tokenbroker and nginx in front of the same upstream served over HTTPS,
// as every vendor API is.
func proxyWrk(direct result, tbURL string, auth map[string]string, dir, upstream, tlsUpstream, caFile, token string, rounds int, d time.Duration, conns int) {
	ng, haveNginx := startNginx(dir, upstream, token, "")
	if haveNginx {
		defer ng.stop()
	}
	ngTLS, haveNginxTLS := startNginx(dir, tlsUpstream, token, caFile)
	if haveNginxTLS {
		defer ngTLS.stop()
	}
	var vsNginx, tlsVsNginx []float64
	var first, firstNginx result
	for i := range rounds {
		p, _ := loadWrk(fmt.Sprintf("tokenbroker proxy (round %d)", i+1), tbURL+"/proxy/bench/api/item", auth, d, conns)
		if i == 0 {
			first = p
		}
		if haveNginx {
			n, _ := loadWrk("nginx proxy_pass with a fixed Authorization", "http://"+ng.addr+"/api/item", nil, d, conns)
			vsNginx = append(vsNginx, p.rps/n.rps)
			if i == 0 {
				firstNginx = n
			}
		}
		if haveNginxTLS {
			pt, _ := loadWrk("tokenbroker proxy, HTTPS upstream", tbURL+"/proxy/bench-https/api/item", auth, d, conns)
			nt, _ := loadWrk("nginx, HTTPS upstream (verified)", "http://"+ngTLS.addr+"/api/item", nil, d, conns)
			tlsVsNginx = append(tlsVsNginx, pt.rps/nt.rps)
		}
	}
	fmt.Printf("  proxy / direct: %.2f of the requests/s (wrk, round 1); latency p50 %s (direct %s), p99 %s (direct %s)\n",
		first.rps/direct.rps, first.p50, direct.p50, first.p99, direct.p99)
	if haveNginx {
		fmt.Printf("  nginx / direct: %.2f (round 1); tokenbroker proxy / nginx: %s of the requests/s (wrk)\n", firstNginx.rps/direct.rps, spread(vsNginx))
		if haveNginxTLS {
			fmt.Printf("  HTTPS upstream: tokenbroker proxy / nginx: %s of the requests/s (wrk)\n", spread(tlsVsNginx))
		}
		fmt.Println()
	} else {
		fmt.Printf("  nginx not installed (apt-get install -y nginx): no nginx comparison\n\n")
	}
}

// spread formats ratios as their median and range over the rounds.
func spread(r []float64) string {
	if len(r) == 0 {
		return "-"
	}
	s := append([]float64(nil), r...)
	sort.Float64s(s)
	return fmt.Sprintf("%.2f (median of %d rounds; %.2f-%.2f)", s[len(s)/2], len(s), s[0], s[len(s)-1])
}
