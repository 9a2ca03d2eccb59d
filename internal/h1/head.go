package h1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
)

// Field is one header line of a message head, sliced from the buffer the
// head was parsed from.
type Field struct {
	Name, Value []byte
}

// Head is a parsed HTTP/1.1 message head. Its slices point into the buffer
// it was parsed from and are valid only as long as that buffer is.
type Head struct {
	Method, Target []byte // requests
	Status         int    // responses
	Fields         []Field
	ContentLength  int64 // -1 when the head gives none
	Chunked        bool  // Transfer-Encoding: chunked
	Close          bool  // Connection: close
}

// Get returns the first value of the named field (case-insensitive).
func (h *Head) Get(name string) []byte {
	for _, f := range h.Fields {
		if len(f.Name) == len(name) && equalFold(f.Name, name) {
			return f.Value
		}
	}
	return nil
}

// Nominated reports whether the head's Connection field names the field,
// which is then for this connection only (RFC 9110 §7.6.1).
func (h *Head) Nominated(name []byte) bool {
	for _, f := range h.Fields {
		if equalFold(f.Name, "Connection") {
			for _, tok := range bytes.Split(f.Value, []byte(",")) {
				if tok = trimSpace(tok); len(tok) == len(name) && equalFold(tok, name) {
					return true
				}
			}
		}
	}
	return false
}

// HeadLen returns the length of the head at the start of b up to and
// including its blank line, or -1 when b holds no whole head yet.
func HeadLen(b []byte) int {
	if i := bytes.Index(b, []byte("\r\n\r\n")); i >= 0 {
		return i + 4
	}
	return -1
}

// ErrLoneLF is PeekHead's answer to a head whose lines end in a bare LF,
// which only a full HTTP implementation should accept.
var ErrLoneLF = errors.New("h1: message head with bare LF line ends")

// PeekHead waits until br holds a whole message head and returns it,
// without consuming it. A head larger than br's buffer is
// bufio.ErrBufferFull.
func PeekHead(br *bufio.Reader) ([]byte, error) {
	for n := 1; ; {
		if _, err := br.Peek(n); err != nil {
			return nil, err
		}
		b, _ := br.Peek(br.Buffered())
		if l := HeadLen(b); l >= 0 {
			return b[:l], nil
		}
		if bytes.Contains(b, []byte("\n\n")) {
			return nil, ErrLoneLF
		}
		n = len(b) + 1
	}
}

// errUnsupported marks a head that is valid HTTP but that only a full
// HTTP implementation should handle.
var errUnsupported = errors.New("h1: message head needs the full HTTP implementation")

// ParseRequest parses a request head (b is exactly the head, as HeadLen
// measured it) into h, reusing h's field slice. It accepts only what a
// plain proxied call needs: HTTP/1.1, an origin-form target, a
// Content-Length or no body. Anything else (chunked or other transfer
// codings, Upgrade, Expect, folded or malformed lines, HTTP/1.0) is an
// error, and the caller leaves the request to net/http.
func ParseRequest(b []byte, h *Head) error {
	line, rest, bare := cutLine(b)
	if bare {
		return errUnsupported
	}
	sp1 := bytes.IndexByte(line, ' ')
	sp2 := bytes.LastIndexByte(line, ' ')
	if sp1 <= 0 || sp2 <= sp1+1 || !bytes.Equal(line[sp2+1:], []byte("HTTP/1.1")) {
		return errUnsupported
	}
	h.Method, h.Target, h.Status = line[:sp1], line[sp1+1:sp2], 0
	if !isToken(h.Method) || h.Target[0] != '/' || !validTarget(h.Target) {
		return errUnsupported
	}
	if err := parseFields(rest, h, true); err != nil {
		return err
	}
	if h.Chunked || h.Get("Transfer-Encoding") != nil || h.Get("Upgrade") != nil || h.Get("Expect") != nil {
		return errUnsupported
	}
	return nil
}

