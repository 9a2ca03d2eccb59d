package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/webhook"
)

// TestWebhookDeliveriesSurviveReceiverCrashes sends 10,000 signed
// deliveries at full speed while the receiver (`tokenbroker serve`) is
// SIGKILLed and restarted twice: every delivery that got a 2xx is in the
// file sink exactly once.
func TestWebhookDeliveriesSurviveReceiverCrashes(t *testing.T) {
	total := 10000
	if testing.Short() {
		total = 1000
	}
	p := newProc(t, nil)
	sinkPath := filepath.Join(p.dir, "alerts.jsonl")
	cfg, _ := os.ReadFile(p.config)
	cfg = []byte(strings.Replace(string(cfg), "    client_secret: env:TB_ARUBA_SECRET\n",
		"    client_secret: env:TB_ARUBA_SECRET\n    webhooks:\n      - id: wh-1\n        token: env:TB_WH_TOKEN\n        sink: file:"+sinkPath+"\n", 1))
	os.WriteFile(p.config, cfg, 0o644)
	const whToken = "Ptqbgpyo1sXXg3OcjJ2PYV6qsVY5YmTwHgxUbpeLp4"
	p.env = append(p.env, "TB_WH_TOKEN="+whToken)

	var mu sync.Mutex
	var base string
	var cmd = func() *replicaProc { r := startReceiver(t, p); mu.Lock(); base = r.base; mu.Unlock(); return r }()
	addr := func() string { mu.Lock(); defer mu.Unlock(); return base }

	var accepted sync.Map
	var acceptedN, next atomic.Int64
	hc := &http.Client{Timeout: 10 * time.Second}
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(total) {
					return
				}
				id := fmt.Sprintf("delivery-%05d", i)
				body := []byte(fmt.Sprintf(`{"alert_type":"AP disconnected","id":"%s","severity":"Major","details":{"serial":"AX0140586"}}`, id))
				for attempt := 0; attempt < 200; attempt++ { // like Central, retry until answered
					ts := strconv.FormatInt(time.Now().Unix(), 10)
					req, _ := http.NewRequest(http.MethodPost, addr()+"/webhooks/aruba", strings.NewReader(string(body)))
					req.Header.Set(webhook.HeaderSignature, webhook.Sign(whToken, body, "Alerts", id, ts))
					req.Header.Set(webhook.HeaderService, "Alerts")
					req.Header.Set(webhook.HeaderDelivery, id)
					req.Header.Set(webhook.HeaderTimestamp, ts)
					resp, err := hc.Do(req)
					if err != nil {
						time.Sleep(20 * time.Millisecond) // the receiver is down; Central would retry later
						continue
					}
					resp.Body.Close()
					if resp.StatusCode/100 == 2 {
						accepted.Store(id, true)
						acceptedN.Add(1)
					}
					break // 2xx, or a refusal (a replay of one accepted before the crash)
				}
			}
		}()
	}
	// Kill and restart the receiver twice while deliveries flow.
	for _, at := range []int64{int64(total) / 3, int64(total) * 2 / 3} {
		for acceptedN.Load() < at {
			time.Sleep(5 * time.Millisecond)
		}
		cmd.cmd.Signal(syscall.SIGKILL)
		cmd.cmd.Wait()
		cmd = func() *replicaProc { r := startReceiver(t, p); mu.Lock(); base = r.base; mu.Unlock(); return r }()
	}
	wg.Wait()
	want := map[string]bool{}
	accepted.Range(func(k, _ any) bool { want[k.(string)] = true; return true })
	// The dispatcher drains the queue into the file.
	deadline := time.Now().Add(60 * time.Second)
	var counts map[string]int
	for {
		counts = sinkCounts(t, sinkPath)
		missing := 0
		for id := range want {
			if counts[id] == 0 {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d accepted deliveries never reached the sink", missing)
		}
		time.Sleep(50 * time.Millisecond) // the dispatcher writes in its own time
	}
	for id, n := range counts {
		if n != 1 {
			t.Errorf("%s is in the sink %d times", id, n)
		}
	}
	t.Logf("%d deliveries sent, %d answered 2xx, %d lines in the sink, 2 crashes", total, len(want), len(counts))
	if len(want) < total*9/10 {
		t.Errorf("only %d of %d deliveries were accepted", len(want), total)
	}
}

