package proxy

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"

	"github.com/tokenbroker/tokenbroker"
	"github.com/tokenbroker/tokenbroker/internal/front"
	"github.com/tokenbroker/tokenbroker/internal/h1"
)

// Lane serves plain proxied calls from the front's lane, as bytes, with the
// same checks, headers, limits and retries as ServeHTTP. It declines, for
// ServeHTTP to answer, whatever it does not handle itself: a missing or
// wrong broker key, a refused path, an unknown profile, a body larger than
// tokenbroker.MaxReplayBody, a profile whose calls go through an HTTP proxy.
// authorized checks the value of the caller's Authorization field.
func (h *Handler) Lane(authorized func(value []byte) bool) front.Lane {
	return func(r *front.Request) bool {
		target := r.Head.Target
		if !bytes.HasPrefix(target, []byte(Prefix)) || r.Head.ContentLength > tokenbroker.MaxReplayBody ||
			bytes.IndexByte(target, '#') >= 0 || !authorized(r.Head.Get("Authorization")) {
			return false
		}
		path, query, _ := bytes.Cut(target, []byte("?"))
		name, rest, err := splitPath(path)
		if err != nil {
			return false
		}
		l, ok := h.lane(h.Broker(), name)
		if !ok {
			return false
		}
		l.serve(h, r, rest, query)
		return true
	}
}

// lane is one profile's forwarder, built once per broker.
type lane struct {
	name   string
	fw     *tokenbroker.Forwarder // nil: the profile's calls go through ServeHTTP
	base   string                 // the API base path, without its trailing slash
	api    *url.URL               // the API base, for error messages
	vendor string                 // for error messages
}

// laneSet is the lanes of one broker. It is replaced, never changed, so
// that the lookup on every call takes no lock.
type laneSet struct {
	b      *tokenbroker.Broker
	byName map[string]*lane
}

func (h *Handler) lane(b *tokenbroker.Broker, nameBytes []byte) (*lane, bool) {
	if set := h.lanes.Load(); set != nil && set.b == b {
		if l, ok := set.byName[string(nameBytes)]; ok {
			return l, l.fw != nil
		}
	}
	name := string(nameBytes)
	fw, err := b.Forwarder(name)
	if err != nil && !errors.Is(err, tokenbroker.ErrNoForwarder) {
		return nil, false // ServeHTTP says what is wrong
	}
	_, base, err := h.reverseProxy(b, name)
	if err != nil {
		return nil, false
	}
	p, err := b.Provider(name)
	if err != nil {
		return nil, false
	}
	l := &lane{name: name, fw: fw, base: strings.TrimRight(base.EscapedPath(), "/"), api: base, vendor: p.Describe().Vendor}
	h.laneMu.Lock()
	defer h.laneMu.Unlock()
	next := &laneSet{b: b, byName: map[string]*lane{name: l}}
	if set := h.lanes.Load(); set != nil && set.b == b {
		for n, o := range set.byName {
			next.byName[n] = o
		}
	}
	h.lanes.Store(next)
	return l, l.fw != nil
}

var targets = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}

func (l *lane) serve(h *Handler, r *front.Request, rest, query []byte) {
	name := l.name
	body, err := r.Body()
	if err != nil {
		r.Close = true // the caller sent less than it announced: nothing to answer
		return
	}
	tp := targets.Get().(*[]byte)
	defer targets.Put(tp)
	t := append(append(append((*tp)[:0], l.base...), '/'), rest...)
	if len(query) > 0 {
		t = append(append(t, '?'), query...)
	}
	*tp = t
	// As ServeHTTP's rewrite: the caller's cookies and forwarding fields do
	// not reach the vendor.
	fields := r.Head.Fields[:0]
	for _, f := range r.Head.Fields {
		if !h1.EqualFold(f.Name, "Cookie") && !h1.EqualFold(f.Name, "Forwarded") && !h1.EqualFold(f.Name, "X-Forwarded-For") &&
			!h1.EqualFold(f.Name, "X-Forwarded-Host") && !h1.EqualFold(f.Name, "X-Forwarded-Proto") {
			fields = append(fields, f)
		}
	}
	a, err := l.fw.Forward(r.Context(), &tokenbroker.Call{Method: r.Head.Method, Target: t, Fields: fields, Body: body})
	if err != nil {
		h.failBytes(r, name, status(err), errorClass(err), upstreamMessage(name, l.vendor, l.api, err))
		return
	}
	defer a.Close()
	if h.Served != nil {
		h.Served(name, a.Head.Status)
	}
	if err := writeAnswer(r, a); err != nil {
		r.Close = true // the response is cut short: the caller must see the connection end
		if h.Log != nil {
			h.Log.Warn("proxy response cut short", "profile", name, "error", err.Error())
		}
	}
}

