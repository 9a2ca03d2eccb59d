// Command bench measures tokenbroker against peers in one run and writes
// the figures to docs/performance.md:
//
//   - the local token API against a bare net/http handler serving the same
//     JSON;
//
//   - the proxy against the same upstream called directly and through
//     nginx, HAProxy, Caddy and a plain httputil.ReverseProxy (each setting
//     one Authorization header), under wrk, in alternating rounds so that
//     drift on a shared machine falls on all of them alike;
//
//   - the latency the proxy adds at a fixed rate (open loop);
//
//   - upstream token requests per token lifetime under 1,000 callers;
//
//   - the CLI's start-up: `token` on a cache hit and `status` of 100
//     profiles as whole processes, against a Go hello-world and a Go
//     program reading one SQLite row.
//
//     go run ./bench [-duration 5s] [-rounds 3] [-out docs/performance.md]
//
// Peers come from Debian: apt-get install -y nginx haproxy caddy wrk. A
// peer that is not installed is left out and said so.
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
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenbroker/tokenbroker"
	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/internal/httpx"
	"github.com/tokenbroker/tokenbroker/server"
)

const brokerKey = "bench-broker-key"

// options are the bench's flags.
type options struct {
	duration     time.Duration
	conns        int
	rounds       int
	rate         int
	callers      int
	lifetime     int // seconds, the token lifetime of the per-lifetime check
	out          string
	profileProxy string
	profileToken string
	startupRuns  int           // whole-process runs of each command in the start-up section
	mspTenants   int           // tenants of the MSP in the MSP section
	mspProxied   int           // tenants calling through the proxy at once
	mspFor       time.Duration // how long they call
}

func main() {
	var o options
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "how long each load runs")
	flag.IntVar(&o.conns, "conns", 64, "concurrent connections of the load generator")
	flag.IntVar(&o.rounds, "rounds", 3, "alternating rounds of the contenders under wrk")
	flag.IntVar(&o.rate, "rate", 2000, "requests/s of the fixed-rate latency run")
	flag.IntVar(&o.callers, "callers", 1000, "concurrent callers for the token-requests-per-lifetime check")
	flag.IntVar(&o.lifetime, "lifetime", 2, "token lifetime in seconds of the per-lifetime check (it runs three)")
	flag.IntVar(&o.startupRuns, "startup-runs", 300, "whole-process runs of each command in the CLI start-up section")
	flag.IntVar(&o.mspTenants, "msp-tenants", 1000, "tenants of the MSP in the MSP section")
	flag.IntVar(&o.mspProxied, "msp-proxied", 100, "tenants calling through the proxy at once in the MSP section")
	flag.DurationVar(&o.mspFor, "msp-for", 60*time.Second, "how long the MSP's tenants call through the proxy")
	flag.StringVar(&o.out, "out", "docs/performance.md", "where to write the report (- for stdout only)")
	flag.StringVar(&o.profileProxy, "profile-proxy", "", "only load the proxy, writing a CPU profile of the run to this file")
	flag.StringVar(&o.profileToken, "profile-token", "", "only load the token API, writing a CPU profile of the run to this file")
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
	if err := run(o); err != nil {
		log.Fatal(err)
	}
}

