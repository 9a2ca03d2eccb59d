package token

import (
	"encoding/base64"
	"testing"
	"time"
)

func TestValidityAndLifetime(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	tok := &Token{AccessToken: "a", ObtainedAt: now.Add(-time.Hour), Expiry: now.Add(time.Hour)}
	if !tok.Valid(now, 59*time.Minute) || tok.Valid(now, time.Hour) {
		t.Errorf("Valid around the minimum TTL is wrong")
	}
	if got := tok.Lifetime(); got != 2*time.Hour {
		t.Errorf("Lifetime %s, want 2h", got)
	}
	noExpiry := &Token{AccessToken: "a"}
	if !noExpiry.Valid(now, 24*time.Hour) || noExpiry.Lifetime() != 0 {
		t.Errorf("a token without expiry is used until rejected and has no known lifetime")
	}
	var none *Token
	if none.Valid(now, 0) || (&Token{Expiry: now.Add(time.Hour)}).Valid(now, 0) {
		t.Errorf("nil and empty tokens are not valid")
	}
}

func TestRefreshUsable(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	for _, c := range []struct {
		tok  *Token
		want bool
	}{
		{nil, false},
		{&Token{}, false},
		{&Token{RefreshToken: "r"}, true},
		{&Token{RefreshToken: "r", RefreshExpiry: now.Add(time.Second)}, true},
		{&Token{RefreshToken: "r", RefreshExpiry: now}, false},
	} {
		if got := c.tok.RefreshUsable(now); got != c.want {
			t.Errorf("%+v: %v, want %v", c.tok, got, c.want)
		}
	}
}

// A clone shares nothing that can be changed.
func TestCloneIsDeep(t *testing.T) {
	orig := &Token{AccessToken: "a", Extra: map[string]any{"k": "v"}, Secrets: map[string]string{"s": "1"}}
	c := orig.Clone()
	c.Extra["k"], c.Secrets["s"], c.AccessToken = "changed", "changed", "b"
	if orig.Extra["k"] != "v" || orig.Secrets["s"] != "1" || orig.AccessToken != "a" {
		t.Errorf("the clone shares state with the original: %+v", orig)
	}
	if (*Token)(nil).Clone() != nil {
		t.Error("a nil token's clone is not nil")
	}
}

func TestClaims(t *testing.T) {
	payload := base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"svc","exp":1800003600}`))
	claims, ok := Claims("h." + payload + ".s")
	if !ok || claims["sub"] != "svc" {
		t.Fatalf("claims %v %v", claims, ok)
	}
	if exp, ok := ClaimTime(claims, "exp"); !ok || exp.Unix() != 1800003600 {
		t.Errorf("exp %v %v", exp, ok)
	}
	if _, ok := ClaimTime(claims, "nbf"); ok {
		t.Error("a missing claim was read")
	}
	for _, bad := range []string{"opaque-token", "a.b", "h.!!!.s", "h." + base64.RawURLEncoding.EncodeToString([]byte("not json")) + ".s"} {
		if _, ok := Claims(bad); ok {
			t.Errorf("Claims(%q) read claims from what is no JWT", bad)
		}
	}
}
