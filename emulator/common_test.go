package emulator

import (
	"math/rand/v2"
	"net/http"
	"testing"
	"time"
)

func TestSlidingLogExactWindow(t *testing.T) {
	l := newSlidingLog(time.Second)
	t0 := newClock().Now()
	for i := range 7 {
		ok, rem := l.allow("k", 7, t0)
		if !ok || rem != 6-i {
			t.Fatalf("call %d: ok=%v remaining=%d, want true %d", i, ok, rem, 6-i)
		}
	}
	for _, d := range []time.Duration{0, time.Millisecond, 999 * time.Millisecond} {
		if ok, _ := l.allow("k", 7, t0.Add(d)); ok {
			t.Fatalf("8th call at +%v accepted", d)
		}
	}
	if ok, _ := l.allow("other", 7, t0); !ok {
		t.Fatal("keys must not share a window")
	}
	// An event exactly one window old no longer counts.
	if ok, _ := l.allow("k", 7, t0.Add(time.Second)); !ok {
		t.Fatal("call one full window later refused")
	}
}

// A token bucket would let an 8th call in 1/7 s after a burst; the log never lets more than
// limit calls into any window, whatever the arrival pattern.
func TestSlidingLogNeverExceedsLimit(t *testing.T) {
	l := newSlidingLog(time.Second)
	rng := rand.New(rand.NewPCG(1, 2))
	now := newClock().Now()
	var accepted []time.Time
	for range 5000 {
		now = now.Add(time.Duration(rng.IntN(int(300 * time.Millisecond))))
		if ok, _ := l.allow("k", 7, now); ok {
			accepted = append(accepted, now)
		}
	}
	for i := range accepted {
		n := 0
		for j := i; j < len(accepted) && accepted[j].Sub(accepted[i]) < time.Second; j++ {
			n++
		}
		if n > 7 {
			t.Fatalf("%d calls accepted within one second starting %v", n, accepted[i])
		}
	}
	if len(accepted) < 1000 {
		t.Fatalf("only %d accepted: limiter too strict", len(accepted))
	}
}

func TestJWTShape(t *testing.T) {
	now := newClock().Now()
	tok := mintJWT(jwtClaims("iss", "sub", now, time.Hour))
	c := claims(t, tok)
	if c["exp"] != float64(now.Add(time.Hour).Unix()) || c["iat"] != float64(now.Unix()) || c["sub"] != "sub" {
		t.Fatalf("claims = %v", c)
	}
	if tok == mintJWT(jwtClaims("iss", "sub", now, time.Hour)) {
		t.Fatal("two mints gave the same token")
	}
	for _, bad := range []string{"", "a.b", "a.!!!.c", "a.bm90IGpzb24.c"} {
		if _, err := parseJWT(bad); err == nil {
			t.Errorf("parseJWT(%q) succeeded", bad)
		}
	}
}

func TestRandomTokensDistinct(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		tok := randomToken(24)
		if seen[tok] || len(tok) != 32 {
			t.Fatalf("token %q repeated or of wrong length", tok)
		}
		seen[tok] = true
	}
}

func TestUnknownRouteAndMethodAreJSON(t *testing.T) {
	srv := serve(t, NewRuckus(newClock().Now))
	r := send(t, srv, http.MethodGet, "/no/such/path", "")
	wantStatus(t, r, http.StatusNotFound)
	if r.header.Get("Content-Type") != "application/json" || r.str("error") != "not_found" {
		t.Fatalf("404 = %s %q", r.header.Get("Content-Type"), r.body)
	}
	r = send(t, srv, http.MethodGet, "/oauth2/token/0a1b2c3d4e5f", "")
	wantStatus(t, r, http.StatusMethodNotAllowed)
	if r.header.Get("Allow") != "POST" || r.str("error") != "method_not_allowed" {
		t.Fatalf("405 Allow=%q body %s", r.header.Get("Allow"), r.body)
	}
}

func TestDownSwitch(t *testing.T) {
	ws := NewWorkspaceOne(newClock().Now)
	srv := serve(t, ws)
	ws.SetDown(true)
	r := form(t, srv, "/SAAS/auth/oauthtoken", "grant_type=client_credentials", "Authorization", basic("ws1-client-id", "ws1-client-secret"))
	wantStatus(t, r, http.StatusServiceUnavailable)
	if r.str("message") != "service unavailable" {
		t.Fatalf("body %s", r.body)
	}
	if ws.TokenRequests() != 0 {
		t.Fatal("a request refused while down was counted")
	}
	ws.SetDown(false)
	r = form(t, srv, "/SAAS/auth/oauthtoken", "grant_type=client_credentials", "Authorization", basic("ws1-client-id", "ws1-client-secret"))
	wantStatus(t, r, http.StatusOK)
}

func TestExpiringTokensPrune(t *testing.T) {
	now := newClock().Now()
	tokens := make(expiringTokens)
	for i := range pruneAt {
		tokens.put(randomToken(8), now.Add(time.Duration(i)*time.Second), now)
	}
	if tokens.check("nope", now) != tokenUnknown {
		t.Fatal("unknown token not unknown")
	}
	later := now.Add(time.Duration(pruneAt-10) * time.Second) // 9 tokens still unexpired
	tokens.put("fresh", later.Add(time.Hour), later)
	if len(tokens) != 10 || tokens.check("fresh", later) != tokenValid {
		t.Fatalf("after prune: %d tokens", len(tokens))
	}
}