// run measures everything and writes the report.
func run(o options) error {
	dir, err := os.MkdirTemp("", "tokenbroker-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	up := startUpstream()
	defer up.close()
	cfg := &config.Config{State: "sqlite:" + filepath.Join(dir, "state.db"), Profiles: map[string]*config.Profile{
		"bench": {Name: "bench", Provider: "oauth2", TokenURL: up.url + "/token", BaseURL: up.url, ClientID: "id", ClientSecret: "secret"},
	}}
	st, err := tokenbroker.OpenStore(cfg)
	if err != nil {
		return err
	}
	defer st.Close()
	srv, err := server.New(cfg, server.Options{Store: st, APIKey: brokerKey})
	if err != nil {
		return err
	}
	tb := serveBroker(srv)
	defer tb.Close()
	h, err := srv.Broker().Handout(context.Background(), "bench", tokenbroker.TokenOptions{})
	if err != nil {
		return err
	}
	handout, _ := json.Marshal(h)
	handout = append(handout, '\n')
	bare := serveOn(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(handout)
	}))
	defer bare.Close()

	for file, path := range map[string]string{o.profileProxy: "/proxy/bench/api/item", o.profileToken: "/v1/profiles/bench/token"} {
		if file == "" {
			continue
		}
		f, err := os.Create(file)
		if err != nil {
			return err
		}
		pprof.StartCPUProfile(f)
		loadWrk("tokenbroker "+path, "http://"+tb.Addr+path, map[string]string{"Authorization": "Bearer " + brokerKey}, o.duration, o.conns)
		pprof.StopCPUProfile()
		return f.Close()
	}

	rep := &report{}
	rep.printf("Measured by `go run ./bench -duration %s -rounds %d` on %s: %d cores, GOMAXPROCS=%d, %s; %d connections per load.\n",
		o.duration, o.rounds, time.Now().UTC().Format("2006-01-02"), runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), o.conns)
	rep.printf("Everything runs on this one machine: the load generator, the contenders and the upstream share its cores, so the figures are ratios measured in the same run, not absolute capacity.\n")
	gen := "wrk (2 threads)"
	if lookBin("wrk") == "" {
		gen = "the bench's own Go load generator (wrk is not installed)"
	}
	rep.printf("Load generator: %s, closed loop, %s a load.\n", gen, o.duration)

	auth := map[string]string{"Authorization": "Bearer " + brokerKey}
	token := map[string]string{"Authorization": "Bearer " + h.AccessToken}

	// The token API against a bare handler.
	api := contest(o.rounds, o.duration, o.conns, []contender{
		{name: "bare net/http handler (same JSON)", url: "http://" + bare.Addr + "/"},
		{name: "tokenbroker token API", url: "http://" + tb.Addr + "/v1/profiles/bench/token", headers: auth},
	})
	rep.section("Token API", "GET /v1/profiles/{name}/token, answered from memory, against a bare net/http handler writing the same bytes.")
	rep.table(api, "bare net/http handler (same JSON)")
	rep.printf("\n**Token API / bare handler: %s** (aim: at least 0.90).\n", api.ratio("tokenbroker token API", "bare net/http handler (same JSON)"))

	// The proxy against direct calls and the peers.
	contenders := []contender{
		{name: "upstream, direct", url: up.url + "/api/item", headers: token},
		{name: "tokenbroker proxy", url: "http://" + tb.Addr + "/proxy/bench/api/item", headers: auth},
	}
	rp := startReverseProxy("httputil.ReverseProxy, tuned transport", up.addr, h.AccessToken, tunedTransport())
	defer rp.stop()
	_, guarded := httpx.NewTransport(time.Minute, 512, nil)
	rpg := startReverseProxy("httputil.ReverseProxy, tokenbroker's transport", up.addr, h.AccessToken, guarded)
	defer rpg.stop()
	contenders = append(contenders, contender{name: rp.name, url: "http://" + rp.addr + "/api/item"},
		contender{name: rpg.name, url: "http://" + rpg.addr + "/api/item"})
	var missing []string
	for _, start := range []func(dir, upstream, token string) (*peer, bool){startCaddy, startNginx, startHAProxy} {
		p, ok := start(dir, up.addr, h.AccessToken)
		if !ok {
			continue
		}
		defer p.stop()
		contenders = append(contenders, contender{name: p.name, url: "http://" + p.addr + "/api/item"})
	}
	for _, n := range []string{"Caddy", "nginx", "HAProxy"} {
		if !hasContender(contenders, n) {
			missing = append(missing, n)
		}
	}
	proxied := contest(o.rounds, o.duration, o.conns, contenders)
	rep.section("Proxy", "GET /proxy/bench/api/item (a 96-byte JSON answer) through each contender to the same upstream on loopback over plain HTTP. "+
		"Every peer sets one fixed Authorization header; tokenbroker also checks the broker key, the path rule and the method, "+
		"looks up the token, admits the call against the profile's limits (none here) and guards the kept-alive connection. "+
		"Caddy and the two ReverseProxy peers are Go, like tokenbroker, and use both cores; nginx runs one worker and HAProxy one thread.")
	rep.table(proxied, "upstream, direct")
	rep.printf("\n")
	for _, vs := range []string{rp.name, "Caddy", "nginx", "HAProxy"} {
		if hasContender(contenders, vs) {
			rep.printf("- **tokenbroker proxy / %s: %s**\n", vs, proxied.ratio("tokenbroker proxy", vs))
		}
	}
	rep.printf("- the stray-byte guard and tokenbroker's transport under a plain ReverseProxy: %s of the tuned transport's requests/s\n",
		proxied.ratio(rpg.name, rp.name))
	if len(missing) > 0 {
		rep.printf("- not installed, so not measured: %s (`apt-get install -y nginx haproxy caddy wrk`)\n", strings.Join(missing, ", "))
	}
	rep.printf("\nAim: the proxy at least 1.5 times the plain ReverseProxy and Caddy; nginx and HAProxy are the reference.\n")

	// Latency at a fixed rate.
	rep.section("Added latency at a fixed rate", fmt.Sprintf("An open-loop generator sends %d requests/s for %s, each timed from the moment it was due (so a stall counts against the proxy, not hidden by it); direct and proxied runs alternate for %d rounds, and each figure is the median of the rounds.", o.rate, o.duration, o.rounds))
	var direct, proxy []result
	for range o.rounds {
		direct = append(direct, fixedRate(contenders[0].url, contenders[0].headers, o.rate, o.duration))
		proxy = append(proxy, fixedRate(contenders[1].url, contenders[1].headers, o.rate, o.duration))
	}
	rep.printf("| path | p50 | p99 | p99.9 | errors |\n|---|---|---|---|---|\n")
	d50, d99 := medianDur(direct, 50), medianDur(direct, 99)
	p50, p99 := medianDur(proxy, 50), medianDur(proxy, 99)
	rep.printf("| direct | %s | %s | %s | %d |\n", d50, d99, medianDur(direct, 999), sumErrors(direct))
	rep.printf("| tokenbroker proxy | %s | %s | %s | %d |\n", p50, p99, medianDur(proxy, 999), sumErrors(proxy))
	rep.printf("\n**Added by the proxy: p50 %s, p99 %s** (a negative figure is the machine's noise: the proxied run was the calmer one).\n", p50-d50, p99-d99)

	rep.section("Token requests per lifetime", "")
	rep.printf("%s.\n", perLifetime(o.callers, o.lifetime, dir))

	rep.section("MSP tenants", "One MSP profile whose tenants share its token and its rate limit (`go run ./bench -msp-tenants N -msp-for D`).")
	mspTenants(rep, dir, o.mspTenants, o.callers, o.lifetime, o.mspProxied, o.mspFor)

	means, cmds, err := startup(dir, up.url+"/token", o.startupRuns)
	if err != nil {
		return err
	}
	reportStartup(rep, means, cmds, o.startupRuns)

	rep.section("What the safety checks cost", "")
	rep.printf("- **One connection pool per profile**: connections are never shared between credentials; in this run there is one profile, so it costs nothing here. With many profiles on one host each opens its own connections.\n")
	rep.printf("- **The stray-byte guard** (a reused connection is written to only once net/http's reader has nothing unread): its cost is in the ReverseProxy line above, on tokenbroker's transport against the tuned one.\n")
	rep.printf("- **No reuse after a request body**: POST, PUT and PATCH calls go on a connection that is closed after the answer (a vendor may read an ignored body as the next request). Each such call pays a new connection (and a TLS handshake to a real vendor); GETs do not. The aim's load is GETs.\n")
	rep.printf("- **Field-value checks** on tokens and headers run once per token, not per call.\n")
	return rep.write(o.out)
}

