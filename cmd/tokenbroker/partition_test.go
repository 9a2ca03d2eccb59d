package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/emulator"
	"github.com/tokenbroker/tokenbroker/internal/pgtest"
)

// outcomes counts what callers of one replica got, per second of the run.
type outcomes struct {
	mu       sync.Mutex
	served   map[int64]int // unix second -> calls answered 200
	refused  atomic.Int64  // tokenbroker's own 429
	failed   atomic.Int64
	firstBad atomic.Value
}

// TestReplicaCutOffFromPostgres: three replicas proxy to Aruba (7 calls/s)
// under demand well above the limit while one of them is cut off from
// PostgreSQL (connections closed and refused), then blackholed (bytes
// stop), each time restored. The vendor never answers 429; the healthy
// replicas' callers are served every second throughout; the cut replica
// keeps its share until its lease ends, then refuses with tokenbroker's
// 429 (never a 502 or the vendor's 401), fails /readyz within seconds and
// comes back after; each change is logged once. Then a cut in the middle
// of a renewal under the strictest rotation rule loses no token.
func TestReplicaCutOffFromPostgres(t *testing.T) {
	p, _, arubaW, _ := postgresProc(t, time.Hour, func(s *emulator.Set) { s.Aruba.StrictRotation = true })
	cfg, _ := os.ReadFile(p.config)
	dsn := regexp.MustCompile(`(?m)^state: (.*)$`).FindSubmatch(cfg)[1]
	relay, relayed := pgtest.NewRelay(t, string(dsn))
	cutCfg := p.dir + "/relayed.yaml"
	os.WriteFile(cutCfg, regexp.MustCompile(`(?m)^state: .*$`).ReplaceAll(cfg, []byte("state: "+relayed)), 0o644)
	healthy := startReplicas(t, p, 2)
	pc := *p
	pc.config = cutCfg
	cmd, base, log := startServe(t, &pc, "TOKENBROKER_API_KEY="+replicaKey)
	cut := &replica{cmd, base, log}
	reps := append(healthy, cut)
	for _, r := range reps {
		if code, body, _ := r.get("/v1/profiles/aruba/token"); code != 200 {
			t.Fatalf("token at start: %d %s", code, body)
		}
	}

	// A replica that joins gets its share once the others have given it
	// up and it has cooled a window: wait for the split.
	shareRe := regexp.MustCompile(`tokenbroker_ratelimit_share\{profile="aruba"\} (0\.\d+|1)`)
	for _, r := range reps {
		deadline := time.Now().Add(10 * time.Second)
		for {
			_, body, _ := r.get("/metrics")
			if m := shareRe.FindStringSubmatch(body); m != nil && m[1] != "0" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("a replica got no share of Aruba's limit in 10 s:\n%s", r.log)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	acceptedBefore, limitedBefore := p.set.Aruba.APIStats()
	ctx, stop := context.WithCancel(context.Background())
	outs := make([]*outcomes, len(reps))
	var wg sync.WaitGroup
	for i, r := range reps {
		o := &outcomes{served: map[int64]int{}}
		outs[i] = o
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ctx.Err() == nil {
					req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.base+"/proxy/aruba/monitoring/v1/aps", nil)
					req.Header.Set("Authorization", "Bearer "+replicaKey)
					req.Header.Set("X-Test-Replica", string(rune('A'+i)))
					resp, err := http.DefaultClient.Do(req)
					if ctx.Err() != nil {
						return
					}
					if err != nil {
						o.failed.Add(1)
						o.firstBad.CompareAndSwap(nil, err.Error())
						continue
					}
					b, _ := io.ReadAll(resp.Body)
					resp.Body.Close()
					switch {
					case resp.StatusCode == 200:
						o.mu.Lock()
						o.served[time.Now().Unix()]++
						o.mu.Unlock()
					case resp.StatusCode == 429 && resp.Header.Get("X-Tokenbroker-Refused") != "":
						o.refused.Add(1)
						select { // a well-behaved caller waits as told
						case <-ctx.Done():
						case <-time.After(time.Second):
						}
					default:
						o.failed.Add(1)
						o.firstBad.CompareAndSwap(nil, resp.Status+" "+string(b))
					}
				}
			}()
		}
	}
	ready := func(r *replica) bool { code, _, _ := r.get("/readyz"); return code == 200 }
	// waitReady waits (at most within) for the cut replica's /readyz to say want.
	waitReady := func(what string, want bool, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for ready(cut) != want {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the cut replica's /readyz did not turn ready=%v within %s", what, want, within)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	start := time.Now()
	time.Sleep(4 * time.Second)
	for _, outage := range []struct {
		name  string
		begin func()
	}{{"cut", relay.Cut}, {"blackhole", relay.Blackhole}} {
		outage.begin()
		waitReady(outage.name, false, 5*time.Second)
		time.Sleep(8 * time.Second)
		if _, body, _ := cut.get("/metrics"); !strings.Contains(body, `tokenbroker_ratelimit_fallback{profile="aruba"} 1`) {
			t.Errorf("%s: metrics of the cut replica do not say its share is lost", outage.name)
		}
		relay.Restore()
		waitReady(outage.name+" restored", true, 10*time.Second)
		time.Sleep(3 * time.Second)
	}
	stop()
	wg.Wait()
	end := time.Now()

	accepted, limited := p.set.Aruba.APIStats()
	t.Logf("%d calls accepted by Aruba in %s (%.2f/s)", accepted-acceptedBefore, end.Sub(start).Round(time.Millisecond), float64(accepted-acceptedBefore)/end.Sub(start).Seconds())
	if limited != limitedBefore {
		arubaW.mu.Lock()
		api, from := arubaW.api, arubaW.apiFrom
		arubaW.mu.Unlock()
		for i := 7; i < len(api); i++ {
			if api[i].Sub(api[i-7]) < time.Second {
				var seq []string
				for k := i - 7; k <= i; k++ {
					seq = append(seq, fmt.Sprintf("%s@%s", from[k], api[k].Sub(start).Round(time.Millisecond)))
				}
				t.Logf("8 calls within a second: %v", seq)
			}
		}
		t.Errorf("the vendor answered 429 %d times: the replicas together exceeded its limit", limited-limitedBefore)
	}
	for i, o := range outs {
		if n := o.failed.Load(); n > 0 {
			t.Errorf("replica %d: %d calls failed, first: %v", i, n, o.firstBad.Load())
		}
		if i == len(outs)-1 {
			if o.refused.Load() == 0 {
				t.Error("the cut replica never refused a call while it held no share")
			}
			continue
		}
		o.mu.Lock()
		for s := start.Unix() + 1; s < end.Unix(); s += 2 {
			if o.served[s]+o.served[s+1] == 0 {
				t.Errorf("healthy replica %d served nothing in the 2 s from %ds", i, s-start.Unix())
			}
		}
		o.mu.Unlock()
	}
	logged := cut.log.String()
	if n, m := strings.Count(logged, "share of the rate limit ran out"), strings.Count(logged, "share of the rate limit is renewed again"); n != 2 || m != 2 {
		t.Errorf("the cut replica said %d times that its share ran out and %d times that it is back, want 2 and 2:\n%s", n, m, logged)
	}

	// A cut in the middle of a renewal: the vendor rotates (and, strictly,
	// kills the old refresh token), the state is cut before the answer
	// arrives. The new token is served from memory and written when the
	// state is back; another replica then renews with it.
	hold := make(chan struct{})
	arubaW.hold.Store(&hold)
	type answer struct {
		code int
		body string
	}
	got := make(chan answer, 1)
	go func() { code, body, _ := cut.post("/v1/profiles/aruba/refresh"); got <- answer{code, body} }()
	<-arubaW.arrived
	relay.Cut()
	arubaW.hold.Store(nil)
	close(hold)
	a := <-got
	if a.code != 200 {
		t.Fatalf("the renewal cut off from the state: %d %s", a.code, a.body)
	}
	access := func(r *replica) string {
		_, body, _ := r.get("/v1/profiles/aruba/token")
		var tok struct {
			AccessToken string `json:"access_token"`
		}
		json.Unmarshal([]byte(body), &tok)
		return tok.AccessToken
	}
	fromCut := access(cut)
	if fromCut == "" || fromCut == access(healthy[0]) {
		t.Fatalf("the cut replica does not serve the token it renewed (%q)", fromCut)
	}
	time.Sleep(2 * time.Second)
	relay.Restore()
	deadline := time.Now().Add(20 * time.Second)
	for {
		if access(healthy[0]) == fromCut {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the token renewed while cut off never reached the state:\n%s", cut.log)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if code, body, _ := healthy[0].post("/v1/profiles/aruba/refresh"); code != 200 {
		t.Fatalf("renewal on a healthy replica after the cut: %d %s (the rotated refresh token was lost)", code, body)
	}
}
