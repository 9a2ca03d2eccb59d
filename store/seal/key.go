package seal

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/tokenbroker/tokenbroker/internal/secretfile"
)

// KeyFileName is the key file made beside the state on first use.
const KeyFileName = "key"

// DecodeKey reads a base64 master key (standard or URL alphabet, padded or not).
func DecodeKey(text, source string) ([]byte, error) {
	text = strings.TrimSpace(text)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(text); err == nil {
			if len(k) != KeySize {
				return nil, fmt.Errorf("master key from %s is %d bytes, want %d: make one with `head -c 32 /dev/urandom | base64`", source, len(k), KeySize)
			}
			return k, nil
		}
	}
	return nil, fmt.Errorf("master key from %s is not base64: make one with `head -c 32 /dev/urandom | base64`", source)
}

// CheckPrivate refuses a file that others than its owner may read.
func CheckPrivate(path, what string) error { return secretfile.CheckPrivate(path, what) }

// FileKey reads the key file in dir, making it on first use, atomically so
// that processes starting at once agree on one key.
func FileKey(dir string) ([]byte, error) {
	path := filepath.Join(dir, KeyFileName)
	text, _, err := secretfile.LoadOrCreate(path, "key file", func() (string, error) {
		k, err := NewKey()
		return EncodeKey(k), err
	})
	if err != nil {
		return nil, err
	}
	return DecodeKey(text, path)
}

// NewKey makes a random master key.
func NewKey() ([]byte, error) {
	k := make([]byte, KeySize)
	_, err := rand.Read(k)
	return k, err
}

// EncodeKey is the text form of a key, as DecodeKey reads it.
func EncodeKey(k []byte) string { return base64.StdEncoding.EncodeToString(k) }

// ReplaceKeyFile puts k in the key file in dir, atomically (a rotation
// of a state whose key is kept beside it).
func ReplaceKeyFile(dir string, k []byte) error {
	return secretfile.Replace(filepath.Join(dir, KeyFileName), EncodeKey(k))
}
