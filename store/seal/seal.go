// Package seal encrypts token state with AES-256-GCM before it reaches a
// store. The associated data binds each sealed value to its profile and
// field, so a value copied to another row or column does not open.
//
// A Sealer holds a keyring: one primary key that seals, and the keys a
// rotation left that still open (until they are retired). The sealed format
// carries no key id, so values sealed before rotation existed open
// unchanged; opening tries the primary first, then the others.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
)

// KeySize is the master key's length: AES-256.
const KeySize = 32

// version prefixes every sealed value, so the format can change later.
const version byte = 1

// ErrOpen is returned when a value does not open: a wrong key or tampering.
var ErrOpen = errors.New("cannot decrypt: wrong master key, or the stored value was altered")

// Sealer seals and opens values under a keyring. It is safe for concurrent
// use; the keyring changes copy-on-write, so a seal or open in flight sees
// one keyring, the old or the new.
type Sealer struct {
	mu   sync.Mutex // serialises keyring changes
	ring atomic.Pointer[ring]
}

// ring is one immutable keyring: keys[0] is the primary.
type ring struct{ keys []*key }

type key struct {
	id   string
	aead cipher.AEAD
}

// KeyID names a key without revealing it: the first 6 bytes of a hash of
// it, in hex. It is what `tokenbroker rekey --status` shows.
func KeyID(k []byte) string {
	h := sha256.Sum256(append([]byte("tokenbroker/key-id\x00"), k...))
	return hex.EncodeToString(h[:6])
}

func newKey(k []byte) (*key, error) {
	if len(k) != KeySize {
		return nil, fmt.Errorf("master key must be %d bytes, got %d", KeySize, len(k))
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &key{id: KeyID(k), aead: aead}, nil
}

// New returns a Sealer whose only key, the primary, is the 32-byte key.
func New(k []byte) (*Sealer, error) {
	kk, err := newKey(k)
	if err != nil {
		return nil, err
	}
	s := &Sealer{}
	s.ring.Store(&ring{keys: []*key{kk}})
	return s, nil
}

// Clone returns a Sealer with the same keys, changed independently: a
// rotation prepares its keyring on a clone and swaps it in on commit.
func (s *Sealer) Clone() *Sealer {
	c := &Sealer{}
	c.ring.Store(s.ring.Load())
	return c
}

// Primary is the id of the key that seals.
func (s *Sealer) Primary() string { return s.ring.Load().keys[0].id }

// IDs lists the ids of every key held, the primary first.
func (s *Sealer) IDs() []string {
	var ids []string
	for _, k := range s.ring.Load().keys {
		ids = append(ids, k.id)
	}
	return ids
}

// change applies f to a copy of the keyring and stores the copy.
func (s *Sealer) change(f func(keys []*key) ([]*key, error)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	keys, err := f(slices.Clone(s.ring.Load().keys))
	if err != nil {
		return err
	}
	s.ring.Store(&ring{keys: keys})
	return nil
}

// Add holds another key, which opens but does not seal; a key already held
// is left where it is. It returns the key's id.
func (s *Sealer) Add(k []byte) (string, error) {
	kk, err := newKey(k)
	if err != nil {
		return "", err
	}
	return kk.id, s.change(func(keys []*key) ([]*key, error) {
		if slices.IndexFunc(keys, func(k *key) bool { return k.id == kk.id }) < 0 {
			keys = append(keys, kk)
		}
		return keys, nil
	})
}

// Promote makes the held key with this id the primary.
func (s *Sealer) Promote(id string) error {
	return s.change(func(keys []*key) ([]*key, error) {
		i := slices.IndexFunc(keys, func(k *key) bool { return k.id == id })
		if i < 0 {
			return nil, fmt.Errorf("master key %s is not held", id)
		}
		k := keys[i]
		keys = slices.Delete(keys, i, i+1)
		return slices.Insert(keys, 0, k), nil
	})
}

// Drop stops holding the key with this id. The primary cannot be dropped.
func (s *Sealer) Drop(id string) error {
	return s.change(func(keys []*key) ([]*key, error) {
		i := slices.IndexFunc(keys, func(k *key) bool { return k.id == id })
		switch {
		case i < 0:
			return keys, nil
		case i == 0:
			return nil, fmt.Errorf("master key %s seals: promote another before dropping it", id)
		}
		return slices.Delete(keys, i, i+1), nil
	})
}

func ad(profile, field string) []byte {
	return []byte("tokenbroker/v1\x00" + profile + "\x00" + field)
}

// Seal encrypts plaintext for profile and field under the primary key.
// Empty plaintext seals to nil, so absent values stay absent.
func (s *Sealer) Seal(profile, field string, plaintext []byte) ([]byte, error) {
	return s.ring.Load().keys[0].seal(ad(profile, field), plaintext)
}

func (k *key) seal(ad, plaintext []byte) ([]byte, error) {
	if len(plaintext) == 0 {
		return nil, nil
	}
	out := make([]byte, 1+k.aead.NonceSize(), 1+k.aead.NonceSize()+len(plaintext)+k.aead.Overhead())
	out[0] = version
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, err
	}
	return k.aead.Seal(out, out[1:], plaintext, ad), nil
}

