package h1

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// msg joins lines into a head: each line ends in CRLF, then the blank line.
func msg(lines ...string) string { return strings.Join(lines, "\r\n") + "\r\n\r\n" }

// fieldsOf lists h's fields as "Name=value", in order.
func fieldsOf(h *Head) []string {
	var s []string
	for _, f := range h.Fields {
		s = append(s, string(f.Name)+"="+string(f.Value))
	}
	return s
}

func TestParseRequestAccepts(t *testing.T) {
	for _, c := range []struct {
		name, in       string
		method, target string
		cl             int64
		close          bool
		fields         []string
	}{
		{"get without body", msg("GET /a/b?c=d&e HTTP/1.1", "Host: x"),
			"GET", "/a/b?c=d&e", -1, false, []string{"Host=x"}},
		{"post with length", msg("POST /p HTTP/1.1", "Host: x", "Content-Length: 12"),
			"POST", "/p", 12, false, []string{"Host=x", "Content-Length=12"}},
		{"zero length", msg("PUT / HTTP/1.1", "Content-Length: 0"),
			"PUT", "/", 0, false, []string{"Content-Length=0"}},
		{"identical lengths", msg("POST / HTTP/1.1", "Content-Length: 5", "content-length:5"),
			"POST", "/", 5, false, []string{"Content-Length=5", "content-length=5"}},
		{"connection close", msg("GET / HTTP/1.1", "Connection: close"),
			"GET", "/", -1, true, []string{"Connection=close"}},
		{"connection keep-alive", msg("GET / HTTP/1.1", "Connection: keep-alive"),
			"GET", "/", -1, false, []string{"Connection=keep-alive"}},
		{"connection list", msg("GET / HTTP/1.1", "Connection: Keep-Alive, ,CLOSE"),
			"GET", "/", -1, true, []string{"Connection=Keep-Alive, ,CLOSE"}},
		{"values trimmed", msg("GET / HTTP/1.1", "X-A: \t a \t b\t ", "X-B:", "X-C:   "),
			"GET", "/", -1, false, []string{"X-A=a \t b", "X-B=", "X-C="}},
		{"names any case", msg("DELETE /x HTTP/1.1", "CONTENT-length: 3", "cOnNeCtIoN: ClOsE"),
			"DELETE", "/x", 3, true, []string{"CONTENT-length=3", "cOnNeCtIoN=ClOsE"}},
		{"token method and names", msg("M-SEARCH /* HTTP/1.1", "X_Odd!#$%&'*+.^`|~: v"),
			"M-SEARCH", "/*", -1, false, []string{"X_Odd!#$%&'*+.^`|~=v"}},
		{"obs-text value", msg("GET / HTTP/1.1", "X-A: caf\xc3\xa9"),
			"GET", "/", -1, false, []string{"X-A=caf\xc3\xa9"}},
	} {
		if !strings.Contains(strings.ToLower(c.in), "\r\nhost:") { // exactly one Host is required
			line, rest, _ := strings.Cut(c.in, "\r\n")
			c.in, c.fields = line+"\r\nHost: x\r\n"+rest, append([]string{"Host=x"}, c.fields...)
		}
		t.Run(c.name, func(t *testing.T) {
			// Stale state from an earlier parse must not leak into this one.
			h := Head{ContentLength: 99, Chunked: true, Close: true, Status: 7, Fields: []Field{{[]byte("Old"), []byte("x")}}}
			if err := ParseRequest([]byte(c.in), &h); err != nil {
				t.Fatalf("ParseRequest(%q): %v", c.in, err)
			}
			if string(h.Method) != c.method || string(h.Target) != c.target || h.ContentLength != c.cl ||
				h.Close != c.close || h.Chunked || h.Status != 0 {
				t.Errorf("got method %q target %q length %d close %v chunked %v status %d, want %q %q %d %v false 0",
					h.Method, h.Target, h.ContentLength, h.Close, h.Chunked, h.Status, c.method, c.target, c.cl, c.close)
			}
			if got := fieldsOf(&h); !slices.Equal(got, c.fields) {
				t.Errorf("fields %q, want %q", got, c.fields)
			}
		})
	}
}

