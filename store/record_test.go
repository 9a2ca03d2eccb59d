package store

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/failure"
	"github.com/tokenbroker/tokenbroker/store/seal"
	"github.com/tokenbroker/tokenbroker/token"
)

const (
	accessSecret  = "ACCESS-d8c1f0b2e7a94c5d-access-token-value"
	refreshSecret = "REFRESH-4b9e2a7c1d3f8065-refresh-token-value"
	prevSecret    = "PREVREFRESH-a1b2c3d4e5f60718-previous-refresh"
	clientSecret  = "CLIENTSECRET-77f0e3d2c1b0a998-client-secret"
)

func testSealer(t *testing.T, b byte) *seal.Sealer {
	t.Helper()
	s, err := seal.New(bytes.Repeat([]byte{b}, seal.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func fullToken() *token.Token {
	now := time.Date(2025, 3, 4, 5, 6, 7, 890_000_000, time.UTC)
	return &token.Token{
		AccessToken:      accessSecret,
		TokenType:        "Bearer",
		RefreshToken:     refreshSecret,
		PrevRefreshToken: prevSecret,
		Expiry:           now.Add(time.Hour),
		RefreshExpiry:    now.Add(30 * 24 * time.Hour),
		Scope:            "read write",
		ObtainedAt:       now,
		Grant:            "refresh_token",
		Generation:       3,
		Extra:            map[string]any{"owner_id": "o-42", "count": float64(7)},
		Secrets:          map[string]string{"client_id": "cid-1", "client_secret": clientSecret},
	}
}

func TestSealKeepsSecretsOutOfMeta(t *testing.T) {
	s := testSealer(t, 1)
	tok := fullToken()
	before := tok.Clone()
	r, err := Seal(s, "prof", 1, tok)
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	if !reflect.DeepEqual(tok, before) {
		t.Errorf("Seal changed its argument: got %+v, want %+v", tok, before)
	}
	for _, secret := range []string{accessSecret, refreshSecret, prevSecret, clientSecret, "cid-1"} {
		for name, b := range map[string][]byte{"meta": r.Meta, "access": r.Access, "refresh": r.Refresh, "prev_refresh": r.PrevRefresh, "secrets": r.Secrets} {
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("%s holds the secret %q: %q", name, secret, b)
			}
		}
	}
	// What is not secret stays readable in meta.
	for _, plain := range []string{"read write", "o-42", "refresh_token", "Bearer"} {
		if !bytes.Contains(r.Meta, []byte(plain)) {
			t.Errorf("meta %s: want it to contain %q", r.Meta, plain)
		}
	}
	for name, b := range map[string][]byte{"access": r.Access, "refresh": r.Refresh, "prev_refresh": r.PrevRefresh, "secrets": r.Secrets} {
		if len(b) == 0 {
			t.Errorf("%s: got empty, want a sealed value", name)
		}
	}
}

func TestSealUnsealRoundTrip(t *testing.T) {
	s := testSealer(t, 1)
	tok := fullToken()
	r, err := Seal(s, "prof", 9, tok)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Unseal(s, "prof", 9, r)
	if err != nil {
		t.Fatalf("Unseal: %v", err)
	}
	want := tok.Clone()
	want.Generation = 9 // the generation comes from the row, not the meta
	if !sameToken(got, want) {
		t.Errorf("Unseal(Seal(tok)):\n got %+v\nwant %+v", got, want)
	}
}

func TestSealAbsentSecretsStayAbsent(t *testing.T) {
	s := testSealer(t, 1)
	tok := &token.Token{AccessToken: accessSecret, Grant: "client_credentials"}
	r, err := Seal(s, "prof", 1, tok)
	if err != nil {
		t.Fatal(err)
	}
	// Absent values are sealed too, so that removing a column is noticed.
	if r.Refresh == nil || r.PrevRefresh == nil || r.Secrets == nil {
		t.Errorf("absent fields: got refresh=%x prev=%x secrets=%x, want each sealed", r.Refresh, r.PrevRefresh, r.Secrets)
	}
	got, err := Unseal(s, "prof", 1, r)
	if err != nil {
		t.Fatal(err)
	}
	if got.AccessToken != accessSecret || got.RefreshToken != "" || got.Secrets != nil {
		t.Errorf("got %+v, want only the access token", got)
	}
}

func TestUnsealRefusesAnotherProfilesRow(t *testing.T) {
	s := testSealer(t, 1)
	r, err := Seal(s, "alpha", 1, fullToken())
	if err != nil {
		t.Fatal(err)
	}
	got, err := Unseal(s, "beta", 1, r)
	if err == nil {
		t.Fatalf("Unseal as another profile: got %+v, want an error", got)
	}
	assertUnreadable(t, err, "beta")
	if !errors.Is(err, seal.ErrOpen) {
		t.Errorf("got %v, want it to wrap seal.ErrOpen", err)
	}
}

func TestUnsealRefusesSwappedFields(t *testing.T) {
	s := testSealer(t, 1)
	r, err := Seal(s, "prof", 1, fullToken())
	if err != nil {
		t.Fatal(err)
	}
	r.Access, r.Refresh = r.Refresh, r.Access
	got, err := Unseal(s, "prof", 1, r)
	if err == nil {
		t.Fatalf("Unseal with access and refresh swapped: got %+v, want an error", got)
	}
	assertUnreadable(t, err, "prof")
}

func TestUnsealWrongKey(t *testing.T) {
	r, err := Seal(testSealer(t, 1), "prof", 1, fullToken())
	if err != nil {
		t.Fatal(err)
	}
	got, err := Unseal(testSealer(t, 2), "prof", 1, r)
	if err == nil {
		t.Fatalf("Unseal with another key: got %+v, want an error", got)
	}
	assertUnreadable(t, err, "prof")
	if msg := err.Error(); strings.Contains(msg, accessSecret) {
		t.Errorf("error %q leaks the access token", msg)
	}
}

func TestUnsealBadMeta(t *testing.T) {
	s := testSealer(t, 1)
	r, err := Seal(s, "prof", 1, fullToken())
	if err != nil {
		t.Fatal(err)
	}
	r.Meta = []byte("{not json")
	if got, err := Unseal(s, "prof", 1, r); err == nil {
		t.Fatalf("Unseal with broken meta: got %+v, want an error", got)
	} else {
		assertUnreadable(t, err, "prof")
	}
}

func assertUnreadable(t *testing.T, err error, profile string) {
	t.Helper()
	var fe *failure.Error
	if !errors.As(err, &fe) {
		t.Fatalf("got %T %v, want a *failure.Error", err, err)
	}
	if fe.Profile != profile {
		t.Errorf("error profile: got %q, want %q", fe.Profile, profile)
	}
	if msg := err.Error(); !strings.Contains(msg, `"`+profile+`"`) || !strings.Contains(msg, "master key") {
		t.Errorf("error %q: want it to name profile %q and mention the master key", msg, profile)
	}
}

// sameToken compares tokens, times by instant.
func sameToken(a, b *token.Token) bool {
	if a == nil || b == nil {
		return a == b
	}
	ac, bc := a.Clone(), b.Clone()
	for _, p := range []struct{ x, y *time.Time }{{&ac.Expiry, &bc.Expiry}, {&ac.RefreshExpiry, &bc.RefreshExpiry}, {&ac.ObtainedAt, &bc.ObtainedAt}} {
		if !p.x.Equal(*p.y) {
			return false
		}
		*p.x, *p.y = time.Time{}, time.Time{}
	}
	return reflect.DeepEqual(ac, bc)
}

func TestUnsealRefusesAlteredRows(t *testing.T) {
	s := testSealer(t, 1)
	r, err := Seal(s, "prof", 3, fullToken())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Unseal(s, "prof", 2, r); err == nil {
		t.Error("a row replayed under another generation was read")
	}
	edited := r
	edited.Meta = []byte(strings.Replace(string(r.Meta), `"grant"`, `"grant" `, 1))
	if string(edited.Meta) == string(r.Meta) {
		t.Fatal("the edit changed nothing")
	}
	if _, err := Unseal(s, "prof", 3, edited); err == nil {
		t.Error("a row with edited metadata was read")
	}
	removed := r
	removed.Refresh = nil
	if _, err := Unseal(s, "prof", 3, removed); err == nil {
		t.Error("a row with a removed refresh token was read")
	}
}
