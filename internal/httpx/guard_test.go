package httpx

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
)

// strayServer answers each request with a chunked answer that echoes the
// request's X-Id, followed by a stray second answer, on a kept-alive
// connection.
func strayServer(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					io.Copy(io.Discard, req.Body)
					id := req.Header.Get("X-Id")
					fmt.Fprintf(c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n"+
						"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nSTRAY", len(id), id)
				}
			}()
		}
	}()
	return "http://" + ln.Addr().String()
}

// Many callers on a few kept-alive connections to a server that sends a
// stray answer after each one: every caller reads its own answer. Without
// the guard, net/http hands a stray answer to the request that takes the
// connection before its reader has looked at it.
func TestStrayBytesNeverReachTheNextRequest(t *testing.T) {
	url := strayServer(t)
	_, rt := NewTransport(DefaultTimeout, 4)
	hc := &http.Client{Transport: rt}
	var wrong, failed atomic.Int64
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 300 {
				id := fmt.Sprintf("g%d-%d", g, i)
				req, _ := http.NewRequest("GET", url+"/x", nil)
				req.Header.Set("X-Id", id)
				resp, err := hc.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if string(b) != id {
					if wrong.Add(1) == 1 {
						t.Errorf("request %s got %q", id, b)
					}
				}
			}
		}()
	}
	wg.Wait()
	if wrong.Load() > 0 {
		t.Errorf("%d of %d requests got another answer", wrong.Load(), 16*300)
	}
	// A request whose connection closed under it is sent again on a new
	// one (it had written nothing): none fails.
	if f := failed.Load(); f > 0 {
		t.Errorf("%d requests failed", f)
	}
}