func TestParseRequestRefuses(t *testing.T) {
	for _, c := range []struct{ name, in string }{
		{"empty head", "\r\n\r\n"},
		{"method only", msg("GET")},
		{"no version", msg("GET /")},
		{"no target", msg("GET HTTP/1.1")},
		{"empty target", msg("GET  HTTP/1.1")},
		{"leading space", msg(" GET / HTTP/1.1")},
		{"trailing space", msg("GET / HTTP/1.1 ")},
		{"tab separators", msg("GET\t/\tHTTP/1.1")},
		{"bad method", msg("G(T / HTTP/1.1")},
		{"HTTP/1.0", msg("GET / HTTP/1.0", "Host: x")},
		{"HTTP/2.0", msg("GET / HTTP/2.0")},
		{"lower-case version", msg("GET / http/1.1")},
		{"absolute form", msg("GET http://x/ HTTP/1.1", "Host: x")},
		{"authority form", msg("CONNECT x:443 HTTP/1.1", "Host: x:443")},
		{"asterisk form", msg("OPTIONS * HTTP/1.1", "Host: x")},
		{"space in target", msg("GET /a b HTTP/1.1", "Host: x")},
		{"CR in target", msg("GET /a\rb HTTP/1.1")},
		{"TAB in target", msg("GET /a\tb HTTP/1.1")},
		{"chunked", msg("POST / HTTP/1.1", "Transfer-Encoding: chunked")},
		{"chunked any case", msg("POST / HTTP/1.1", "transfer-encoding: CHUNKED")},
		{"chunked and length", msg("POST / HTTP/1.1", "Content-Length: 3", "Transfer-Encoding: chunked")},
		{"chunked twice", msg("POST / HTTP/1.1", "Transfer-Encoding: chunked", "Transfer-Encoding: chunked")},
		{"other coding", msg("POST / HTTP/1.1", "Transfer-Encoding: gzip")},
		{"coding list", msg("POST / HTTP/1.1", "Transfer-Encoding: gzip, chunked")},
		{"empty coding", msg("POST / HTTP/1.1", "Transfer-Encoding:")},
		{"upgrade", msg("GET / HTTP/1.1", "Connection: keep-alive", "Upgrade: websocket")},
		{"expect", msg("POST / HTTP/1.1", "Content-Length: 3", "Expect: 100-continue")},
		{"obs-fold space", msg("GET / HTTP/1.1", "X-A: a", " b")},
		{"obs-fold tab", msg("GET / HTTP/1.1", "X-A: a", "\tb")},
		{"space before colon", msg("GET / HTTP/1.1", "Host : x")},
		{"space in name", msg("GET / HTTP/1.1", "X A: x")},
		{"separator in name", msg("GET / HTTP/1.1", "X(A): x")},
		{"empty name", msg("GET / HTTP/1.1", ": x")},
		{"no colon", msg("GET / HTTP/1.1", "X-A")},
		{"differing lengths", msg("POST / HTTP/1.1", "Content-Length: 5", "Content-Length: 6")},
		{"plus length", msg("POST / HTTP/1.1", "Content-Length: +5")},
		{"negative length", msg("POST / HTTP/1.1", "Content-Length: -1")},
		{"word length", msg("POST / HTTP/1.1", "Content-Length: abc")},
		{"empty length", msg("POST / HTTP/1.1", "Content-Length:")},
		{"length list", msg("POST / HTTP/1.1", "Content-Length: 5, 5")},
		{"length overflow", msg("POST / HTTP/1.1", "Content-Length: 9223372036854775808")},
		{"control in value", msg("GET / HTTP/1.1", "X-A: a\x01b")},
		{"NUL in value", msg("GET / HTTP/1.1", "X-A: a\x00b")},
		{"DEL in value", msg("GET / HTTP/1.1", "X-A: a\x7fb")},
		{"bare CR in value", msg("GET / HTTP/1.1", "X-A: a\rb")},
		{"connection names a field", msg("GET / HTTP/1.1", "Connection: close, X-Secret", "X-Secret: 1")},
		{"connection upgrade", msg("GET / HTTP/1.1", "Connection: upgrade")},
		{"blank line before the end", "GET / HTTP/1.1\r\nX-A: a\n\nContent-Length: 5\r\n\r\n"},
		{"no host", msg("GET / HTTP/1.1", "X-A: 1")},
		{"two hosts", msg("GET / HTTP/1.1", "Host: x", "Host: y")},
		{"host with a space", msg("GET / HTTP/1.1", "Host: a b")},
		{"lengths written differently", msg("POST / HTTP/1.1", "Content-Length: 5", "Content-Length: 05")},
		{"bad percent escape", msg("GET /a%zz HTTP/1.1")},
		{"fragment", msg("GET /a#b HTTP/1.1")},
	} {
		// Each head is refused for its own fault, not for a missing Host.
		if !strings.Contains(strings.ToLower(c.in), "\nhost:") && !strings.Contains(strings.ToLower(c.name), "host") {
			if line, rest, ok := strings.Cut(c.in, "\r\n"); ok {
				c.in = line + "\r\nHost: x\r\n" + rest
			}
		}
		t.Run(c.name, func(t *testing.T) {
			var h Head
			err := ParseRequest([]byte(c.in), &h)
			if err == nil {
				t.Errorf("ParseRequest(%q) accepted it (method %q target %q fields %q), want an error",
					c.in, h.Method, h.Target, fieldsOf(&h))
			}
		})
	}
}

