package main

import (
	"bytes"
	"log"
	"net"
	"runtime"
	"syscall"
)

// startEvLoop is the floor of an event-loop proxy in Go, next to
// startRawLoop's goroutine per connection: one thread, epoll, raw file
// descriptors, one upstream connection per client, each message assumed
// to arrive whole in one read. It shows what leaving Go's scheduler and
// netpoller would be worth (what nginx's design has and a goroutine per
// connection has not), not a proxy anyone should run.
func startEvLoop(upstream, token string) (addr string, stop func(), ok bool) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	lf, err := ln.(*net.TCPListener).File()
	if err != nil {
		log.Fatal(err)
	}
	ua, err := net.ResolveTCPAddr("tcp", upstream)
	if err != nil {
		log.Fatal(err)
	}
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		log.Fatal(err)
	}
	lfd := int(lf.Fd())
	syscall.SetNonblock(lfd, true)
	syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, lfd, &syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(lfd)})
	go func() {
		runtime.LockOSThread()
		defer runtime.KeepAlive(lf)
		peer := map[int]int{} // client fd <-> upstream fd
		client := map[int]bool{}
		auth := []byte("authorization:")
		tail := []byte("Authorization: Bearer " + token + "\r\n\r\n")
		buf, out := make([]byte, 16<<10), make([]byte, 0, 16<<10)
		events := make([]syscall.EpollEvent, 128)
		for {
			n, err := syscall.EpollWait(ep, events, -1)
			if err != nil {
				continue
			}
			for _, ev := range events[:n] {
				fd := int(ev.Fd)
				if fd == lfd {
					if !evAccept(ep, lfd, ua, peer, client) {
						return // the listener is closed
					}
					continue
				}
				m, err := syscall.Read(fd, buf)
				if err == syscall.EAGAIN {
					continue
				}
				if m <= 0 {
					other := peer[fd]
					syscall.Close(fd)
					syscall.Close(other)
					delete(peer, fd)
					delete(peer, other)
					delete(client, fd)
					delete(client, other)
					continue
				}
				data := buf[:m]
				if !client[fd] {
					syscall.Write(peer[fd], data) // the answer, as it came
					continue
				}
				// The request's head lines but its Authorization, then ours.
				out = out[:0]
				for {
					i := bytes.IndexByte(data, '\n')
					if i < 0 || i <= 1 {
						break
					}
					if l := data[:i+1]; !(len(l) >= len(auth) && bytes.EqualFold(l[:len(auth)], auth)) {
						out = append(out, l...)
					}
					data = data[i+1:]
				}
				syscall.Write(peer[fd], append(out, tail...))
			}
		}
	}()
	return ln.Addr().String(), func() { ln.Close(); lf.Close() }, true
}

// evAccept takes the waiting connections, each with its own upstream
// connection; false when the listener is closed.
func evAccept(ep, lfd int, ua *net.TCPAddr, peer map[int]int, client map[int]bool) bool {
	for {
		cfd, _, err := syscall.Accept4(lfd, syscall.SOCK_NONBLOCK|syscall.SOCK_CLOEXEC)
		if err == syscall.EAGAIN {
			return true
		}
		if err != nil {
			return err == syscall.ECONNABORTED || err == syscall.EINTR
		}
		ufd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		if err != nil {
			syscall.Close(cfd)
			continue
		}
		sa := &syscall.SockaddrInet4{Port: ua.Port}
		copy(sa.Addr[:], ua.IP.To4())
		if syscall.Connect(ufd, sa) != nil { // blocking: loopback, immediate
			syscall.Close(cfd)
			syscall.Close(ufd)
			continue
		}
		syscall.SetNonblock(ufd, true)
		for _, fd := range []int{cfd, ufd} {
			syscall.SetsockoptInt(fd, syscall.IPPROTO_TCP, syscall.TCP_NODELAY, 1)
			syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, fd, &syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(fd)})
		}
		peer[cfd], peer[ufd], client[cfd] = ufd, cfd, true
	}
}
