package store

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/store/seal"
)

func keyOf(b byte) []byte { return bytes.Repeat([]byte{b}, seal.KeySize) }

func sealerWith(t *testing.T, keys ...[]byte) *seal.Sealer {
	t.Helper()
	s, err := seal.New(keys[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys[1:] {
		if _, err := s.Add(k); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// wrapped is the entry of key k wrapped under by.
func wrapped(t *testing.T, k, by []byte, state string) KeyEntry {
	t.Helper()
	id, w, err := sealerWith(t, by).Wrap(k)
	if err != nil {
		t.Fatal(err)
	}
	return KeyEntry{ID: id, State: state, Wrapped: w, WrappedBy: seal.KeyID(by), At: time.Now()}
}

func TestApplyKeysFollowsTheChainOfRotations(t *testing.T) {
	k0, k1, k2 := keyOf(1), keyOf(2), keyOf(3)
	s := sealerWith(t, k0)
	entries := []KeyEntry{
		{ID: seal.KeyID(k0), State: KeyAccepted},
		wrapped(t, k1, k0, KeyAccepted),
		wrapped(t, k2, k1, KeyPrimary),
	}
	if err := ApplyKeys(s, entries); err != nil {
		t.Fatal(err)
	}
	if s.Primary() != seal.KeyID(k2) || !slices.Contains(s.IDs(), seal.KeyID(k0)) || !slices.Contains(s.IDs(), seal.KeyID(k1)) {
		t.Fatalf("after two rotations: primary %s, holds %v", s.Primary(), s.IDs())
	}
	// Retiring drops the old keys.
	entries = []KeyEntry{{ID: seal.KeyID(k0), State: KeyRetired}, {ID: seal.KeyID(k1), State: KeyRetired}, {ID: seal.KeyID(k2), State: KeyPrimary}}
	if err := ApplyKeys(s, entries); err != nil {
		t.Fatal(err)
	}
	if ids := s.IDs(); len(ids) != 1 || ids[0] != seal.KeyID(k2) {
		t.Fatalf("after retire: holds %v", ids)
	}
}

// TestApplyKeysRefusesEditedEntries: the entries are not authenticated,
// so a primary that is not the end of the chain from the key sealing now
// is refused, and the Sealer is left as it was.
func TestApplyKeysRefusesEditedEntries(t *testing.T) {
	k0, k1, attacker := keyOf(1), keyOf(2), keyOf(9)
	for _, c := range []struct {
		name    string
		entries func() []KeyEntry
		want    string
	}{
		{"the old key put back as primary", func() []KeyEntry {
			return []KeyEntry{{ID: seal.KeyID(k0), State: KeyPrimary}, wrapped(t, k1, k0, KeyAccepted)}
		}, "not wrapped"},
		{"a key of the attacker's wrapped under the old key", func() []KeyEntry {
			return []KeyEntry{{ID: seal.KeyID(k0), State: KeyAccepted}, wrapped(t, k1, k0, KeyAccepted), wrapped(t, attacker, k0, KeyPrimary)}
		}, "not wrapped"},
		{"no primary", func() []KeyEntry { return []KeyEntry{{ID: seal.KeyID(k1), State: KeyAccepted}} }, "no primary"},
		{"an altered wrapped key", func() []KeyEntry {
			e := wrapped(t, keyOf(3), k1, KeyPrimary)
			e.Wrapped[len(e.Wrapped)-1] ^= 1
			return []KeyEntry{e}
		}, "altered"},
	} {
		s := sealerWith(t, k1, k0) // followed the rotation to k1, still holds k0
		err := ApplyKeys(s, c.entries())
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error saying %q", c.name, err, c.want)
		}
		if s.Primary() != seal.KeyID(k1) || len(s.IDs()) != 2 {
			t.Errorf("%s: the sealer changed: primary %s, %v", c.name, s.Primary(), s.IDs())
		}
	}
}
