package seal

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
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

// CheckPrivate refuses a file that others than its owner may read, saying
// how to fix it. Secrets in such a file are already exposed.
func CheckPrivate(path, what string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%s %s is readable by others (mode %04o): run `chmod 600 %s`", what, path, perm, path)
	}
	return nil
}

// FileKey reads the key file in dir, making it on first use. Creation is
// atomic (written whole, then linked into place), so processes starting at
// once agree on one key.
func FileKey(dir string) ([]byte, error) {
	path := filepath.Join(dir, KeyFileName)
	if k, err := readKeyFile(path); !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(dir, ".key-*")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(base64.StdEncoding.EncodeToString(k) + "\n"); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, err
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	return readKeyFile(path) // ours, or the one another process linked first
}

func readKeyFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if err := CheckPrivate(path, "key file"); err != nil {
		return nil, err
	}
	return DecodeKey(string(b), path)
}