// Open decrypts a value sealed for profile and field under any key held.
func (s *Sealer) Open(profile, field string, sealed []byte) ([]byte, error) {
	pt, _, err := s.OpenID(profile, field, sealed)
	return pt, err
}

// OpenID is Open that also says which key opened the value ("" for an
// empty value, which needs none).
func (s *Sealer) OpenID(profile, field string, sealed []byte) ([]byte, string, error) {
	return s.ring.Load().open(ad(profile, field), sealed)
}

func (r *ring) open(ad, sealed []byte) ([]byte, string, error) {
	if len(sealed) == 0 {
		return nil, "", nil
	}
	for _, k := range r.keys {
		n := k.aead.NonceSize()
		if len(sealed) < 1+n+k.aead.Overhead() || sealed[0] != version {
			return nil, "", ErrOpen
		}
		if pt, err := k.aead.Open(nil, sealed[1:1+n], sealed[1+n:], ad); err == nil {
			return pt, k.id, nil
		}
	}
	return nil, "", ErrOpen
}

// Reseal returns the value sealed under the primary key: the same bytes
// when it already is, else opened and sealed again, with changed set.
func (s *Sealer) Reseal(profile, field string, sealed []byte) (out []byte, changed bool, err error) {
	r := s.ring.Load()
	pt, id, err := r.open(ad(profile, field), sealed)
	if err != nil || id == "" || id == r.keys[0].id {
		return sealed, false, err
	}
	out, err = r.keys[0].seal(ad(profile, field), pt)
	return out, err == nil, err
}

// wrapAD binds a wrapped key to its own id.
func wrapAD(id string) []byte { return ad("", "master_key\x00"+id) }

// Wrap seals the key k under the primary, so that a holder of the primary
// can learn k from the store. It returns k's id and the wrapped key.
func (s *Sealer) Wrap(k []byte) (id string, wrapped []byte, err error) {
	if len(k) != KeySize {
		return "", nil, fmt.Errorf("master key must be %d bytes, got %d", KeySize, len(k))
	}
	id = KeyID(k)
	wrapped, err = s.ring.Load().keys[0].seal(wrapAD(id), k)
	return id, wrapped, err
}

// Unwrap opens a key Wrap sealed under a key held, checking that it is
// the key with this id.
func (s *Sealer) Unwrap(id string, wrapped []byte) ([]byte, error) {
	k, _, err := s.ring.Load().open(wrapAD(id), wrapped)
	if err != nil {
		return nil, err
	}
	if len(k) != KeySize || KeyID(k) != id {
		return nil, ErrOpen
	}
	return k, nil
}

// Adopt makes s hold o's keys, o's primary sealing: a rotation prepared on
// a clone takes effect once its transaction commits.
func (s *Sealer) Adopt(o *Sealer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ring.Store(o.ring.Load())
}
