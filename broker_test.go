package tokenbroker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/failure"
	"github.com/tokenbroker/tokenbroker/store"
)

// tokenServer is a client_credentials endpoint that counts requests and
// can be told to fail.
type tokenServer struct {
	requests atomic.Int64
	status   atomic.Int64  // 0: answer 200
	gate     chan struct{} // when set, answers wait for it to close
	arrived  chan struct{} // closed when the first request arrives
	once     sync.Once
	ttl      int
}

func (s *tokenServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := s.requests.Add(1)
	if s.arrived != nil {
		s.once.Do(func() { close(s.arrived) })
	}
	if s.gate != nil {
		<-s.gate
	}
	w.Header().Set("Content-Type", "application/json")
	if st := s.status.Load(); st != 0 {
		w.WriteHeader(int(st))
		fmt.Fprint(w, `{"error":"invalid_client"}`)
		return
	}
	fmt.Fprintf(w, `{"access_token":"tok-%d","token_type":"Bearer","expires_in":%d}`, n, s.ttl)
}

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newTestBroker(t testing.TB, srv *tokenServer) (*Broker, *clock, string) {
	t.Helper()
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	cfg := &config.Config{Profiles: map[string]*config.Profile{
		"p": {Name: "p", Provider: "oauth2", TokenURL: hs.URL + "/token", ClientID: "id", ClientSecret: "secret"},
	}}
	statePath := filepath.Join(t.TempDir(), "state.db")
	cfg.State = "sqlite:" + statePath
	st, err := OpenStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{now: time.Now()}
	b := New(cfg, Options{Store: st, Now: clk.Now})
	t.Cleanup(func() { b.Close() })
	return b, clk, statePath
}

func TestTokenIsCachedAndPersisted(t *testing.T) {
	srv := &tokenServer{ttl: 3600}
	b, clk, _ := newTestBroker(t, srv)
	ctx := context.Background()
	t1, err := b.Token(ctx, "p", TokenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t2, _ := b.Token(ctx, "p", TokenOptions{})
	if t1.AccessToken != t2.AccessToken || srv.requests.Load() != 1 {
		t.Fatalf("tokens %q %q after %d requests; want one request", t1.AccessToken, t2.AccessToken, srv.requests.Load())
	}
	// A second broker on the same state (another process) finds it stored.
	st, err := OpenStore(b.cfg)
	if err != nil {
		t.Fatal(err)
	}
	b2 := New(b.cfg, Options{Store: st, Now: clk.Now})
	defer b2.Close()
	t3, err := b2.Token(ctx, "p", TokenOptions{})
	if err != nil || t3.AccessToken != t1.AccessToken || srv.requests.Load() != 1 {
		t.Fatalf("second broker got %v %v after %d requests", t3, err, srv.requests.Load())
	}
}

func TestConcurrentCallersShareOneRequest(t *testing.T) {
	srv := &tokenServer{ttl: 3600, gate: make(chan struct{}), arrived: make(chan struct{})}
	b, _, _ := newTestBroker(t, srv)
	var wg sync.WaitGroup
	got := make([]string, 50)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := b.Token(context.Background(), "p", TokenOptions{})
			if err != nil {
				t.Error(err)
				return
			}
			got[i] = tok.AccessToken
		}()
	}
	<-srv.arrived
	close(srv.gate)
	wg.Wait()
	if n := srv.requests.Load(); n != 1 {
		t.Fatalf("%d token requests, want 1", n)
	}
	for _, g := range got {
		if g != got[0] {
			t.Fatalf("callers got different tokens: %q", got)
		}
	}
}

func TestRenewsAheadOfExpiryAndHonoursMinTTL(t *testing.T) {
	srv := &tokenServer{ttl: 1000}
	b, clk, _ := newTestBroker(t, srv)
	ctx := context.Background()
	first, _ := b.Token(ctx, "p", TokenOptions{})
	clk.Add(600 * time.Second) // 60%: before the refresh point (80% less up to 15% jitter)
	if tok, _ := b.Token(ctx, "p", TokenOptions{}); tok.AccessToken != first.AccessToken {
		t.Fatal("renewed before the refresh point")
	}
	if tok, _ := b.Token(ctx, "p", TokenOptions{MinTTL: 10 * time.Minute}); tok.AccessToken == first.AccessToken {
		t.Fatal("--min-ttl 10m with 300 s left did not renew")
	}
	second, _ := b.Token(ctx, "p", TokenOptions{})
	clk.Add(801 * time.Second) // past 80% of the second token's life
	if tok, _ := b.Token(ctx, "p", TokenOptions{}); tok.AccessToken == second.AccessToken {
		t.Fatal("did not renew past the refresh point")
	}
	if n := srv.requests.Load(); n != 3 {
		t.Fatalf("%d requests, want 3", n)
	}
}

