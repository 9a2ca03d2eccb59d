// Package secretfile keeps a generated secret in a 0600 file, made on first
// use. Creation is atomic (written whole, then linked into place), so
// processes starting at once agree on one value.
package secretfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// CheckPrivate refuses a file that others than its owner may read, saying
// how to fix it: secrets in such a file are already exposed.
func CheckPrivate(path, what string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	return checkPrivateMode(path, what, fi)
}

// LoadOrCreate returns the trimmed content of path, writing generate()'s
// value there first if the file does not exist. what names the file in errors.
func LoadOrCreate(path, what string, generate func() (string, error)) (value string, created bool, err error) {
	if v, err := read(path, what); !errors.Is(err, fs.ErrNotExist) {
		return v, false, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", false, err
	}
	v, err := generate()
	if err != nil {
		return "", false, err
	}
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return "", false, err
	}
	defer os.Remove(tmp.Name())
	_, werr := tmp.WriteString(v + "\n")
	if serr := tmp.Sync(); werr == nil {
		werr = serr
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return "", false, werr
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if !errors.Is(err, fs.ErrExist) {
			return "", false, err
		}
		v, err := read(path, what) // another process linked first
		return v, false, err
	}
	return v, true, nil
}

func read(path, what string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	if err := CheckPrivate(path, what); err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}
