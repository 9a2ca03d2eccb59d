package seal

import (
	"bytes"
	"errors"
	"slices"
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

func TestKeyringOpensUnderEveryKeyAndSealsUnderThePrimary(t *testing.T) {
	s := newSealer(t, 1)
	under1, err := s.Seal("p", "f", []byte("one"))
	if err != nil {
		t.Fatal(err)
	}
	id2, err := s.Add(testKey(2))
	if err != nil {
		t.Fatal(err)
	}
	if s.Primary() != KeyID(testKey(1)) || id2 != KeyID(testKey(2)) {
		t.Fatalf("Add changed the primary to %s", s.Primary())
	}
	if err := s.Promote(id2); err != nil {
		t.Fatal(err)
	}
	under2, err := s.Seal("p", "f", []byte("two"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := newSealer(t, 2).Open("p", "f", under2); err != nil {
		t.Fatalf("sealed after Promote does not open under the new key alone: %v", err)
	}
	for _, c := range []struct {
		sealed []byte
		want   string
		by     string
	}{{under1, "one", KeyID(testKey(1))}, {under2, "two", id2}} {
		pt, by, err := s.OpenID("p", "f", c.sealed)
		if err != nil || string(pt) != c.want || by != c.by {
			t.Fatalf("OpenID = %q by %s, %v; want %q by %s", pt, by, err, c.want, c.by)
		}
	}
	// Reseal moves a value under the primary and leaves one already there.
	moved, changed, err := s.Reseal("p", "f", under1)
	if err != nil || !changed {
		t.Fatalf("Reseal of an old value: changed %v, %v", changed, err)
	}
	if pt, err := newSealer(t, 2).Open("p", "f", moved); err != nil || string(pt) != "one" {
		t.Fatalf("resealed value = %q, %v", pt, err)
	}
	if same, changed, err := s.Reseal("p", "f", under2); err != nil || changed || !bytes.Equal(same, under2) {
		t.Fatalf("Reseal of a current value changed it (%v, %v)", changed, err)
	}
	if err := s.Drop(id2); err == nil {
		t.Fatal("the primary was dropped")
	}
	if err := s.Drop(KeyID(testKey(1))); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open("p", "f", under1); !errors.Is(err, ErrOpen) {
		t.Fatalf("a dropped key still opens: %v", err)
	}
}

func TestCloneAndAdoptAreIndependent(t *testing.T) {
	s := newSealer(t, 1)
	c := s.Clone()
	id, _ := c.Add(testKey(2))
	if err := c.Promote(id); err != nil {
		t.Fatal(err)
	}
	if s.Primary() == id || slices.Contains(s.IDs(), id) {
		t.Fatal("a change to the clone reached the original")
	}
	s.Adopt(c)
	if s.Primary() != id || !slices.Contains(s.IDs(), KeyID(testKey(1))) {
		t.Fatalf("after Adopt: %v", s.IDs())
	}
}

func TestWrapUnwrap(t *testing.T) {
	old := newSealer(t, 1)
	id, wrapped, err := old.Wrap(testKey(2))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(wrapped, testKey(2)) {
		t.Fatal("the wrapped key holds the key in the clear")
	}
	k, err := old.Unwrap(id, wrapped)
	if err != nil || !bytes.Equal(k, testKey(2)) {
		t.Fatalf("Unwrap = %x, %v", k, err)
	}
	// The wrapped key is bound to its id, and opens only under the key
	// that wrapped it.
	if _, err := old.Unwrap(KeyID(testKey(3)), wrapped); !errors.Is(err, ErrOpen) {
		t.Fatalf("Unwrap under another id: %v", err)
	}
	if _, err := newSealer(t, 3).Unwrap(id, wrapped); !errors.Is(err, ErrOpen) {
		t.Fatalf("Unwrap under another key: %v", err)
	}
	if KeyID(testKey(1)) == KeyID(testKey(2)) || len(KeyID(testKey(1))) != 12 {
		t.Fatalf("key ids %s %s", KeyID(testKey(1)), KeyID(testKey(2)))
	}
}
