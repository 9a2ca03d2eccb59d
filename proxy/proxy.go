// Package proxy is the authenticating reverse proxy of `serve`:
// /proxy/{profile}/{path...} reaches the profile's own API, and nothing else,
// with the caller's Authorization replaced by the vendor credential.
package proxy

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/tokenbroker/tokenbroker"
	"github.com/tokenbroker/tokenbroker/failure"
)

// Prefix is where the proxy is mounted.
const Prefix = "/proxy/"

// Handler proxies to each profile's API.
type Handler struct {
	// Broker returns the current broker (it changes on a config reload).
	Broker func() *tokenbroker.Broker
	Log    *slog.Logger
	// Served is told each proxied request's profile and status, for metrics.
	Served func(profile string, status int)

	proxies sync.Map // *tokenbroker.Broker + profile -> *entry
	lanes   atomic.Pointer[laneSet]
	laneMu  sync.Mutex // serialises additions to lanes
}

type proxyKey struct {
	b    *tokenbroker.Broker
	name string
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name, rest, err := Split(r.URL)
	if err != nil {
		h.fail(w, "", http.StatusBadRequest, "bad_path", err.Error())
		return
	}
	b := h.Broker()
	rp, base, err := h.reverseProxy(b, name)
	if err != nil {
		status := http.StatusBadGateway
		if failure.KindOf(err) == failure.Config {
			status = http.StatusNotFound
		}
		h.fail(w, name, status, failure.KindOf(err).String(), err.Error())
		return
	}
	target := *base
	target.Path = strings.TrimRight(base.Path, "/") + "/" + rest
	target.RawPath = ""
	if p, err := url.PathUnescape(target.Path); err == nil {
		target.Path = p
	}
	target.RawQuery = r.URL.RawQuery
	if target.Host != base.Host || !strings.HasPrefix(target.Path, strings.TrimRight(base.Path, "/")+"/") {
		h.fail(w, name, http.StatusBadRequest, "bad_path", "the path leaves the profile's API")
		return
	}
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	r = r.WithContext(withTarget(r.Context(), &target))
	rp.ServeHTTP(sw, r)
	if h.Served != nil {
		h.Served(name, sw.status)
	}
}

// reverseProxy returns the profile's reverse proxy, built once per broker.
func (h *Handler) reverseProxy(b *tokenbroker.Broker, name string) (*httputil.ReverseProxy, *url.URL, error) {
	key := proxyKey{b, name}
	if v, ok := h.proxies.Load(key); ok {
		e := v.(*entry)
		return e.rp, e.base, nil
	}
	rt, err := b.Transport(name)
	if err != nil {
		return nil, nil, err
	}
	p, _ := b.Provider(name)
	base, err := url.Parse(p.Describe().APIBase)
	if err != nil {
		return nil, nil, err
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL = targetOf(pr.In.Context())
			pr.Out.Host = ""
			pr.Out.Header.Del("Authorization") // the broker key never leaves
			pr.Out.Header.Del("Cookie")
		},
		Transport: rt,
		// Event streams and bodies of unknown length are flushed as they
		// come (ReverseProxy does so by itself); others are copied whole.
		BufferPool: bufferPool{},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			h.fail(w, name, status(err), errorClass(err), upstreamMessage(name, p.Describe().Vendor, base, err))
		},
	}
	h.proxies.Store(key, &entry{rp: rp, base: base})
	return rp, base, nil
}

// bufferPool shares copy buffers between responses instead of allocating
// 32 KiB for each.
type bufferPool struct{}

var buffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *buffers.Get().(*[]byte) }
func (bufferPool) Put(b []byte) { buffers.Put(&b) }

type entry struct {
	rp   *httputil.ReverseProxy
	base *url.URL
}

func status(err error) int {
	if failure.KindOf(err) == failure.RateLimited {
		return http.StatusTooManyRequests
	}
	return http.StatusBadGateway
}

