package webhook

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker"
	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/store"
)

// rig is a receiver and a dispatcher on a SQLite state, with a clock the
// test moves.
type rig struct {
	srv    *httptest.Server
	st     store.Store
	tokens *Tokens
	disp   *Dispatcher
	sink   string
	mu     sync.Mutex
	now    time.Time
}

func (r *rig) clock() time.Time { r.mu.Lock(); defer r.mu.Unlock(); return r.now }
func (r *rig) advance(d time.Duration) {
	r.mu.Lock()
	r.now = r.now.Add(d)
	r.mu.Unlock()
}

func newRig(t *testing.T) *rig {
	t.Helper()
	dir := t.TempDir()
	r := &rig{now: time.Now(), sink: filepath.Join(dir, "alerts.jsonl")}
	cfg := &config.Config{State: "sqlite:" + filepath.Join(dir, "state.db"), Profiles: map[string]*config.Profile{
		"aruba": {Name: "aruba", Provider: "aruba-central", Region: "us-1", ClientID: "id", ClientSecret: "s",
			Webhooks: []config.Webhook{{ID: "wh-1", Sink: "file:" + r.sink}}},
	}}
	st, err := tokenbroker.OpenStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	r.st = st
	b := tokenbroker.New(cfg, tokenbroker.Options{Store: st})
	q := st.(store.Webhooks)
	// The webhook's token as if fetched from the vendor earlier.
	if err := q.PutWebhookToken(context.Background(), "aruba", "wh-1", &store.WebhookToken{Current: "token-1"}); err != nil {
		t.Fatal(err)
	}
	r.tokens = &Tokens{Broker: func() *tokenbroker.Broker { return b }, Store: q, Now: r.clock}
	r.disp = &Dispatcher{Store: st, Owner: "test"}
	sink, err := OpenSink("file:" + r.sink)
	if err != nil {
		t.Fatal(err)
	}
	r.disp.SetRoutes([]Route{{Profile: "aruba", Webhook: "wh-1", Sink: sink}})
	rc := &Receiver{Broker: func() *tokenbroker.Broker { return b }, Store: q, Tokens: r.tokens, Now: r.clock, Queued: r.disp.Wake}
	mux := http.NewServeMux()
	mux.Handle("POST /webhooks/{name}", rc)
	r.srv = httptest.NewServer(mux)
	t.Cleanup(r.srv.Close)
	return r
}

func (r *rig) send(t *testing.T, token, id string, body []byte, at time.Time, mutate func(*http.Request)) (int, string) {
	t.Helper()
	ts := strconv.FormatInt(at.Unix(), 10)
	req, _ := http.NewRequest(http.MethodPost, r.srv.URL+"/webhooks/aruba", strings.NewReader(string(body)))
	req.Header.Set(HeaderSignature, Sign(token, body, "Alerts", id, ts))
	req.Header.Set(HeaderService, "Alerts")
	req.Header.Set(HeaderDelivery, id)
	req.Header.Set(HeaderTimestamp, ts)
	if mutate != nil {
		mutate(req)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]string
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out["error"]
}

func TestReceiverRefusesAndAccepts(t *testing.T) {
	r := newRig(t)
	alert := []byte(`{"alert_type":"AP disconnected","severity":"Major"}`)
	now := r.clock()
	cases := []struct {
		name   string
		token  string
		id     string
		body   []byte
		at     time.Time
		mutate func(*http.Request)
		code   int
		reason string
	}{
		{"valid", "token-1", "d-1", alert, now, nil, 200, ""},
		{"replay", "token-1", "d-1", alert, now, nil, 409, "replay"},
		{"tampered body", "token-1", "d-2", alert, now, func(r *http.Request) {
			r.Body = http.NoBody
			r.ContentLength = 0
		}, 401, "bad_signature"},
		{"tampered header", "token-1", "d-3", alert, now, func(r *http.Request) { r.Header.Set(HeaderService, "Audit") }, 401, "bad_signature"},
		{"wrong token", "token-x", "d-4", alert, now, nil, 401, "bad_signature"},
		{"stale", "token-1", "d-5", alert, now.Add(-10 * time.Minute), nil, 400, "stale"},
		{"future", "token-1", "d-6", alert, now.Add(10 * time.Minute), nil, 400, "future"},
		{"missing headers", "token-1", "d-7", alert, now, func(r *http.Request) { r.Header.Del(HeaderSignature) }, 400, "missing_headers"},
		{"too large", "token-1", "d-8", make([]byte, MaxBody+1), now, nil, 413, "too_large"},
	}
	for _, c := range cases {
		if code, reason := r.send(t, c.token, c.id, c.body, c.at, c.mutate); code != c.code || reason != c.reason {
			t.Errorf("%s: %d %q, want %d %q", c.name, code, reason, c.code, c.reason)
		}
	}
	// Unknown profile.
	resp, _ := http.Post(r.srv.URL+"/webhooks/nope", "application/json", strings.NewReader("{}"))
	if resp.StatusCode != 404 {
		t.Errorf("unknown profile: %d", resp.StatusCode)
	}
}

func TestRotationGracePeriod(t *testing.T) {
	r := newRig(t)
	q := r.st.(store.Webhooks)
	// A rotation: token-2 is current, token-1 verifies for the grace period.
	q.PutWebhookToken(context.Background(), "aruba", "wh-1", &store.WebhookToken{Current: "token-2", Previous: "token-1", RotatedAt: r.clock()})
	r.tokens.cache.Delete("aruba\x00wh-1")
	if code, _ := r.send(t, "token-1", "g-1", []byte(`{}`), r.clock(), nil); code != 200 {
		t.Errorf("the previous token within the grace period: %d", code)
	}
	if code, _ := r.send(t, "token-2", "g-2", []byte(`{}`), r.clock(), nil); code != 200 {
		t.Errorf("the current token: %d", code)
	}
	r.advance(DefaultGrace + time.Second)
	if code, reason := r.send(t, "token-1", "g-3", []byte(`{}`), r.clock(), nil); code != 401 || reason != "bad_signature" {
		t.Errorf("the previous token after the grace period: %d %q", code, reason)
	}
}

