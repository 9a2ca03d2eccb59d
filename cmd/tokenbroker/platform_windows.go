//go:build windows

package main

import (
	"net"
	"os"
	"os/exec"
)

// forwarded are the signals a child we run gets from us: Ctrl-C and
// Ctrl-Break arrive as os.Interrupt.
var forwarded = []os.Signal{os.Interrupt}

// forward passes Ctrl-C on. The console sends Ctrl-C to every process
// attached to it, the child included, so there is nothing more to send;
// a child without a console is ended.
func forward(p *os.Process, s os.Signal) {
	if err := p.Signal(s); err != nil {
		p.Kill()
	}
}

func exitCodeOf(ee *exec.ExitError) int { return ee.ExitCode() }

// listenPrivateSocket opens a Unix socket (Windows 10 and later); it takes
// its directory's ACL.
func listenPrivateSocket(path string) (net.Listener, error) {
	return net.Listen("unix", path)
}

// replaceWith runs path as a child: Windows has no exec(2). Ctrl-C is
// passed on and its exit code is returned as ours.
func replaceWith(path string, argv, env []string) error {
	return runChild(append([]string{path}, argv[1:]...), env)
}