// ParseResponse parses a response head (b is exactly the head) into h.
func ParseResponse(b []byte, h *Head) error {
	line, rest, _ := cutLine(b)
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || (line[7] != '0' && line[7] != '1') || line[8] != ' ' {
		return errors.New("h1: malformed status line")
	}
	code, err := strconv.Atoi(string(line[9:12]))
	if err != nil || code < 100 || code > 999 || (len(line) > 12 && line[12] != ' ') {
		return errors.New("h1: malformed status line")
	}
	h.Method, h.Target, h.Status = nil, nil, code
	if err := parseFields(rest, h, false); err != nil {
		return err
	}
	if line[7] == '0' && !bytes.EqualFold(h.Get("Connection"), []byte("keep-alive")) {
		h.Close = true // HTTP/1.0 closes unless told otherwise
	}
	if te := h.Get("Transfer-Encoding"); te != nil && !h.Chunked {
		return errors.New("h1: unsupported transfer coding " + strconv.Quote(string(te)))
	}
	if h.Chunked && line[7] == '0' {
		// RFC 9112 §6.1: HTTP/1.0 with a transfer coding is faulty framing
		// (net/http would ignore the coding and read until the close).
		return errors.New("h1: an HTTP/1.0 answer with a transfer coding")
	}
	if h.Chunked {
		h.ContentLength = -1 // chunked framing wins over a length (RFC 9112 §6.3)
	}
	return nil
}

// parseFields reads the header lines of b (each ending in CRLF, then the
// blank line). strict refuses a Connection field that names other fields.
func parseFields(b []byte, h *Head, strict bool) error {
	h.Fields, h.ContentLength, h.Chunked, h.Close = h.Fields[:0], -1, false, false
	var length []byte // the first Content-Length as written
	codings, hosts := 0, 0
	for {
		line, rest, bare := cutLine(b)
		b = rest
		if bare && strict {
			return errUnsupported // a bare LF ends lines for some parsers and not others
		}
		if len(line) == 0 {
			if len(b) != 0 {
				return errors.New("h1: the head ends before its end") // a blank line ends it early
			}
			if codings > 1 || (codings == 1 && !h.Chunked) {
				h.Chunked = false // a coding other than chunked alone: the caller refuses it
			}
			if strict && hosts != 1 {
				return errUnsupported // RFC 9112 §3.2: exactly one Host
			}
			return nil
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || !isToken(line[:colon]) {
			return errUnsupported // also obs-fold: a line starting with a space
		}
		f := Field{Name: line[:colon], Value: trimSpace(line[colon+1:])}
		if !validValue(f.Value) {
			return errUnsupported
		}
		switch {
		case equalFold(f.Name, "Content-Length"):
			n, err := strconv.ParseInt(string(f.Value), 10, 64)
			if err != nil || n < 0 || f.Value[0] == '+' || (length != nil && !bytes.Equal(length, f.Value)) {
				return errors.New("h1: invalid Content-Length")
			}
			h.ContentLength, length = n, f.Value
		case equalFold(f.Name, "Transfer-Encoding"):
			// Kept among the fields, so that a caller sees any coding; only
			// "chunked" alone frames a body this package reads.
			codings++
			h.Chunked = codings == 1 && equalFold(f.Value, "chunked")
			if h.Chunked {
				continue
			}
		case equalFold(f.Name, "Host"):
			if hosts++; strict && !validHost(f.Value) {
				return errUnsupported
			}
		case equalFold(f.Name, "Connection"):
			for _, tok := range bytes.Split(f.Value, []byte(",")) {
				tok = trimSpace(tok)
				switch {
				case equalFold(tok, "close"):
					h.Close = true
				case equalFold(tok, "keep-alive"), len(tok) == 0, !strict:
				default:
					return errUnsupported // names other hop-by-hop headers
				}
			}
		}
		h.Fields = append(h.Fields, f)
	}
}

// cutLine cuts b after its first line end; bare reports an LF without its
// CR.
func cutLine(b []byte) (line, rest []byte, bare bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return b, nil, false
	}
	if i > 0 && b[i-1] == '\r' {
		return b[:i-1], b[i+1:], false
	}
	return b[:i], b[i+1:], true
}

// trimSpace trims spaces and tabs, the only whitespace around a value.
func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// Framing reports whether a field belongs to one connection or frames the
// message on it (RFC 9110 §7.6.1, RFC 9112 §6): a proxy drops these, as
// net/http/httputil.ReverseProxy does, and frames what it sends itself.
func Framing(name []byte) bool {
	for _, h := range hopHeaders {
		if len(name) == len(h) && equalFold(name, h) {
			return true
		}
	}
	return false
}