func TestParseResponse(t *testing.T) {
	for _, c := range []struct {
		name, in     string
		status       int
		cl           int64
		chunked, cls bool
		err          bool
		nominated    []string // fields the Connection field names
		notNominated []string
	}{
		{name: "ok with length", in: msg("HTTP/1.1 200 OK", "Content-Length: 5"), status: 200, cl: 5},
		{name: "no reason", in: msg("HTTP/1.1 404"), status: 404, cl: -1},
		{name: "empty reason", in: msg("HTTP/1.1 204 "), status: 204, cl: -1},
		{name: "long reason", in: msg("HTTP/1.1 503 Service Unavailable"), status: 503, cl: -1},
		{name: "interim", in: msg("HTTP/1.1 103 Early Hints", "Link: </a>"), status: 103, cl: -1},
		{name: "odd code", in: msg("HTTP/1.1 999 X"), status: 999, cl: -1},
		{name: "connection close", in: msg("HTTP/1.1 200 OK", "connection: Close"), status: 200, cl: -1, cls: true},
		{name: "HTTP/1.0 closes", in: msg("HTTP/1.0 200 OK", "Content-Length: 1"), status: 200, cl: 1, cls: true},
		{name: "HTTP/1.0 keep-alive", in: msg("HTTP/1.0 200 OK", "Connection: Keep-Alive"), status: 200, cl: -1},
		{name: "chunked", in: msg("HTTP/1.1 200 OK", "Transfer-Encoding: Chunked"), status: 200, cl: -1, chunked: true},
		{name: "chunked wins over length", in: msg("HTTP/1.1 200 OK", "Content-Length: 7", "Transfer-Encoding: chunked"),
			status: 200, cl: -1, chunked: true},
		{name: "connection names fields", in: msg("HTTP/1.1 200 OK", "Connection: X-Hop , keep-alive", "connection: x-other", "X-Hop: 1"),
			status: 200, cl: -1, nominated: []string{"X-Hop", "x-hop", "X-OTHER", "keep-alive"}, notNominated: []string{"X-Ho", "X-Hop2", "Connection"}},
		{name: "unknown coding", in: msg("HTTP/1.1 200 OK", "Transfer-Encoding: gzip"), err: true},
		{name: "coding list", in: msg("HTTP/1.1 200 OK", "Transfer-Encoding: gzip, chunked"), err: true},
		{name: "chunked twice", in: msg("HTTP/1.1 200 OK", "Transfer-Encoding: chunked", "Transfer-Encoding: chunked"), err: true},
		{name: "chunked then gzip", in: msg("HTTP/1.1 200 OK", "Transfer-Encoding: chunked", "Transfer-Encoding: gzip"), err: true},
		{name: "gzip then chunked", in: msg("HTTP/1.1 200 OK", "Transfer-Encoding: gzip", "Transfer-Encoding: chunked"), err: true},
		{name: "differing lengths", in: msg("HTTP/1.1 200 OK", "Content-Length: 1", "Content-Length: 2"), err: true},
		{name: "bad field", in: msg("HTTP/1.1 200 OK", "X-A: a", " folded"), err: true},
		{name: "two-digit code", in: msg("HTTP/1.1 20 OK"), err: true},
		{name: "four-digit code", in: msg("HTTP/1.1 2000 OK"), err: true},
		{name: "code below 100", in: msg("HTTP/1.1 099 X"), err: true},
		{name: "signed code", in: msg("HTTP/1.1 +20 X"), err: true},
		{name: "word code", in: msg("HTTP/1.1 abc"), err: true},
		{name: "no code", in: msg("HTTP/1.1"), err: true},
		{name: "two spaces", in: msg("HTTP/1.1  200 OK"), err: true},
		{name: "no space after code", in: msg("HTTP/1.1 200OK"), err: true},
		{name: "HTTP/2", in: msg("HTTP/2 200 OK"), err: true},
		{name: "lower-case version", in: msg("http/1.1 200 OK"), err: true},
		{name: "not a status line", in: msg("GET / HTTP/1.1"), err: true},
		{name: "bad minor version", in: msg("HTTP/1.x 200 OK"), err: true},
		{name: "HTTP/1.0 with chunked", in: msg("HTTP/1.0 200 OK", "Transfer-Encoding: chunked"), err: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := Head{Method: []byte("GET"), Target: []byte("/"), Close: true, Chunked: true, ContentLength: 99}
			err := ParseResponse([]byte(c.in), &h)
			if c.err {
				if err == nil {
					t.Errorf("ParseResponse(%q) accepted it (status %d), want an error", c.in, h.Status)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseResponse(%q): %v", c.in, err)
			}
			if h.Status != c.status || h.ContentLength != c.cl || h.Chunked != c.chunked || h.Close != c.cls ||
				h.Method != nil || h.Target != nil {
				t.Errorf("got status %d length %d chunked %v close %v method %q target %q, want %d %d %v %v none",
					h.Status, h.ContentLength, h.Chunked, h.Close, h.Method, h.Target, c.status, c.cl, c.chunked, c.cls)
			}
			for _, n := range c.nominated {
				if !h.Nominated([]byte(n)) {
					t.Errorf("Nominated(%q) = false, want true", n)
				}
			}
			for _, n := range c.notNominated {
				if h.Nominated([]byte(n)) {
					t.Errorf("Nominated(%q) = true, want false", n)
				}
			}
		})
	}
}