func TestFailedRenewalKeepsTheLastGoodToken(t *testing.T) {
	srv := &tokenServer{ttl: 1000}
	b, clk, _ := newTestBroker(t, srv)
	ctx := context.Background()
	good, _ := b.Token(ctx, "p", TokenOptions{})
	srv.status.Store(401)
	clk.Add(900 * time.Second)
	// Still valid: handed out despite the failed early renewal.
	tok, err := b.Token(ctx, "p", TokenOptions{})
	if err != nil || tok.AccessToken != good.AccessToken {
		t.Fatalf("got %v, %v; want the still-valid token", tok, err)
	}
	// A forced renewal fails, classed, and the store is untouched.
	if _, err := b.Token(ctx, "p", TokenOptions{Force: true}); failure.KindOf(err) != failure.Rejected {
		t.Fatalf("forced renewal: %v, want Rejected", err)
	}
	stored, _ := b.Stored(ctx, "p")
	if stored.AccessToken != good.AccessToken || stored.Generation != good.Generation {
		t.Fatalf("store changed by a failed renewal: %+v", stored)
	}
	clk.Add(200 * time.Second) // expired now
	if _, err := b.Token(ctx, "p", TokenOptions{}); failure.KindOf(err) != failure.Rejected {
		t.Fatalf("expired and renewal refused: %v, want Rejected", err)
	}
	srv.status.Store(0)
	if tok, err := b.Token(ctx, "p", TokenOptions{}); err != nil || tok.AccessToken == good.AccessToken {
		t.Fatalf("after recovery: %v %v", tok, err)
	}
}

func TestUnknownProfileIsAConfigError(t *testing.T) {
	b, _, _ := newTestBroker(t, &tokenServer{ttl: 10})
	_, err := b.Token(context.Background(), "nope", TokenOptions{})
	if failure.KindOf(err) != failure.Config {
		t.Fatalf("err %v", err)
	}
}

// failingPuts is a store whose writes fail, as a full disk would.
type failingPuts struct {
	store.Store
	fail atomic.Bool
}

func (f *failingPuts) Put(ctx context.Context, profile string, tok *Token, expect int64, l *store.Lease) error {
	if f.fail.Load() {
		return errors.New("disk I/O error (injected)")
	}
	return f.Store.Put(ctx, profile, tok, expect, l)
}

