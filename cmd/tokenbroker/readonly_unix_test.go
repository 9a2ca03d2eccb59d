//go:build unix

package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestReadOnlyStateDirectory: a state directory this user may not write
// gives a clear error and leaves the state as it was. As root, permissions
// do not bind, so the binary runs as nobody.
func TestReadOnlyStateDirectory(t *testing.T) {
	p := newProc(t, nil)
	good := strings.TrimSpace(mustOK(t, p.run(t, "token", "ruckus")).stdout)
	stateDir := filepath.Dir(p.statePath())
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		cred = &syscall.Credential{Uid: 65534, Gid: 65534}
		for _, f := range []string{stateDir, p.statePath(), p.config} {
			if err := os.Chown(f, 65534, 65534); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.Chmod(stateDir, 0o500); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(stateDir, 0o700)
	before, _ := os.ReadFile(p.statePath())
	cmd := p.command(t, "refresh", "ruckus")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	var errb bytes.Buffer
	cmd.Stderr = &errb
	err := cmd.Run()
	ee, ok := err.(*exec.ExitError)
	t.Logf("read-only: %s", errb.String())
	if !ok || ee.ExitCode() != 1 || !strings.Contains(errb.String(), "writable") {
		t.Errorf("refresh in a read-only directory: %v %q, want exit 1 saying what must be writable", err, errb.String())
	}
	if after, _ := os.ReadFile(p.statePath()); !bytes.Equal(before, after) {
		t.Error("the state file changed")
	}
	os.Chmod(stateDir, 0o700)
	if os.Geteuid() == 0 {
		for _, f := range []string{stateDir, p.statePath(), p.config} {
			os.Chown(f, 0, 0)
		}
	}
	if got := strings.TrimSpace(mustOK(t, p.run(t, "token", "ruckus")).stdout); got != good {
		t.Error("the stored token was lost")
	}
}