func hasContender(cs []contender, name string) bool {
	for _, c := range cs {
		if c.name == name {
			return true
		}
	}
	return false
}

// report collects the markdown written to docs/performance.md; it is also
// printed as it grows.
type report struct{ b strings.Builder }

func (r *report) printf(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	fmt.Print(s)
	r.b.WriteString(s)
}

func (r *report) section(title, text string) {
	r.printf("\n## %s\n\n", title)
	if text != "" {
		r.printf("%s\n\n", text)
	}
}

func (r *report) table(res results, base string) {
	r.printf("| contender | requests/s (median of rounds) | range | / %s | p50 | p99 | errors |\n|---|---|---|---|---|---|---|\n", base)
	for _, name := range res.order {
		rs := res.by[name]
		med := median(rs, func(x result) float64 { return x.rps })
		lo, hi := extent(rs)
		var errs int64
		for _, x := range rs {
			errs += x.errors
		}
		r.printf("| %s | %.0f | %.0f-%.0f | %s | %s | %s | %d |\n", name, med, lo, hi, res.ratio(name, base), rs[0].p50, rs[0].p99, errs)
	}
}

func (r *report) write(path string) error {
	if path == "-" {
		return nil
	}
	text := "# Performance\n\nWritten by `go run ./bench`; do not edit by hand.\n\n" + r.b.String()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		return err
	}
	fmt.Printf("\nwrote %s\n", path)
	return nil
}

// contender is one target of a load.
type contender struct {
	name    string
	url     string
	headers map[string]string
}

