//go:build unix

package main

import (
	"net"
	"os"
	"os/exec"
	"syscall"
)

// forwarded are the signals a child we run gets from us.
var forwarded = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH}

func forward(p *os.Process, s os.Signal) { p.Signal(s) }

// exitCodeOf is a child's exit code, 128+N for a signal N, as a shell says.
func exitCodeOf(ee *exec.ExitError) int {
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ee.ExitCode()
}

// listenPrivateSocket opens a Unix socket only this user may use.
func listenPrivateSocket(path string) (net.Listener, error) {
	old := syscall.Umask(0o177)
	defer syscall.Umask(old)
	return net.Listen("unix", path)
}

// replaceWith replaces this process with path: signals and the exit code
// are then the command's own.
func replaceWith(path string, argv, env []string) error {
	return syscall.Exec(path, argv, env)
}
