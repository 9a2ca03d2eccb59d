//go:build unix

package sink

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// checkDirOwner refuses a directory that others can write, or that
// another user (not root) owns.
func checkDirOwner(dir string, fi fs.FileInfo) error {
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return fmt.Errorf("its directory %s can be written by others (mode %04o): use a directory only its owner writes (chmod go-w %s)", dir, perm, dir)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 && int(st.Uid) != os.Getuid() {
		return fmt.Errorf("its directory %s belongs to another user (uid %d)", dir, st.Uid)
	}
	return nil
}

// keepOwner gives tmp the owner a deployment gave the file it replaces
// (possible as root; otherwise the file becomes this user's).
func keepOwner(tmp *os.File, old fs.FileInfo) error {
	st, ok := old.Sys().(*syscall.Stat_t)
	if !ok || (int(st.Uid) == os.Getuid() && int(st.Gid) == os.Getgid()) {
		return nil
	}
	if err := tmp.Chown(int(st.Uid), int(st.Gid)); err != nil && !errors.Is(err, os.ErrPermission) {
		return err
	}
	return nil
}