// TestDispatcherForwardsEachDeliveryOnce: accepted deliveries reach the file
// sink in order, once, even when the dispatcher is run again over the same
// queue (a restart after a crash between writing and marking).
func TestDispatcherForwardsEachDeliveryOnce(t *testing.T) {
	r := newRig(t)
	for i := range 20 {
		if code, _ := r.send(t, "token-1", fmt.Sprintf("id-%02d", i), []byte(fmt.Sprintf(`{"n":%d}`, i)), r.clock(), nil); code != 200 {
			t.Fatalf("delivery %d: %d", i, code)
		}
	}
	q := r.st.(store.Webhooks)
	pending, _ := q.Pending(context.Background(), "aruba", "wh-1", 100)
	// A crash after the sink wrote but before the queue was marked: the
	// sink sees the deliveries again and keeps them once.
	sink, _ := OpenSink("file:" + r.sink)
	sink.Deliver(context.Background(), pending[:5])
	sink.Close()
	ctx, cancel := context.WithCancel(context.Background())
	sink2, _ := OpenSink("file:" + r.sink)
	r.disp.SetRoutes([]Route{{Profile: "aruba", Webhook: "wh-1", Sink: sink2}})
	done := make(chan struct{})
	go func() { r.disp.Run(ctx); close(done) }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if left, _ := q.Pending(context.Background(), "aruba", "wh-1", 1); len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the queue was not drained")
		}
		r.disp.Wake()
		time.Sleep(10 * time.Millisecond) // the dispatcher runs in its own goroutine
	}
	cancel()
	<-done
	lines := readLines(t, r.sink)
	if len(lines) != 20 {
		t.Fatalf("%d lines in the sink, want 20", len(lines))
	}
	for i, l := range lines {
		if l.DeliveryID != fmt.Sprintf("id-%02d", i) || l.Service != "Alerts" || l.Profile != "aruba" || l.Timestamp == "" {
			t.Errorf("line %d: %+v", i, l)
		}
		var alert map[string]int
		if json.Unmarshal(l.Alert, &alert) != nil || alert["n"] != i {
			t.Errorf("line %d alert %s", i, l.Alert)
		}
	}
}

func readLines(t *testing.T, path string) []Line {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []Line
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 4<<20)
	for sc.Scan() {
		var l Line
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("a line is not JSON: %v", err)
		}
		out = append(out, l)
	}
	return out
}

// The signed string joins its parts without separators, so moving the
// service's last bytes to the front of the delivery id keeps the signature
// valid under a new id. The delivery is known by its signature too: a
// re-split copy is a replay.
func TestResplitDeliveryIsAReplay(t *testing.T) {
	r := newRig(t)
	body := []byte(`{"alert_type":"AP disconnected"}`)
	ts := strconv.FormatInt(r.clock().Unix(), 10)
	sig := Sign("token-1", body, "Alerts", "d-1", ts)
	post := func(service, id string) int {
		req, _ := http.NewRequest(http.MethodPost, r.srv.URL+"/webhooks/aruba", strings.NewReader(string(body)))
		req.Header.Set(HeaderSignature, sig)
		req.Header.Set(HeaderService, service)
		req.Header.Set(HeaderDelivery, id)
		req.Header.Set(HeaderTimestamp, ts)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := post("Alerts", "d-1"); code != http.StatusOK {
		t.Fatalf("the original delivery: %d", code)
	}
	for _, split := range [][2]string{{"Alert", "sd-1"}, {"Aler", "tsd-1"}} {
		if code := post(split[0], split[1]); code != http.StatusConflict {
			t.Errorf("service %q id %q (same signature): %d, want 409 replay", split[0], split[1], code)
		}
	}
}

// recorder is an Observer that keeps what it was told.
type recorder struct {
	mu      sync.Mutex
	refused []string
}

func (o *recorder) Accepted(string) {}
func (o *recorder) Refused(profile string, reason Reason) {
	o.mu.Lock()
	o.refused = append(o.refused, profile+"|"+string(reason))
	o.mu.Unlock()
}
func (o *recorder) Forwarded(string, int) {}
func (o *recorder) Failed(string)         {}

// Anyone can post to /webhooks/{name}: a name that is no webhook profile
// (of any length) is answered 404 and reported under no name, so that it
// cannot make metric series or dashboard rows.
func TestUnknownWebhookNamesMakeNoSeries(t *testing.T) {
	r := newRig(t)
	o := &recorder{}
	b := tokenbroker.New(&config.Config{Profiles: map[string]*config.Profile{}}, tokenbroker.Options{Store: r.st})
	rc := &Receiver{Broker: func() *tokenbroker.Broker { return b }, Store: r.st.(store.Webhooks), Tokens: r.tokens, Observe: o}
	mux := http.NewServeMux()
	mux.Handle("POST /webhooks/{name}", rc)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	for _, name := range []string{"nope", strings.Repeat("n", 200<<10)} {
		resp, err := http.Post(srv.URL+"/webhooks/"+name, "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%.10s...: %d, want 404", name, resp.StatusCode)
		}
	}
	for _, got := range o.refused {
		if got != "|"+string(ReasonUnknown) {
			t.Errorf("reported %.40q, want the unknown reason under no name", got)
		}
	}
	if len(o.refused) != 2 {
		t.Errorf("%d reports, want 2", len(o.refused))
	}
}
