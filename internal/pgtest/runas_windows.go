//go:build windows

package pgtest

import "os/exec"

// apply runs cmd as this process's user: Windows has no root to avoid
// (Geteuid is -1 there, so runAs is never set).
func (u *runAs) apply(*exec.Cmd) {}