func errorClass(err error) string {
	if k := failure.KindOf(err); k != failure.Other {
		return k.String()
	}
	return "upstream_unreachable"
}

// upstreamMessage says why a call did not reach the vendor's API.
func upstreamMessage(name, vendor string, api *url.URL, err error) string {
	return tokenbroker.APIError(name, vendor, api, err).Error()
}

// fail answers with a JSON error body that says what happened.
func (h *Handler) fail(w http.ResponseWriter, name string, status int, class, msg string) {
	body := h.reported(name, status, class, msg)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(body)
}

// reported logs and counts a failed proxied call, and returns the JSON
// body that says what happened.
func (h *Handler) reported(name string, status int, class, msg string) []byte {
	if h.Log != nil {
		h.Log.Warn("proxy request failed", "profile", name, "status", status, "error", msg)
	}
	if h.Served != nil && name != "" {
		h.Served(name, status)
	}
	body, _ := json.Marshal(map[string]string{"error": class, "message": msg})
	return append(body, '\n')
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// Split takes /proxy/{profile}/{path...} apart and refuses any path that
// could reach beyond the profile's API: dot segments, empty segments,
// encoded slashes, dots or backslashes, and absolute URLs.
func Split(u *url.URL) (name, rest string, err error) {
	return SplitPath(u.EscapedPath())
}

// SplitPath is Split for an escaped path.
func SplitPath(raw string) (name, rest string, err error) { return splitPath(raw) }

// splitPath is SplitPath for a path held as a string or as bytes (the
// lane's, which it splits without copying).
func splitPath[T string | []byte](raw T) (name, rest T, err error) {
	if len(raw) < len(Prefix) || string(raw[:len(Prefix)]) != Prefix {
		return name, rest, errors.New("not a proxy path")
	}
	raw = raw[len(Prefix):]
	name, rest = raw, raw[len(raw):]
	if i := indexByte(raw, '/'); i >= 0 {
		name, rest = raw[:i], raw[i+1:]
	}
	if indexByte(name, '%') >= 0 {
		n, err := url.PathUnescape(string(name))
		if err != nil {
			n = ""
		}
		name = T(n)
	}
	if len(name) == 0 {
		return name[:0], rest[:0], errors.New("the path must be /proxy/{profile}/{path}")
	}
	for i := 0; i < len(rest); i++ {
		if rest[i] == '%' && i+2 < len(rest) && refusedEscape(lower(rest[i+1]), lower(rest[i+2])) {
			return name[:0], rest[:0], errors.New("encoded slashes, dots, backslashes and percent signs are refused in proxied paths")
		}
	}
	for i := 0; i < len(rest); i++ {
		if rest[i] == '/' && (i == 0 || rest[i-1] == '/') {
			return name[:0], rest[:0], errors.New("absolute URLs and empty path segments are refused: give a path on the profile's API")
		}
	}
	for seg := rest; ; {
		s, more := seg, false
		if i := indexByte(seg, '/'); i >= 0 {
			s, seg, more = seg[:i], seg[i+1:], true
		}
		// Some servers (Tomcat) read "..;x" as "..": parameters do not hide a dot segment.
		if i := indexByte(s, ';'); i >= 0 {
			s = s[:i]
		}
		if string(s) == "." || string(s) == ".." {
			return name[:0], rest[:0], errors.New("dot segments are refused in proxied paths")
		}
		if !more {
			return name, rest, nil
		}
	}
}

// refusedEscape reports the escapes (lower-cased) of a slash, a backslash,
// a dot, NUL and a percent sign.
func refusedEscape(a, b byte) bool {
	switch string([]byte{a, b}) {
	case "2f", "5c", "2e", "00", "25":
		return true
	}
	return false
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

func indexByte[T string | []byte](b T, c byte) int {
	for i := 0; i < len(b); i++ {
		if b[i] == c {
			return i
		}
	}
	return -1
}
