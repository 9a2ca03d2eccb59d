package webhook

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"strconv"
	"testing"
	"time"
)

type vector struct {
	Name       string `json:"name"`
	Token      string `json:"token"`
	BodyBase64 string `json:"body_base64"`
	Service    string `json:"service"`
	DeliveryID string `json:"delivery_id"`
	Timestamp  string `json:"timestamp"`
	Signature  string `json:"signature"`
	Valid      bool   `json:"valid"`
}

func vectors(t testing.TB) []vector {
	b, err := os.ReadFile("testdata/aruba-webhook-signatures.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Cases []vector `json:"cases"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	return f.Cases
}

// TestSignatureVectors checks the verifier against deliveries computed from
// the documented scheme, not from this code.
func TestSignatureVectors(t *testing.T) {
	for _, v := range vectors(t) {
		body, _ := base64.StdEncoding.DecodeString(v.BodyBase64)
		h := Headers{Signature: v.Signature, Service: v.Service, DeliveryID: v.DeliveryID, Timestamp: v.Timestamp}
		at, err := ParseTimestamp(v.Timestamp)
		if err != nil {
			t.Fatalf("%s: %v", v.Name, err)
		}
		_, err = Verify(h, body, []string{v.Token}, at, DefaultWindow) // the vectors' timestamps are old: verify at their time
		if v.Valid && err != nil {
			t.Errorf("%s: refused a valid delivery: %v", v.Name, err)
		}
		if !v.Valid {
			var ref *Refusal
			if !errors.As(err, &ref) || ref.Reason != ReasonBadSignature || ref.Status != http.StatusUnauthorized {
				t.Errorf("%s: got %v, want a bad-signature refusal", v.Name, err)
			}
		}
	}
}

func TestVerifyWindowAndTokens(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	body := []byte(`{"alert_type":"AP disconnected"}`)
	sign := func(tok, ts string) Headers {
		return Headers{Signature: Sign(tok, body, "Alerts", "d-1", ts), Service: "Alerts", DeliveryID: "d-1", Timestamp: ts}
	}
	secs := func(t time.Time) string { return itoa(t.Unix()) }
	cases := []struct {
		name   string
		h      Headers
		tokens []string
		reason Reason
		match  int
	}{
		{"current token", sign("cur", secs(now)), []string{"cur", "prev"}, "", 0},
		{"previous token", sign("prev", secs(now)), []string{"cur", "prev"}, "", 1},
		{"milliseconds", sign("cur", itoa(now.UnixMilli())), []string{"cur"}, "", 0},
		{"wrong token", sign("other", secs(now)), []string{"cur", "prev"}, ReasonBadSignature, -1},
		{"stale", sign("cur", secs(now.Add(-6*time.Minute))), []string{"cur"}, ReasonStale, -1},
		{"future", sign("cur", secs(now.Add(6*time.Minute))), []string{"cur"}, ReasonFuture, -1},
		{"edge of the window", sign("cur", secs(now.Add(-5*time.Minute))), []string{"cur"}, "", 0},
		{"not a number", sign("cur", "soon"), []string{"cur"}, ReasonBadTimestamp, -1},
		{"not base64", Headers{Signature: "%%%", Service: "Alerts", DeliveryID: "d-1", Timestamp: secs(now)}, []string{"cur"}, ReasonBadSignature, -1},
	}
	for _, c := range cases {
		got, err := Verify(c.h, body, c.tokens, now, DefaultWindow)
		var ref *Refusal
		errors.As(err, &ref)
		switch {
		case c.reason == "" && (err != nil || got != c.match):
			t.Errorf("%s: %d, %v; want token %d", c.name, got, err, c.match)
		case c.reason != "" && (ref == nil || ref.Reason != c.reason):
			t.Errorf("%s: %v, want %s", c.name, err, c.reason)
		}
	}
}

func TestReadHeaders(t *testing.T) {
	h := http.Header{}
	h.Set(HeaderSignature, "s")
	h.Set(HeaderService, "Alerts")
	h.Set(HeaderDelivery, "d")
	if _, err := ReadHeaders(h); err == nil {
		t.Error("a missing timestamp was accepted")
	}
	h.Set(HeaderTimestamp, "1")
	if _, err := ReadHeaders(h); err != nil {
		t.Error(err)
	}
	h.Set(HeaderDelivery, string(make([]byte, 300)))
	if _, err := ReadHeaders(h); err == nil {
		t.Error("an oversized header was accepted")
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// FuzzVerify: no input makes the verifier panic, and a delivery it accepts
// is exactly one signed with the token.
func FuzzVerify(f *testing.F) {
	for _, v := range vectors(f) {
		body, _ := base64.StdEncoding.DecodeString(v.BodyBase64)
		f.Add(v.Token, body, v.Signature, v.Service, v.DeliveryID, v.Timestamp)
	}
	f.Fuzz(func(t *testing.T, token string, body []byte, sig, service, id, ts string) {
		at, err := ParseTimestamp(ts)
		if err != nil {
			at = time.Unix(0, 0)
		}
		h := Headers{Signature: sig, Service: service, DeliveryID: id, Timestamp: ts}
		_, err = Verify(h, body, []string{token}, at, DefaultWindow)
		if err == nil && token != "" && sig != Sign(token, body, service, id, ts) {
			// base64 decoding may accept a differently padded form of the same bytes
			a, _ := base64.StdEncoding.DecodeString(sig)
			b, _ := base64.StdEncoding.DecodeString(Sign(token, body, service, id, ts))
			if string(a) != string(b) {
				t.Fatalf("accepted a signature that is not the token's")
			}
		}
	})
}

// FuzzParseTimestamp: parsing never panics, and what parses is positive and
// reads back the same number.
func FuzzParseTimestamp(f *testing.F) {
	for _, s := range []string{"1573115183", "1573115183000", "0", "-1", "", "9999999999999999999", " 12 ", "1e9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		at, err := ParseTimestamp(s)
		if err != nil {
			return
		}
		if at.UnixMilli() <= 0 && at.Unix() <= 0 {
			t.Fatalf("%q parsed to a non-positive time %v", s, at)
		}
	})
}