func TestGetFramingEqualFold(t *testing.T) {
	var h Head
	if err := ParseResponse([]byte(msg("HTTP/1.1 200 OK", "X-A: 1", "x-a: 2", "X-AB: 3", "Empty:")), &h); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"X-A": "1", "x-A": "1", "X-AB": "3", "x-ab": "3", "X-": "<nil>", "X-ABC": "<nil>", "Empty": ""} {
		got := "<nil>"
		if v := h.Get(name); v != nil {
			got = string(v)
		}
		if got != want {
			t.Errorf("Get(%q) = %s, want %s", name, got, want)
		}
	}
	for _, n := range []string{"Connection", "proxy-connection", "KEEP-ALIVE", "Proxy-Authenticate", "Proxy-Authorization",
		"TE", "trailer", "Transfer-Encoding", "upgrade", "content-length"} {
		if !Framing([]byte(n)) {
			t.Errorf("Framing(%q) = false, want true", n)
		}
	}
	for _, n := range []string{"Content-Type", "Host", "Authorization", "Tee", "Connections", ""} {
		if Framing([]byte(n)) {
			t.Errorf("Framing(%q) = true, want false", n)
		}
	}
	for _, c := range []struct {
		a, b string
		eq   bool
	}{
		{"Content-Length", "content-LENGTH", true}, {"", "", true}, {"a", "ab", false},
		{"X-A", "X-B", false}, {"@", "`", false}, {"[", "{", false}, {"^", "~", false}, {"1", "\x11", false},
	} {
		if got := EqualFold([]byte(c.a), c.b); got != c.eq {
			t.Errorf("EqualFold(%q, %q) = %v, want %v", c.a, c.b, got, c.eq)
		}
	}
}