type replicaProc struct {
	cmd  *os.Process
	base string
}

func startReceiver(t *testing.T, p *proc) *replicaProc {
	cmd, base, _ := startServe(t, p, "TOKENBROKER_API_KEY=k")
	return &replicaProc{cmd: cmd.Process, base: base}
}

func sinkCounts(t *testing.T, path string) map[string]int {
	counts := map[string]int{}
	f, err := os.Open(path)
	if err != nil {
		return counts
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l webhook.Line
		if json.Unmarshal(sc.Bytes(), &l) == nil {
			counts[l.DeliveryID]++
		}
	}
	return counts
}

// TestWebhookTokenLifecycle: with no token configured, the webhook's token
// is fetched from Central and stored; a ping from Central verifies; a
// rotation keeps the old token verifying during the grace period.
func TestWebhookTokenLifecycle(t *testing.T) {
	p := newProc(t, nil)
	offline := filepath.Join(p.dir, "offline.json")
	os.WriteFile(offline, p.set.Aruba.IssueOfflineToken(), 0o600)
	mustOK(t, p.run(t, "import", "aruba", offline))
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	receiver := fmt.Sprintf("http://127.0.0.1:%d/webhooks/aruba", port)
	wid := p.set.Aruba.CreateWebhook("alerts", receiver)
	sinkPath := filepath.Join(p.dir, "alerts.jsonl")
	cfg, _ := os.ReadFile(p.config)
	cfg = []byte(strings.Replace(string(cfg), "    client_secret: env:TB_ARUBA_SECRET\n",
		"    client_secret: env:TB_ARUBA_SECRET\n    webhooks:\n      - id: "+wid+"\n        sink: file:"+sinkPath+"\n", 1))
	os.WriteFile(p.config, cfg, 0o644)

	if r := mustOK(t, p.run(t, "webhook", "list", "aruba")); !strings.Contains(r.stdout, wid) {
		t.Errorf("list: %s", r.stdout)
	}
	first := strings.TrimSpace(mustOK(t, p.run(t, "webhook", "token", "aruba", wid)).stdout)
	if first != p.set.Aruba.WebhookToken(wid) {
		t.Fatalf("token %q, want the emulator's", first)
	}
	cmd := p.command(t, "serve", "--listen", fmt.Sprintf("127.0.0.1:%d", port))
	cmd.Env = append(append([]string{}, p.env...), "TOKENBROKER_API_KEY=k")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	waitListening(t, port)

	if r := mustOK(t, p.run(t, "webhook", "ping", "aruba", wid)); !strings.Contains(r.stdout, `"status":200`) {
		t.Errorf("ping: %s", r.stdout)
	}
	mustOK(t, p.run(t, "webhook", "rotate", "aruba", wid))
	second := p.set.Aruba.WebhookToken(wid)
	if second == first {
		t.Fatal("rotate did not change the token")
	}
	for _, c := range []struct {
		token, fault string
		want         string
	}{
		{first, "none", " 200"},  // the previous token, within the grace period
		{second, "none", " 200"}, // the new one
		{second, "stale-timestamp", " 400"},
		{second, "bad-signature", " 401"},
		{"not-the-token", "none", " 401"},
	} {
		r := p.run(t, "webhook", "send", receiver, "--token", c.token, "--fault", c.fault)
		if !strings.HasSuffix(strings.TrimSpace(r.stdout), strings.TrimSpace(c.want)) {
			t.Errorf("send %s with %.6s...: %q %q, want status%s", c.fault, c.token, r.stdout, r.stderr, c.want)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(sinkCounts(t, sinkPath)) < 3 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond) // the dispatcher forwards in its own time
	}
	if n := len(sinkCounts(t, sinkPath)); n != 3 {
		t.Errorf("%d deliveries in the sink, want 3 (the ping and two sends)", n)
	}
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

func waitListening(t *testing.T, port int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("serve did not start listening")
}