var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "Content-Length"}

// EqualFold reports whether a field name equals s, ignoring ASCII case.
func EqualFold(name []byte, s string) bool { return equalFold(name, s) }

func equalFold[T []byte | string](a []byte, b T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range len(a) {
		x, y := a[i], b[i]
		if x|0x20 != y|0x20 || (x|0x20 < 'a' || x|0x20 > 'z') && x != y {
			return false
		}
	}
	return true
}

// tokenChars are the bytes allowed in a token (RFC 9110 §5.6.2).
var tokenChars = func() (t [256]bool) {
	for c := '!'; c <= '~'; c++ {
		t[c] = !strings.ContainsRune(`"(),/:;<=>?@[\]{}`, c)
	}
	return t
}()

func isToken(b []byte) bool {
	for _, c := range b {
		if !tokenChars[c] {
			return false
		}
	}
	return len(b) > 0
}

// validTarget accepts an origin-form target of visible ASCII whose
// percent signs each start an escape, as net/http's parser does.
func validTarget(b []byte) bool {
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c <= ' ' || c >= 0x7f || c == '#':
			return false
		case c == '%':
			if i+2 >= len(b) || !isHex(b[i+1]) || !isHex(b[i+2]) {
				return false
			}
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// validHost accepts the characters a Host value may hold (a name or an IP
// literal and a port).
func validHost(b []byte) bool {
	for _, c := range b {
		if !(tokenChars[c] || c == '[' || c == ']' || c == ':') {
			return false
		}
	}
	return true
}

func validValue(b []byte) bool {
	for _, c := range b {
		if (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// Body reads a response's body as its head frames it. Its zero value
// reads nothing; Reset prepares it for one response. It is a value, kept in
// the caller's own structure, so that reading a body allocates nothing.
type Body struct {
	kind      int // 0: none, 1: length, 2: chunked, 3: until close
	length    io.LimitedReader
	chunked   chunked
	br        *bufio.Reader
	delimited bool
}

// Reset frames the body of a response with head h to a request with the
// given method, read from br.
func (b *Body) Reset(br *bufio.Reader, h *Head, method []byte) {
	b.br, b.delimited = br, true
	switch {
	case string(method) == http.MethodHead || h.Status/100 == 1 || h.Status == http.StatusNoContent || h.Status == http.StatusNotModified:
		b.kind = 0
	case h.Chunked:
		b.kind, b.chunked = 2, chunked{r: httputil.NewChunkedReader(br), br: br}
	case h.ContentLength >= 0:
		b.kind, b.length = 1, io.LimitedReader{R: br, N: h.ContentLength}
	default:
		b.kind, b.delimited = 3, false
	}
}

// Delimited is false for a body that ends only when the server closes the
// connection, which then cannot carry another exchange.
func (b *Body) Delimited() bool { return b.delimited }

func (b *Body) Read(p []byte) (int, error) {
	switch b.kind {
	case 1:
		n, err := b.length.Read(p)
		if err == io.EOF && b.length.N > 0 {
			err = io.ErrUnexpectedEOF // the server closed before the announced end
		}
		return n, err
	case 2:
		return b.chunked.Read(p)
	case 3:
		return b.br.Read(p)
	}
	return 0, io.EOF
}

// chunked decodes a chunked body and consumes its trailer, so the
// connection is positioned at the next message when it returns io.EOF.
type chunked struct {
	r    io.Reader
	br   *bufio.Reader
	done bool // the trailer is read: what follows is the next message
}

func (c *chunked) Read(p []byte) (int, error) {
	if c.done {
		return 0, io.EOF
	}
	n, err := c.r.Read(p)
	if err != io.EOF {
		return n, err
	}
	for total := 0; ; {
		line, err := c.br.ReadSlice('\n')
		if total += len(line); err != nil || total > 64<<10 {
			return n, errors.New("h1: bad chunked trailer")
		}
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			c.done = true
			return n, io.EOF
		}
	}
}

// WriteInt writes n in decimal, without the allocation strconv.Itoa makes
// for numbers over 99: a length field on every call.
func WriteInt(w *bufio.Writer, n int64) {
	w.Write(strconv.AppendInt(w.AvailableBuffer(), n, 10))
}
