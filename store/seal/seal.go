// Package seal encrypts token state with AES-256-GCM before it reaches a
// store. The associated data binds each sealed value to its profile and
// field, so a value copied to another row or column does not open.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
)

// KeySize is the master key's length: AES-256.
const KeySize = 32

// version prefixes every sealed value, so the format can change later.
const version byte = 1

// ErrOpen is returned when a value does not open: a wrong key or tampering.
var ErrOpen = errors.New("cannot decrypt: wrong master key, or the stored value was altered")

// Sealer seals and opens values under one master key. It is safe for
// concurrent use.
type Sealer struct{ aead cipher.AEAD }

// New returns a Sealer for a 32-byte key.
func New(key []byte) (*Sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("master key must be %d bytes, got %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead}, nil
}

func ad(profile, field string) []byte {
	return []byte("tokenbroker/v1\x00" + profile + "\x00" + field)
}

// Seal encrypts plaintext for profile and field. Empty plaintext seals to
// nil, so absent values stay absent.
func (s *Sealer) Seal(profile, field string, plaintext []byte) ([]byte, error) {
	if len(plaintext) == 0 {
		return nil, nil
	}
	out := make([]byte, 1+s.aead.NonceSize(), 1+s.aead.NonceSize()+len(plaintext)+s.aead.Overhead())
	out[0] = version
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, err
	}
	return s.aead.Seal(out, out[1:], plaintext, ad(profile, field)), nil
}

// Open decrypts a value sealed for profile and field.
func (s *Sealer) Open(profile, field string, sealed []byte) ([]byte, error) {
	if len(sealed) == 0 {
		return nil, nil
	}
	n := s.aead.NonceSize()
	if len(sealed) < 1+n+s.aead.Overhead() || sealed[0] != version {
		return nil, ErrOpen
	}
	pt, err := s.aead.Open(nil, sealed[1:1+n], sealed[1+n:], ad(profile, field))
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}