// writeAnswer writes the vendor's response, framed for this connection:
// its length when known, chunks otherwise (flushed as they come, for event
// streams).
func writeAnswer(r *front.Request, a *tokenbroker.Answer) error {
	w := r.W
	w.WriteString(statusLine(a.Head.Status))
	for _, f := range a.Head.Fields {
		if !h1.Framing(f.Name) && !a.Head.Nominated(f.Name) {
			w.Write(f.Name)
			w.WriteString(": ")
			w.Write(f.Value)
			w.WriteString("\r\n")
		}
	}
	noBody := string(r.Head.Method) == http.MethodHead || a.Head.Status == http.StatusNoContent || a.Head.Status == http.StatusNotModified
	chunked := a.Head.ContentLength < 0 && !noBody
	switch {
	case a.Head.ContentLength >= 0 && (!noBody || string(r.Head.Method) == http.MethodHead):
		w.WriteString("Content-Length: ")
		h1.WriteInt(w, a.Head.ContentLength)
		w.WriteString("\r\n")
	case chunked:
		w.WriteString("Transfer-Encoding: chunked\r\n")
	}
	if r.Close || r.Head.Close {
		w.WriteString("Connection: close\r\n")
	}
	w.WriteString("\r\n")
	if noBody {
		_, err := io.Copy(io.Discard, a.Body)
		return err
	}
	if !chunked {
		n, err := io.Copy(w, a.Body)
		if err == nil && n != a.Head.ContentLength {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	return copyChunked(w, a.Body)
}

// statusLines are the status lines of the known codes, made once.
var statusLines = func() (l [600]string) {
	for code := range l {
		if text := http.StatusText(code); text != "" {
			l[code] = "HTTP/1.1 " + strconv.Itoa(code) + " " + text + "\r\n"
		}
	}
	return l
}()

func statusLine(code int) string {
	if code >= 0 && code < len(statusLines) && statusLines[code] != "" {
		return statusLines[code]
	}
	return "HTTP/1.1 " + strconv.Itoa(code) + " \r\n"
}

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}

// copyChunked sends a body of unknown length in chunks, flushing each as
// it arrives.
func copyChunked(w *bufio.Writer, body io.Reader) error {
	bp := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(bp)
	cw := httputil.NewChunkedWriter(w)
	for {
		n, err := body.Read(*bp)
		if n > 0 {
			if _, werr := cw.Write((*bp)[:n]); werr != nil {
				return werr
			}
			if werr := w.Flush(); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
	}
	if err := cw.Close(); err != nil {
		return err
	}
	_, err := w.WriteString("\r\n")
	return err
}

// failBytes is fail for the lane: the same JSON error, written as bytes.
func (h *Handler) failBytes(r *front.Request, name string, status int, class, msg string) {
	body := h.reported(name, status, class, msg)
	w := r.W
	w.WriteString(statusLine(status))
	w.WriteString("Content-Type: application/json\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n")
	if r.Close || r.Head.Close {
		w.WriteString("Connection: close\r\n")
	}
	w.WriteString("\r\n")
	w.Write(body)
}
