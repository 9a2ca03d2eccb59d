//go:build !linux

package main

// startEvLoop needs epoll: on other systems there is no event-loop
// baseline.
func startEvLoop(upstream, token string) (addr string, stop func(), ok bool) {
	return "", nil, false
}
