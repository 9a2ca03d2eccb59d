package main

import (
	"bufio"
	"bytes"
	"io"
	"log"
	"net"
	"strconv"
)

// startRawLoop is the floor of a Go proxy: one goroutine per connection,
// one upstream connection each, heads copied line by line with a fixed
// Authorization, bodies by Content-Length. No checks, no limits: it shows
// what Go itself costs on this machine, next to nginx.
func startRawLoop(upstream, token string) (addr string, stop func()) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go rawLoop(c, upstream, token)
		}
	}()
	return ln.Addr().String(), func() { ln.Close() }
}

func rawLoop(c net.Conn, upstream, token string) {
	defer c.Close()
	uc, err := net.Dial("tcp", upstream)
	if err != nil {
		return
	}
	defer uc.Close()
	br, bw := bufio.NewReader(c), bufio.NewWriter(c)
	ubr, ubw := bufio.NewReader(uc), bufio.NewWriter(uc)
	auth := []byte("authorization:")
	for {
		if !copyHead(br, ubw, func(l []byte) bool { return len(l) >= len(auth) && bytes.EqualFold(l[:len(auth)], auth) }) {
			return
		}
		ubw.WriteString("Authorization: Bearer " + token + "\r\n\r\n")
		if ubw.Flush() != nil {
			return
		}
		n := 0
		if !copyHead(ubr, bw, func(l []byte) bool {
			if len(l) > 15 && bytes.EqualFold(l[:15], []byte("content-length:")) {
				n, _ = strconv.Atoi(string(bytes.TrimSpace(l[15:])))
			}
			return false
		}) {
			return
		}
		bw.WriteString("\r\n")
		if _, err := io.CopyN(bw, ubr, int64(n)); err != nil || bw.Flush() != nil {
			return
		}
	}
}

// copyHead copies a head's lines but the blank one, leaving out those skip
// names.
func copyHead(r *bufio.Reader, w *bufio.Writer, skip func([]byte) bool) bool {
	for first := true; ; first = false {
		l, err := r.ReadSlice('\n')
		if err != nil {
			return false
		}
		if len(l) <= 2 {
			return !first
		}
		if !skip(l) {
			w.Write(l)
		}
	}
}