func TestPeekHeadAssemblesAHeadFromSeveralWrites(t *testing.T) {
	parts := []string{"GET /a HT", "TP/1.1\r\nHost: x\r", "\n\r", "\nbody", " and more"}
	pr, pw := io.Pipe()
	go func() {
		for _, p := range parts {
			pw.Write([]byte(p)) // each write is read on its own
		}
		pw.Close()
	}()
	br := bufio.NewReader(pr)
	head, err := PeekHead(br)
	if want := "GET /a HTTP/1.1\r\nHost: x\r\n\r\n"; err != nil || string(head) != want {
		t.Fatalf("PeekHead = %q, %v; want %q", head, err, want)
	}
	if all, err := io.ReadAll(br); err != nil || string(all) != strings.Join(parts, "") {
		t.Errorf("after PeekHead the reader yields %q, %v; want all that was written", all, err)
	}
}

func TestPeekHead(t *testing.T) {
	long := msg("GET / HTTP/1.1", "X-A: "+strings.Repeat("a", 100))
	for _, c := range []struct {
		name, in string
		size     int
		want     string
		err      error
	}{
		{"whole head then body", "GET / HTTP/1.1\r\n\r\nbody", 4096, "GET / HTTP/1.1\r\n\r\n", nil},
		{"head fills the buffer", "GET / HTTP/1.1\r\n\r\nbody", 18, "GET / HTTP/1.1\r\n\r\n", nil},
		{"head one byte too large", "GET / HTTP/1.1\r\n\r\n", 17, "", bufio.ErrBufferFull},
		{"head much too large", long, 64, "", bufio.ErrBufferFull},
		{"large buffer", long, 4096, long, nil},
		{"bare LF", "GET / HTTP/1.1\nHost: x\n\nbody", 4096, "", ErrLoneLF},
		{"bare LF blank line", "GET / HTTP/1.1\r\nHost: x\r\n\n", 4096, "", ErrLoneLF},
		{"no blank line yet", "GET / HTTP/1.1\r\nHost: x\r\n", 4096, "", io.EOF},
		{"nothing", "", 4096, "", io.EOF},
	} {
		t.Run(c.name, func(t *testing.T) {
			br := bufio.NewReaderSize(strings.NewReader(c.in), c.size)
			head, err := PeekHead(br)
			if !errors.Is(err, c.err) || string(head) != c.want {
				t.Fatalf("PeekHead = %q, %v; want %q, %v", head, err, c.want, c.err)
			}
			if br.Buffered() != min(len(c.in), c.size) {
				t.Errorf("PeekHead consumed bytes: %d buffered, want %d", br.Buffered(), min(len(c.in), c.size))
			}
		})
	}
}

// readResponses reads the responses in stream one after another as the
// fast lane does, and describes each as `status "body" delimited`.
func readResponses(t *testing.T, stream, method string) []string {
	t.Helper()
	br := bufio.NewReader(strings.NewReader(stream))
	var got []string
	var h Head
	var body Body
	for {
		head, err := PeekHead(br)
		if err == io.EOF {
			return got
		}
		if err != nil {
			t.Fatalf("after %q: PeekHead: %v", got, err)
		}
		if err := ParseResponse(head, &h); err != nil {
			t.Fatalf("after %q: ParseResponse(%q): %v", got, head, err)
		}
		br.Discard(len(head))
		body.Reset(br, &h, []byte(method))
		b, err := io.ReadAll(&body)
		if err != nil {
			t.Fatalf("after %q: reading the body of %q: %v", got, head, err)
		}
		got = append(got, fmt.Sprintf("%d %q %v", h.Status, b, body.Delimited()))
	}
}