// A store that cannot take a new token after the vendor answered does not
// lose it (the vendor may have rotated its refresh token): the token is
// handed out from memory, the stored state is left as it was, and the
// token is written once the store takes writes again, with its audit
// event.
func TestWriteErrorKeepsTheNewTokenAndWritesItLater(t *testing.T) {
	srv := &tokenServer{ttl: 3600}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	cfg := &config.Config{State: "sqlite:" + filepath.Join(t.TempDir(), "state.db"), Profiles: map[string]*config.Profile{
		"p": {Name: "p", Provider: "oauth2", TokenURL: hs.URL + "/token", ClientID: "id", ClientSecret: "secret"},
	}}
	inner, err := OpenStore(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer inner.Close()
	st := &failingPuts{Store: inner}
	var warned atomic.Int64
	stored := make(chan struct{}, 1)
	b := New(cfg, Options{Store: st, Warn: func(msg string) {
		warned.Add(1)
		if strings.Contains(msg, "stored now") {
			stored <- struct{}{}
		}
	}})
	defer b.Close()
	ctx := context.Background()
	good, err := b.Token(ctx, "p", TokenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st.fail.Store(true)
	next, err := b.Token(ctx, "p", TokenOptions{Force: true})
	if err != nil || next.AccessToken == good.AccessToken {
		t.Fatalf("renewal with the store refusing writes: %v, %v; want the new token", next, err)
	}
	if stored, err := inner.Get(ctx, "p"); err != nil || stored.AccessToken != good.AccessToken || stored.Generation != 1 {
		t.Fatalf("stored %+v %v: want the previous token intact while writes fail", stored, err)
	}
	if tok, _ := b.Token(ctx, "p", TokenOptions{}); tok.AccessToken != next.AccessToken || srv.requests.Load() != 2 {
		t.Fatalf("handed out %q after %d token requests; want the new token, no third request", tok.AccessToken, srv.requests.Load())
	}
	st.fail.Store(false)
	select {
	case <-stored:
	case <-time.After(20 * time.Second): // a hang guard: the writer tries again within seconds
		t.Fatal("the new token was never written")
	}
	if got, err := inner.Get(ctx, "p"); err != nil || got.AccessToken != next.AccessToken {
		t.Fatalf("stored %+v %v, want the new token", got, err)
	}
	events, _ := inner.Events(ctx, "p", 10)
	if len(events) < 2 || events[0].Outcome != "ok" {
		t.Errorf("audit %+v, want the renewal recorded once written", events)
	}
	if warned.Load() == 0 {
		t.Error("nothing said about the unstored token")
	}
}

// A renewal is not the caller's that started it: when that caller gives
// up while the token request is at the vendor, the answer is still stored,
// and the next caller gets it without a second token request (a rotated
// refresh token would otherwise be lost, and another replica would ask
// again).
func TestRenewalOutlivesTheCallerThatStartedIt(t *testing.T) {
	srv := &tokenServer{ttl: 3600, gate: make(chan struct{}), arrived: make(chan struct{})}
	b, _, _ := newTestBroker(t, srv)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { _, err := b.Token(ctx, "p", TokenOptions{}); errc <- err }()
	<-srv.arrived
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("the caller that gave up got %v, want its own cancellation", err)
	}
	close(srv.gate)
	tok, err := b.Token(context.Background(), "p", TokenOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken != "tok-1" || srv.requests.Load() != 1 {
		t.Errorf("got %q after %d token requests, want the first request's token and no second request", tok.AccessToken, srv.requests.Load())
	}
}

// A caller that leaves a renewal does not end it, and Close waits for it:
// the vendor may have rotated the refresh token it was sent, so its answer
// is stored rather than lost with the process.
func TestCloseWaitsForARenewalItsCallerLeft(t *testing.T) {
	srv := &tokenServer{ttl: 3600, gate: make(chan struct{}), arrived: make(chan struct{})}
	b, _, _ := newTestBroker(t, srv)
	release := sync.OnceFunc(func() { close(srv.gate) })
	t.Cleanup(release) // before the server closes, should the test fail
	ctx, cancel := context.WithCancel(context.Background())
	left := make(chan error, 1)
	go func() {
		_, err := b.Token(ctx, "p", TokenOptions{})
		left <- err
	}()
	<-srv.arrived
	cancel()
	if err := <-left; !errors.Is(err, context.Canceled) {
		t.Fatalf("the caller that left got %v, want context.Canceled", err)
	}
	closed := make(chan struct{})
	go func() { b.Close(); close(closed) }()
	select {
	case <-closed:
		t.Fatal("Close returned while the vendor had the request")
	case <-time.After(50 * time.Millisecond):
	}
	release()
	<-closed
	st, err := b.Store()
	if err != nil {
		t.Fatal(err)
	}
	if tok, err := st.Get(context.Background(), "p"); err != nil || tok == nil || tok.AccessToken != "tok-1" {
		t.Errorf("stored %+v (%v), want the vendor's answer tok-1", tok, err)
	}
}

// countingStore counts reads of tokens.
type countingStore struct {
	store.Store
	gets atomic.Int64
}

func (c *countingStore) Get(ctx context.Context, profile string) (*Token, error) {
	c.gets.Add(1)
	return c.Store.Get(ctx, profile)
}

// A fresh token Stored read is kept in memory, so the Token call that
// follows (the CLI's `token` does both) reads the store no more.
func TestStoredKeepsAFreshTokenForToken(t *testing.T) {
	srv := &tokenServer{ttl: 3600}
	b, clk, _ := newTestBroker(t, srv)
	ctx := context.Background()
	if _, err := b.Token(ctx, "p", TokenOptions{}); err != nil {
		t.Fatal(err)
	}
	st, _ := b.Store()
	cs := &countingStore{Store: st}
	fresh := New(b.cfg, Options{Store: cs, Now: clk.Now}) // another process: nothing in memory
	defer fresh.Close()
	stored, err := fresh.Stored(ctx, "p")
	if err != nil || stored == nil {
		t.Fatalf("Stored: %v %v", stored, err)
	}
	stored.AccessToken = "changed by the caller" // its own copy
	got, err := fresh.Token(ctx, "p", TokenOptions{})
	if err != nil || got.AccessToken != "tok-1" {
		t.Fatalf("Token after Stored: %v %v, want tok-1", got, err)
	}
	if n := cs.gets.Load(); n != 1 {
		t.Errorf("the store was read %d times, want once", n)
	}
	if srv.requests.Load() != 1 {
		t.Errorf("%d token requests, want 1", srv.requests.Load())
	}
	// A token past its renewal point is not kept: Token renews it.
	clk.Add(59 * time.Minute)
	again := New(b.cfg, Options{Store: cs, Now: clk.Now})
	defer again.Close()
	if _, err := again.Stored(ctx, "p"); err != nil {
		t.Fatal(err)
	}
	if got, err := again.Token(ctx, "p", TokenOptions{}); err != nil || got.AccessToken != "tok-2" {
		t.Errorf("Token of a due token after Stored: %v %v, want the renewed tok-2", got, err)
	}
}

// Close while other goroutines still ask for tokens (a library's
// shutdown, exec --serve's proxy): no panic, and once Close has begun a
// renewal is refused, not started.
func TestTokenRacingCloseIsRefusedNotStarted(t *testing.T) {
	cfg := &config.Config{Profiles: map[string]*config.Profile{"s": {Name: "s", Provider: "static", APIKey: "k"}}}
	for range 200 {
		b := New(cfg, Options{})
		var wg sync.WaitGroup
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					if _, err := b.Token(context.Background(), "s", TokenOptions{Force: true}); err != nil {
						if !strings.Contains(err.Error(), "closed") {
							t.Errorf("Token racing Close: %v", err)
						}
						return
					}
				}
			}()
		}
		b.Close()
		wg.Wait()
	}
}

