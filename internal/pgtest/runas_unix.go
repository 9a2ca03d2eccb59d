//go:build unix

package pgtest

import (
	"os/exec"
	"syscall"
)

// apply makes cmd run as u (nil: as this process's user).
func (u *runAs) apply(cmd *exec.Cmd) {
	if u != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(u.uid), Gid: uint32(u.gid)}}
	}
}