func TestBody(t *testing.T) {
	next := msg("HTTP/1.1 200 OK", "Content-Length: 4") + "next"
	for _, c := range []struct {
		name, method, stream string
		want                 []string
	}{
		{"chunked with a trailer", "GET",
			msg("HTTP/1.1 200 OK", "Transfer-Encoding: chunked") + "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-T: 1\r\nY-T: 2\r\n\r\n" + next,
			[]string{`200 "hello world" true`, `200 "next" true`}},
		{"chunked without a trailer", "GET",
			msg("HTTP/1.1 200 OK", "Transfer-Encoding: chunked") + "3\r\nabc\r\n0\r\n\r\n" + next,
			[]string{`200 "abc" true`, `200 "next" true`}},
		{"empty chunked", "POST",
			msg("HTTP/1.1 200 OK", "Transfer-Encoding: chunked", "Content-Length: 3") + "0\r\n\r\n" + next,
			[]string{`200 "" true`, `200 "next" true`}},
		{"length", "GET",
			msg("HTTP/1.1 200 OK", "Content-Length: 3") + "abc" + msg("HTTP/1.1 404 Not Found", "Content-Length: 0") + next,
			[]string{`200 "abc" true`, `404 "" true`, `200 "next" true`}},
		{"HEAD", "HEAD",
			msg("HTTP/1.1 200 OK", "Content-Length: 5") + msg("HTTP/1.1 200 OK", "Transfer-Encoding: chunked") + msg("HTTP/1.1 200 OK"),
			[]string{`200 "" true`, `200 "" true`, `200 "" true`}},
		{"204 and 304", "GET",
			msg("HTTP/1.1 204 No Content", "Content-Length: 5") + msg("HTTP/1.1 304 Not Modified", "Transfer-Encoding: chunked") + next,
			[]string{`204 "" true`, `304 "" true`, `200 "next" true`}},
		{"interim", "GET",
			msg("HTTP/1.1 103 Early Hints", "Content-Length: 5") + next,
			[]string{`103 "" true`, `200 "next" true`}},
		{"until close", "GET",
			msg("HTTP/1.1 200 OK") + "all\r\n\r\nHTTP/1.1 200 OK\r\n\r\n the rest",
			[]string{`200 "all\r\n\r\nHTTP/1.1 200 OK\r\n\r\n the rest" false`}},
		{"HTTP/1.0 until close", "GET",
			msg("HTTP/1.0 200 OK", "Connection: keep-alive") + "rest",
			[]string{`200 "rest" false`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := readResponses(t, c.stream, c.method); !slices.Equal(got, c.want) {
				t.Errorf("got\n%q\nwant\n%q", got, c.want)
			}
		})
	}
	t.Run("zero value reads nothing", func(t *testing.T) {
		var b Body
		if n, err := b.Read(make([]byte, 8)); n != 0 || err != io.EOF {
			t.Errorf("Read = %d, %v; want 0, EOF", n, err)
		}
	})
}

func TestBodyErrors(t *testing.T) {
	for _, c := range []struct {
		name, head, rest string
	}{
		{"truncated chunk", msg("HTTP/1.1 200 OK", "Transfer-Encoding: chunked"), "5\r\nab"},
		{"bad chunk size", msg("HTTP/1.1 200 OK", "Transfer-Encoding: chunked"), "zz\r\nab\r\n0\r\n\r\n"},
		{"truncated trailer", msg("HTTP/1.1 200 OK", "Transfer-Encoding: chunked"), "0\r\nX-T: 1\r\n"},
		{"huge trailer", msg("HTTP/1.1 200 OK", "Transfer-Encoding: chunked"), "0\r\n" + strings.Repeat("X-T: 1\r\n", 10<<10) + "\r\n"},
		{"truncated length", msg("HTTP/1.1 200 OK", "Content-Length: 10"), "abc"},
	} {
		t.Run(c.name, func(t *testing.T) {
			br := bufio.NewReader(strings.NewReader(c.head + c.rest))
			var h Head
			if err := ParseResponse([]byte(c.head), &h); err != nil {
				t.Fatal(err)
			}
			br.Discard(len(c.head))
			var b Body
			b.Reset(br, &h, []byte("GET"))
			_, err := io.ReadAll(&b)
			if err == nil {
				t.Error("the body read to its end without an error")
			}
		})
	}
}

