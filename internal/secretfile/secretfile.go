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
	if err := MkdirPrivate(dir); err != nil {
		return "", false, err
	}
	v, err := generate()
	if err != nil {
		return "", false, err
	}
	tmp, err := writeTemp(dir, v)
	if err != nil {
		return "", false, err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, path); err != nil {
		if !errors.Is(err, fs.ErrExist) {
			return "", false, err
		}
		v, err := read(path, what) // another process linked first
		return v, false, err
	}
	return v, true, nil
}

// writeTemp writes v to a new private file in dir, durably, and returns
// its name.
func writeTemp(dir, v string) (string, error) {
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return "", err
	}
	werr := makePrivate(tmp.Name(), false) // before the secret is in it
	if werr == nil {
		_, werr = tmp.WriteString(v + "\n")
	}
	if serr := tmp.Sync(); werr == nil {
		werr = serr
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		os.Remove(tmp.Name())
		return "", werr
	}
	return tmp.Name(), nil
}

// Replace puts v in path in place of what it held, atomically: a reader
// sees the old value or the new one, whole.
func Replace(path, v string) error {
	tmp, err := writeTemp(filepath.Dir(path), v)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(path))
}

// MkdirPrivate makes dir, and its parents, when it does not exist: 0700,
// and on Windows an access list for the current user alone, which what is
// made in it inherits. An existing directory is left as it is.
func MkdirPrivate(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	return makePrivate(dir, true)
}

// CreatePrivate makes the file path if it does not exist, private to its
// owner (0600; on Windows an access list for the current user alone).
func CreatePrivate(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	f.Close()
	return makePrivate(path, false)
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
