//go:build unix

package secretfile

import (
	"fmt"
	"io/fs"
	"os"
)

// checkPrivateMode refuses mode bits that let others read the file.
func checkPrivateMode(path, what string, fi fs.FileInfo) error {
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%s %s is readable by others (mode %04o): run `chmod 600 %s`", what, path, perm, path)
	}
	return nil
}

// makePrivate: on Unix the mode given at creation (0600, 0700) already
// makes a file private.
func makePrivate(string, bool) error { return nil }

// MakePrivate: a file made with a private mode is private; SQLite gives
// its journal files the state file's mode. Nothing to do, not even a stat.
func MakePrivate(string) error { return nil }

// syncDir makes a rename in dir durable: without it a power cut may bring
// back the old file.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