// TestChunkedReadAfterEOF: reading a finished body again must not eat the
// next message.
func TestChunkedReadAfterEOF(t *testing.T) {
	next := msg("HTTP/1.1 200 OK", "Content-Length: 0")
	br := bufio.NewReader(strings.NewReader("1\r\na\r\n0\r\n\r\n" + next))
	var b Body
	b.Reset(br, &Head{Status: 200, Chunked: true, ContentLength: -1}, []byte("GET"))
	if got, err := io.ReadAll(&b); err != nil || string(got) != "a" {
		t.Fatalf("body %q, %v; want \"a\"", got, err)
	}
	n, err := b.Read(make([]byte, 8))
	if rest, _ := io.ReadAll(br); n != 0 || err != io.EOF || string(rest) != next {
		t.Errorf("Read after EOF = %d, %v, then the reader yields %q; want 0, EOF, %q", n, err, rest, next)
	}
}

func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		msg("GET /a?b=c HTTP/1.1", "Host: example.com", "Accept: */*"),
		msg("POST /proxy/p/v1/x HTTP/1.1", "Host: x", "Content-Length: 12", "Content-Type: application/json", "Connection: close"),
		msg("PUT / HTTP/1.1", "content-length: 5", "Content-Length:5 ", "connection: keep-alive, close"),
		msg("DELETE /x%20y HTTP/1.1", "X-A:  a\tb ", "X-B:", "Cookie: a=b; c=d"),
		msg("GET / HTTP/1.1", "Transfer-Encoding: chunked"),
		msg("GET / HTTP/1.1", "X-A: a", " folded"),
		msg("GET http://x/ HTTP/1.1"),
		"GET / HTTP/1.1\nHost: x\r\n\r\n",
		msg("POST / HTTP/1.1", "Content-Length: 5", "Content-Length: 05"), // net/http refuses it
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var h Head
		ParseResponse(b, &h) // must not panic either
		if err := ParseRequest(b, &h); err != nil || HeadLen(b) != len(b) {
			return
		}
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("%q: "+format, append([]any{b}, args...)...)
		}
		br := bufio.NewReader(bytes.NewReader(b))
		req, err := http.ReadRequest(br)
		if err != nil {
			fail("ParseRequest accepts it, net/http refuses it: %v", err)
		}
		if rest, _ := io.ReadAll(br); len(rest) > 0 {
			fail("net/http's head ends %d bytes before ours", len(rest))
		}
		cl := max(h.ContentLength, 0) // net/http gives 0 to a request without a length
		if req.Method != string(h.Method) || req.RequestURI != string(h.Target) || req.ContentLength != cl ||
			req.Close != h.Close || (h.ContentLength < 0) != (req.Header["Content-Length"] == nil) {
			fail("net/http reads method %q target %q length %d close %v; we read %q %q %d %v",
				req.Method, req.RequestURI, req.ContentLength, req.Close, h.Method, h.Target, h.ContentLength, h.Close)
		}
		for _, fl := range h.Fields {
			name, value := http.CanonicalHeaderKey(string(fl.Name)), string(fl.Value)
			if name == "Host" && req.Host != value || name != "Host" && !slices.Contains(req.Header[name], value) {
				fail("we read %s: %q, net/http has %q (host %q)", fl.Name, value, req.Header[name], req.Host)
			}
		}
	})
}

