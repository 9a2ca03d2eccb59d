//go:build unix

package store

import (
	"errors"
	"syscall"
)

// processGone says whether no process pid exists (signal 0 probes).
func processGone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}
