package provider

import (
	"encoding/base64"
	"strconv"
	"testing"
	"time"
)

func TestJWTExpiry(t *testing.T) {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	jwt := func(payload string) string {
		return "eyJhbGciOiJIUzI1NiJ9." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + ".c2ln"
	}
	serverNow := now.Add(-10 * time.Minute).Unix() // the server's clock is 10 minutes behind
	for _, c := range []struct {
		name, token string
		want        time.Time
	}{
		{"lifetime from iat, on our clock", jwt(`{"iat":` + itoa(serverNow) + `,"exp":` + itoa(serverNow+3600) + `}`), now.Add(time.Hour)},
		{"exp alone, still ahead", jwt(`{"exp":` + itoa(now.Unix()+600) + `}`), now.Add(10 * time.Minute)},
		{"exp alone, already past", jwt(`{"exp":` + itoa(now.Unix()-600) + `}`), time.Time{}},
		{"exp before iat", jwt(`{"iat":2000,"exp":1000}`), time.Time{}},
		{"no exp", jwt(`{"sub":"x"}`), time.Time{}},
		{"not a JWT", "opaque-token-value", time.Time{}},
		{"payload not JSON", "a.bm90IGpzb24.c", time.Time{}},
	} {
		if got := jwtExpiry(c.token, now); !got.Equal(c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
