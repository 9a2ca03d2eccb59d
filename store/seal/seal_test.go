package seal

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func testKey(b byte) []byte { return bytes.Repeat([]byte{b}, KeySize) }

func newSealer(t *testing.T, b byte) *Sealer {
	t.Helper()
	s, err := New(testKey(b))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func TestNewRejectsWrongKeyLength(t *testing.T) {
	for _, n := range []int{0, 16, 31, 33, 64} {
		if _, err := New(make([]byte, n)); err == nil {
			t.Errorf("New(%d-byte key): got nil error, want an error", n)
		}
	}
}

func TestSealOpenRoundTrip(t *testing.T) {
	s := newSealer(t, 1)
	for _, pt := range []string{"x", "access-token-value", strings.Repeat("long secret ", 1000), "\x00\xff binary"} {
		sealed, err := s.Seal("prof", "access_token", []byte(pt))
		if err != nil {
			t.Fatalf("Seal: %v", err)
		}
		if len(pt) >= 8 && bytes.Contains(sealed, []byte(pt)) { // a shorter one may occur by chance
			t.Errorf("sealed value contains the plaintext %q", pt)
		}
		got, err := s.Open("prof", "access_token", sealed)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if string(got) != pt {
			t.Errorf("Open(Seal(%.20q)): got %.20q, want %.20q", pt, got, pt)
		}
	}
}

func TestSealIsRandomised(t *testing.T) {
	s := newSealer(t, 1)
	a, _ := s.Seal("p", "f", []byte("same"))
	b, _ := s.Seal("p", "f", []byte("same"))
	if bytes.Equal(a, b) {
		t.Errorf("two seals of the same plaintext are identical (%x): the nonce is not fresh", a)
	}
}

func TestOpenBindsProfileAndField(t *testing.T) {
	s := newSealer(t, 1)
	sealed, err := s.Seal("profileA", "fieldX", []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ profile, field string }{
		{"profileB", "fieldX"},
		{"profileA", "fieldY"},
		{"profileB", "fieldY"},
		{"profilea", "fieldX"},
		{"", ""},
	} {
		got, err := s.Open(c.profile, c.field, sealed)
		if !errors.Is(err, ErrOpen) {
			t.Errorf("Open(%q, %q) of a value sealed for (profileA, fieldX): got %q, %v, want ErrOpen", c.profile, c.field, got, err)
		}
	}
}

func TestOpenWrongKey(t *testing.T) {
	sealed, err := newSealer(t, 1).Seal("p", "f", []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := newSealer(t, 2).Open("p", "f", sealed)
	if !errors.Is(err, ErrOpen) {
		t.Errorf("Open with another key: got %q, %v, want ErrOpen", got, err)
	}
}

func TestOpenDetectsAnyFlippedByte(t *testing.T) {
	s := newSealer(t, 1)
	sealed, err := s.Seal("p", "f", []byte("a secret worth protecting"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range sealed {
		for _, mask := range []byte{0x01, 0x80, 0xff} {
			bad := bytes.Clone(sealed)
			bad[i] ^= mask
			if got, err := s.Open("p", "f", bad); !errors.Is(err, ErrOpen) {
				t.Errorf("byte %d ^ %#x: got %q, %v, want ErrOpen", i, mask, got, err)
			}
		}
	}
	// Truncated and extended values do not open either.
	for n := 1; n < len(sealed); n++ {
		if got, err := s.Open("p", "f", sealed[:n]); !errors.Is(err, ErrOpen) {
			t.Errorf("truncated to %d bytes: got %q, %v, want ErrOpen", n, got, err)
		}
	}
	if got, err := s.Open("p", "f", append(bytes.Clone(sealed), 0)); !errors.Is(err, ErrOpen) {
		t.Errorf("one byte appended: got %q, %v, want ErrOpen", got, err)
	}
	// The original still opens: the loop above did not alias it.
	if _, err := s.Open("p", "f", sealed); err != nil {
		t.Errorf("original after the flips: %v", err)
	}
}

func TestSealEmptyIsNil(t *testing.T) {
	s := newSealer(t, 1)
	for _, pt := range [][]byte{nil, {}} {
		sealed, err := s.Seal("p", "f", pt)
		if err != nil || sealed != nil {
			t.Errorf("Seal(%#v): got %#v, %v, want nil, nil", pt, sealed, err)
		}
	}
	got, err := s.Open("p", "f", nil)
	if err != nil || got != nil {
		t.Errorf("Open(nil): got %#v, %v, want nil, nil", got, err)
	}
}