// acquireSignal tells when a renewal waits for a profile's lease.
type acquireSignal struct {
	store.Store
	waiting chan struct{}
}

func (a *acquireSignal) Acquire(ctx context.Context, profile, owner string, ttl time.Duration) (*store.Lease, error) {
	select {
	case a.waiting <- struct{}{}:
	default:
	}
	return a.Store.Acquire(ctx, profile, owner, ttl)
}

// A renewal whose caller left while it waited for the lease sends nothing
// once Close begins: Close does not wait out the other holder, and no
// request goes to the vendor after the interrupt.
func TestCloseEndsARenewalThatSentNothing(t *testing.T) {
	srv := &tokenServer{ttl: 3600}
	b0, clk, _ := newTestBroker(t, srv)
	st0, _ := b0.Store()
	held, err := st0.Acquire(context.Background(), "p", "another-live-process.1", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer st0.Release(context.Background(), held)
	st := &acquireSignal{Store: st0, waiting: make(chan struct{}, 1)}
	b := New(b0.cfg, Options{Store: st, Now: clk.Now})
	ctx, cancel := context.WithCancel(context.Background())
	left := make(chan error, 1)
	go func() { _, err := b.Token(ctx, "p", TokenOptions{}); left <- err }()
	<-st.waiting
	cancel() // Ctrl-C
	<-left
	b.Close() // returns although the lease is still held elsewhere
	if n := srv.requests.Load(); n != 0 {
		t.Errorf("%d token requests sent after the interrupt", n)
	}
	// A caller already gone starts nothing; and after Close nothing starts,
	// 401-forced renewals included.
	b2 := New(b0.cfg, Options{Store: st0, Now: clk.Now})
	if _, err := b2.Token(ctx, "p", TokenOptions{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Token with an ended context: %v, want context.Canceled", err)
	}
	b2.Close()
	if _, err := b2.Rejected(context.Background(), "p", "x"); err != nil && !strings.Contains(err.Error(), "closed") {
		t.Errorf("Rejected after Close: %v", err)
	}
	if n := srv.requests.Load(); n != 0 {
		t.Errorf("%d token requests sent by a closed broker or an ended caller", n)
	}
}
