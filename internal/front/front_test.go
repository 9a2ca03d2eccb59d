package front

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// laneReply answers a lane request with a short text body.
func laneReply(r *Request, text string) {
	fmt.Fprintf(r.W, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(text), text)
}

// start serves lane first and, for the rest, a handler that names itself.
func start(t *testing.T, lane Lane, tune func(*Server)) (string, *Server) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "http %s %s", r.URL.Path, b)
	})}
	s := New(ln, lane, hs)
	if tune != nil {
		tune(s)
	}
	done := make(chan struct{})
	go func() { s.Serve(); close(done) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		<-done
	})
	return ln.Addr().String(), s
}

// echoLane takes requests under /lane/ and answers with their target and body.
func echoLane(r *Request) bool {
	if !strings.HasPrefix(string(r.Head.Target), "/lane/") {
		return false
	}
	body, err := r.Body()
	if err != nil {
		r.Close = true
		return true
	}
	laneReply(r, "lane "+string(r.Head.Target)+" "+string(body))
	return true
}

func readResponses(t *testing.T, br *bufio.Reader, n int) []string {
	t.Helper()
	var got []string
	for range n {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("after %q: %v", got, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got = append(got, string(b))
	}
	return got
}

// A connection starts in the lane and, at the first request the lane does
// not take, continues in net/http with nothing lost: pipelined requests
// are answered in order.
func TestLaneThenNetHTTPOnOneConnection(t *testing.T) {
	addr, _ := start(t, echoLane, nil)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /lane/a HTTP/1.1\r\nHost: x\r\n\r\n"+
		"POST /lane/b HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"+
		"GET /other HTTP/1.1\r\nHost: x\r\n\r\n"+
		"POST /lane/c HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
	got := readResponses(t, bufio.NewReader(c), 4)
	want := []string{"lane /lane/a ", "lane /lane/b hello", "http /other ", "http /lane/c abc"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("got %q, want %q", got, want)
	}
}

// What the lane does not handle (chunked bodies, HTTP/1.0, bare LF line
// ends, heads larger than its buffer) goes to net/http whole.
func TestUnusualRequestsGoToNetHTTP(t *testing.T) {
	addr, _ := start(t, echoLane, nil)
	for name, req := range map[string]string{
		"chunked":    "POST /lane/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"http/1.0":   "GET /lane/x HTTP/1.0\r\nHost: x\r\n\r\n",
		"bare LF":    "GET /lane/x HTTP/1.1\nHost: x\n\n",
		"large head": "GET /lane/x HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 6000) + "\r\n\r\n",
		"expect":     "POST /lane/x HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello",
	} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, req)
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if resp.StatusCode == http.StatusContinue {
			resp, err = http.ReadResponse(br, nil)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
		b, _ := io.ReadAll(resp.Body)
		if !strings.HasPrefix(string(b), "http /lane/x") {
			t.Errorf("%s: answered %q, want net/http's answer", name, b)
		}
		c.Close()
	}
}

// A request's context ends when its caller hangs up while it waits.
func TestContextEndsWhenTheCallerLeaves(t *testing.T) {
	waiting, ended := make(chan struct{}), make(chan error, 1)
	lane := func(r *Request) bool {
		ctx := r.Context()
		close(waiting)
		<-ctx.Done()
		ended <- ctx.Err()
		r.Close = true
		return true
	}
	addr, _ := start(t, lane, nil)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "GET /lane/wait HTTP/1.1\r\nHost: x\r\n\r\n")
	<-waiting
	c.Close()
	if err := <-ended; !errors.Is(err, context.Canceled) {
		t.Errorf("context ended with %v, want context.Canceled", err)
	}
}

// A caller that sends its next request while the first waits is there:
// the context does not end, and the next request is served whole.
func TestPipelinedRequestWhileWaiting(t *testing.T) {
	waiting, release := make(chan struct{}), make(chan struct{})
	first := true
	lane := func(r *Request) bool {
		if first {
			first = false
			ctx := r.Context()
			ctx.Done() // starts watching the connection
			close(waiting)
			<-release
			if ctx.Err() != nil {
				laneReply(r, "cancelled")
				return true
			}
		}
		return echoLane(r)
	}
	addr, _ := start(t, lane, nil)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /lane/1 HTTP/1.1\r\nHost: x\r\n\r\n")
	<-waiting
	io.WriteString(c, "POST /lane/2 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok")
	// The watcher has taken at most the first byte of the second request;
	// give it the chance to (a read on the client side would deadlock).
	close(release)
	got := readResponses(t, bufio.NewReader(c), 2)
	if got[0] != "lane /lane/1 " || got[1] != "lane /lane/2 ok" {
		t.Errorf("got %q", got)
	}
}

// Shutdown closes idle connections, lets a request in flight finish, and
// returns once it has.
func TestShutdownDrains(t *testing.T) {
	inFlight, release := make(chan struct{}), make(chan struct{})
	lane := func(r *Request) bool {
		if string(r.Head.Target) == "/lane/slow" {
			close(inFlight)
			<-release
		}
		return echoLane(r)
	}
	addr, s := start(t, lane, nil)
	idle, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	io.WriteString(idle, "GET /lane/first HTTP/1.1\r\nHost: x\r\n\r\n")
	idleR := bufio.NewReader(idle)
	readResponses(t, idleR, 1)
	busy, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	io.WriteString(busy, "GET /lane/slow HTTP/1.1\r\nHost: x\r\n\r\n")
	<-inFlight
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shut <- s.Shutdown(ctx)
	}()
	if _, err := idleR.ReadByte(); err != io.EOF {
		t.Errorf("idle connection: %v, want it closed", err)
	}
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) with a request in flight", err)
	default:
	}
	close(release)
	if got := readResponses(t, bufio.NewReader(busy), 1); got[0] != "lane /lane/slow " {
		t.Errorf("in-flight request answered %q", got)
	}
	if err := <-shut; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if _, err := net.Dial("tcp", addr); err == nil {
		t.Error("still accepting after Shutdown")
	}
}

// A head that does not arrive in time closes the connection.
func TestSlowHeadIsCut(t *testing.T) {
	addr, _ := start(t, echoLane, func(s *Server) { s.ReadTimeout = 50 * time.Millisecond })
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /lane/x HTTP/1.1\r\nHost:")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("read: %v, want the server to close the connection", err)
	}
}

// Connection: close from the caller ends the connection after the answer.
func TestConnectionClose(t *testing.T) {
	addr, _ := start(t, echoLane, nil)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /lane/x HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	br := bufio.NewReader(c)
	readResponses(t, br, 1)
	if _, err := br.ReadByte(); err != io.EOF {
		t.Errorf("after the answer: %v, want the connection closed", err)
	}
}

// flakyListener fails its first Accept, as a listener out of file
// descriptors does.
type flakyListener struct {
	net.Listener
	failed bool
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if !l.failed {
		l.failed = true
		return nil, errors.New("accept: too many open files")
	}
	return l.Listener.Accept()
}

// A failing Accept does not stop the server: it tries again.
func TestAcceptErrorIsNotTheEnd(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := New(&flakyListener{Listener: ln}, echoLane, &http.Server{})
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET /lane/x HTTP/1.1\r\nHost: x\r\n\r\n")
	if got := readResponses(t, bufio.NewReader(c), 1); got[0] != "lane /lane/x " {
		t.Errorf("answered %q", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.Shutdown(ctx)
	if err := <-done; err != http.ErrServerClosed {
		t.Errorf("Serve returned %v, want http.ErrServerClosed", err)
	}
}