// ReadHead takes what PeekHead cannot: a head longer than the buffer, lines
// longer than it, bare LF line ends; it stops at MaxHeadBytes; what follows
// the head stays to be read.
func TestReadHead(t *testing.T) {
	long := "X-Long: " + strings.Repeat("l", 100) + "\r\n"
	for _, c := range []struct{ name, head string }{
		{"longer than the buffer", "HTTP/1.1 200 OK\r\n" + long + long + "Content-Length: 4\r\n\r\n"},
		{"bare LF", "HTTP/1.1 200 OK\nContent-Length: 4\n\n"},
	} {
		pc := &conn{capped: capReader{r: strings.NewReader(c.head + "body"), left: uncapped}}
		pc.br = bufio.NewReaderSize(&pc.capped, 32)
		cn := Conn{pc: pc, R: pc.br}
		if _, err := PeekHead(cn.R); err == nil {
			t.Fatalf("%s: PeekHead took it; the case does not test ReadHead", c.name)
		}
		head, err := cn.ReadHead()
		if err != nil || string(head) != c.head {
			t.Errorf("%s: ReadHead = %q, %v", c.name, head, err)
		}
		var h Head
		if err := ParseResponse(head, &h); err != nil || h.ContentLength != 4 {
			t.Errorf("%s: parsed %+v, %v", c.name, h, err)
		}
		if rest, _ := io.ReadAll(cn.R); string(rest) != "body" {
			t.Errorf("%s: after the head: %q", c.name, rest)
		}
		if pc.capped.left != uncapped {
			t.Errorf("%s: the cap outlived the head", c.name)
		}
	}
	huge := "HTTP/1.1 200 OK\r\n" + strings.Repeat(long, MaxHeadBytes/len(long)+1) + "\r\n"
	pc := &conn{capped: capReader{r: strings.NewReader(huge), left: uncapped}}
	pc.br = bufio.NewReaderSize(&pc.capped, 16<<10)
	if _, err := (Conn{pc: pc, R: pc.br}).ReadHead(); !errors.Is(err, ErrHeadTooLarge) {
		t.Errorf("a head over MaxHeadBytes: %v, want ErrHeadTooLarge", err)
	}
}

// A vendor answer the lane's parser accepts is framed as net/http frames
// it: the same status, length or chunking, and connection close, and the
// head ends where net/http's ends.
func FuzzParseResponse(f *testing.F) {
	for _, s := range []string{
		msg("HTTP/1.1 200 OK", "Content-Type: application/json", "Content-Length: 12"),
		msg("HTTP/1.1 204 No Content", "X-A: a"),
		msg("HTTP/1.1 200 OK", "Transfer-Encoding: chunked"),
		msg("HTTP/1.1 200 OK", "Transfer-Encoding: chunked", "Content-Length: 5"),
		msg("HTTP/1.0 200 OK", "Connection: keep-alive", "Content-Length: 2"),
		msg("HTTP/1.0 200 OK", "Transfer-Encoding: chunked"),
		msg("HTTP/1.1 304 Not Modified", "Content-Length: 7"),
		msg("HTTP/1.1 200 OK", "Content-Length: 5", "Content-Length: 5", "Connection: close, x"),
		msg("HTTP/1.1 999"),
		"HTTP/1.1 200 OK\nContent-Length: 3\n\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var h Head
		if err := ParseResponse(b, &h); err != nil || HeadLen(b) != len(b) {
			return
		}
		fail := func(format string, args ...any) {
			t.Helper()
			t.Fatalf("%q: "+format, append([]any{b}, args...)...)
		}
		br := bufio.NewReader(bytes.NewReader(b))
		resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodGet})
		if err != nil {
			fail("ParseResponse accepts it, net/http refuses it: %v", err)
		}
		if br.Buffered() > 0 {
			fail("net/http's head ends %d bytes before ours", br.Buffered())
		}
		nhChunked := slices.Equal(resp.TransferEncoding, []string{"chunked"})
		bodyless := h.Status/100 == 1 || h.Status == http.StatusNoContent || h.Status == http.StatusNotModified
		// A body that runs until the close ends the connection too (Body.Delimited).
		closes := h.Close || !bodyless && !h.Chunked && h.ContentLength < 0
		if resp.StatusCode != h.Status || resp.Close != closes {
			fail("net/http reads status %d close %v; we read %d %v", resp.StatusCode, resp.Close, h.Status, closes)
		}
		switch {
		case bodyless:
		case h.Chunked != nhChunked:
			fail("chunked: net/http %v, we %v", nhChunked, h.Chunked)
		case !h.Chunked && h.ContentLength != resp.ContentLength:
			fail("length: net/http %d, we %d", resp.ContentLength, h.ContentLength)
		}
	})
}