// results are each contender's rounds.
type results struct {
	order []string
	by    map[string][]result
}

// ratio is the median over the rounds of a's requests/s over b's in the
// same round, with the range of the rounds.
func (r results) ratio(a, b string) string {
	ra, rb := r.by[a], r.by[b]
	var q []float64
	for i := range min(len(ra), len(rb)) {
		if rb[i].rps > 0 {
			q = append(q, ra[i].rps/rb[i].rps)
		}
	}
	if len(q) == 0 {
		return "-"
	}
	sort.Float64s(q)
	if len(q) == 1 {
		return fmt.Sprintf("%.2f", q[0])
	}
	return fmt.Sprintf("%.2f (%.2f-%.2f)", q[len(q)/2], q[0], q[len(q)-1])
}

// contest loads each contender in turn, for rounds rounds, each round in
// another order.
func contest(rounds int, d time.Duration, conns int, cs []contender) results {
	res := results{by: map[string][]result{}}
	for _, c := range cs {
		res.order = append(res.order, c.name)
	}
	for i := range rounds {
		for j := range cs {
			c := cs[(i+j)%len(cs)]
			r, ok := loadWrk(fmt.Sprintf("%s (round %d)", c.name, i+1), c.url, c.headers, d, conns)
			if !ok {
				r = load(fmt.Sprintf("%s (round %d)", c.name, i+1), c.url, c.headers, d, conns)
			}
			res.by[c.name] = append(res.by[c.name], r)
		}
	}
	return res
}

// medianDur is the median over rounds of a latency percentile (50, 99 or 999).
func medianDur(rs []result, pct int) time.Duration {
	v := make([]time.Duration, len(rs))
	for i, r := range rs {
		v[i] = map[int]time.Duration{50: r.p50, 99: r.p99, 999: r.p999}[pct]
	}
	sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
	return v[len(v)/2]
}

func sumErrors(rs []result) (n int64) {
	for _, r := range rs {
		n += r.errors
	}
	return n
}

func median(rs []result, f func(result) float64) float64 {
	v := make([]float64, len(rs))
	for i, r := range rs {
		v[i] = f(r)
	}
	sort.Float64s(v)
	return v[len(v)/2]
}

func extent(rs []result) (lo, hi float64) {
	lo, hi = rs[0].rps, rs[0].rps
	for _, r := range rs {
		lo, hi = min(lo, r.rps), max(hi, r.rps)
	}
	return lo, hi
}

// result is one load's outcome.
type result struct {
	rps            float64
	p50, p99, p999 time.Duration
	errors         int64
}

// load runs a closed-loop load of conns keep-alive connections for d: the
// fallback when wrk is not installed.
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
	r := summarize(lat, time.Since(start))
	r.errors = errs.Load()
	fmt.Printf("%-56s %9.0f req/s   p50 %8s   p99 %8s   errors %d\n", name, r.rps, r.p50, r.p99, r.errors)
	return r
}

func summarize(lat []time.Duration, elapsed time.Duration) result {
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	r := result{rps: float64(len(lat)) / elapsed.Seconds()}
	if len(lat) > 0 {
		r.p50 = lat[len(lat)/2].Round(time.Microsecond)
		r.p99 = lat[len(lat)*99/100].Round(time.Microsecond)
		r.p999 = lat[len(lat)*999/1000].Round(time.Microsecond)
	}
	return r
}

// fixedRate sends rate requests/s for d, open loop: each request is due at
// its slot and timed from then, whether or not an earlier one is late.
func fixedRate(url string, headers map[string]string, rate int, d time.Duration) result {
	tr := &http.Transport{MaxIdleConnsPerHost: 512, DisableCompression: true}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	n := int(float64(rate) * d.Seconds())
	interval := time.Second / time.Duration(rate)
	lat := make([]time.Duration, n)
	var errs atomic.Int64
	var next atomic.Int64
	start := time.Now().Add(20 * time.Millisecond)
	var wg sync.WaitGroup
	for range 256 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				due := start.Add(time.Duration(i) * interval)
				time.Sleep(time.Until(due))
				req, _ := http.NewRequest(http.MethodGet, url, nil)
				for k, v := range headers {
					req.Header.Set(k, v)
				}
				resp, err := hc.Do(req)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						err = fmt.Errorf("status %d", resp.StatusCode)
					}
				}
				if err != nil {
					errs.Add(1)
				}
				lat[i] = time.Since(due)
			}
		}()
	}
	wg.Wait()
	r := summarize(lat, d)
	r.errors = errs.Load()
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
