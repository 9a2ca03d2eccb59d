// Package proxy is the authenticating reverse proxy of `serve`:
// /proxy/{profile}/{path...} reaches the profile's own API, and nothing else,
// with the caller's Authorization replaced by the vendor credential.
//
// It is a lean net/http handler over the profile's tokenbroker.Transport
// rather than httputil.ReverseProxy: a vendor API needs no upgrades,
// trailers or forwarding headers, and what is left (copy the request's
// end-to-end fields, send, copy the answer) costs a third less per call.
package proxy

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenbroker/tokenbroker"
	"github.com/tokenbroker/tokenbroker/failure"
	"github.com/tokenbroker/tokenbroker/internal/apipath"
	"github.com/tokenbroker/tokenbroker/internal/every"
	"github.com/tokenbroker/tokenbroker/internal/httpx"
	"github.com/tokenbroker/tokenbroker/store"
)

// Prefix is where the proxy is mounted.
const Prefix = "/proxy/"

// Handler proxies to each profile's API.
type Handler struct {
	// Broker returns the current broker (it changes on a config reload).
	Broker func() *tokenbroker.Broker
	Log    *slog.Logger
	// Served is told each proxied request, its profile and its status,
	// for metrics; tenant is the tenant it named (X-Tokenbroker-Tenant as
	// given) once the vendor answered it, else "". It is called only for
	// profiles of the configuration.
	Served func(r *http.Request, profile, tenant string, status int)
	// WriteTimeout bounds each write of an answer to the caller, so that a
	// caller that stops reading lets go of its vendor connection; none
	// when zero.
	WriteTimeout time.Duration

	routes atomic.Pointer[routes] // of the current broker only
	// logs lets one line per kind of failure per 10 s through, with a
	// count: a replica whose state is gone fails every call alike, and
	// logging each one wrote 30 MB in 8 s.
	logs every.Limiter
}

// routes are the per-profile state of one broker, dropped with it.
type routes struct {
	b      *tokenbroker.Broker
	mu     sync.Mutex // serialises building entries
	byName sync.Map   // profile -> *route
}

// route is one profile's transport and API base.
type route struct {
	rt     http.RoundTripper
	base   *url.URL
	vendor string
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.ContentLength != 0 && h.WriteTimeout > 0 {
		// A caller that stops sending its body is let go as one that stops
		// reading its answer is; a refusal that leaves the body unread
		// drains it within that time too.
		httpx.BoundBody(w, r, h.WriteTimeout, h.WriteTimeout)
	}
	name, rest, err := Split(r.URL)
	if err != nil {
		h.fail(w, r, "", http.StatusBadRequest, "bad_path", err.Error())
		return
	}
	if err := apipath.Method(r.Method); err != nil {
		w.Header().Set("Allow", "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS")
		h.fail(w, r, "", http.StatusMethodNotAllowed, "method_not_allowed", err.Error())
		return
	}
	rt, err := h.route(name)
	if err != nil {
		status, known := http.StatusBadGateway, name
		if failure.KindOf(err) == failure.Config {
			status, known = http.StatusNotFound, "" // no metric series for names that are not profiles
		}
		h.fail(w, r, known, status, failure.KindOf(err).String(), err.Error())
		return
	}
	target := *rt.base
	target.Path = strings.TrimRight(rt.base.Path, "/") + "/" + rest
	target.RawPath = ""
	if p, err := url.PathUnescape(target.Path); err == nil {
		target.Path = p
	}
	target.RawQuery = r.URL.RawQuery
	// A copy of the caller's request (its context with it), made a
	// client's: the checked URL, the end-to-end fields, no Host of its own.
	out := new(http.Request)
	*out = *r
	out.URL, out.Host, out.RequestURI, out.Header = &target, "", "", endToEnd(r.Header)
	out.Close, out.Trailer, out.Form, out.PostForm, out.MultipartForm, out.RemoteAddr, out.TLS = false, nil, nil, nil, nil, "", nil
	if r.ContentLength == 0 {
		out.Body = http.NoBody
	}
	// The wait for the vendor has its own bounds; the write deadline starts
	// when the answer does.
	rc := http.NewResponseController(w)
	rc.SetWriteDeadline(time.Time{})
	resp, err := rt.rt.RoundTrip(out)
	if err != nil {
		h.fail(w, r, name, status(err), errorClass(err), failure.APIError(name, rt.vendor, rt.base, err).Error())
		return
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusSwitchingProtocols {
		h.fail(w, r, name, http.StatusBadGateway, "protocol", "the vendor switched protocols, which the proxy does not forward")
		return
	}
	copyHeader(w.Header(), resp.Header)
	h.deadline(rc)
	w.WriteHeader(resp.StatusCode)
	if h.Served != nil {
		h.Served(r, name, r.Header.Get(tokenbroker.TenantHeader), resp.StatusCode)
	}
	if r.Method == http.MethodHead {
		return
	}
	streamed := resp.ContentLength < 0 || strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream")
	if err := h.copyBody(w, rc, resp.Body, streamed); err != nil {
		if h.Log != nil {
			h.Log.Warn("proxied answer cut short", "profile", name, "error", failure.APIError(name, rt.vendor, rt.base, err).Error())
		}
		// The head is gone: abort the answer (net/http then resets the
		// connection, or the HTTP/2 stream), so that the caller sees a cut
		// answer and not a complete-looking one.
		panic(http.ErrAbortHandler)
	}
}

// copyBody copies the vendor's body to the caller. A streamed body (no
// length, or an event stream) is flushed as it comes, and each write gets
// a fresh deadline.
func (h *Handler) copyBody(w http.ResponseWriter, rc *http.ResponseController, body io.Reader, streamed bool) error {
	bp := buffers.Get().(*[]byte)
	defer buffers.Put(bp)
	buf := *bp
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			if streamed {
				h.deadline(rc)
			}
			if _, err := w.Write(buf[:n]); err != nil {
				return err
			}
			if streamed {
				if err := rc.Flush(); err != nil {
					return err
				}
			}
		}
		if rerr == io.EOF {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

func (h *Handler) deadline(rc *http.ResponseController) {
	if h.WriteTimeout > 0 {
		rc.SetWriteDeadline(time.Now().Add(h.WriteTimeout))
	}
}

var buffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// hopByHop are the fields that describe one connection, not the message
// (RFC 9110 §7.6.1), and the caller's own credentials and forwarding
// fields, none of which the vendor may see. The vendor credential is set
// by the transport.
var hopByHop = map[string]bool{
	"Connection": true, "Proxy-Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
}

var notForwarded = map[string]bool{
	"Authorization": true, "Cookie": true, "Forwarded": true, "X-Forwarded-For": true,
	"X-Forwarded-Host": true, "X-Forwarded-Proto": true, "X-Real-Ip": true, "Host": true,
}

// endToEnd copies the caller's fields that may reach the vendor.
func endToEnd(in http.Header) http.Header {
	out := make(http.Header, len(in))
	for k, v := range in {
		if !hopByHop[k] && !notForwarded[k] {
			out[k] = v
		}
	}
	dropListed(out, in)
	return out
}

// copyHeader copies the vendor's answer fields, less hop-by-hop ones.
func copyHeader(dst, src http.Header) {
	for k, v := range src {
		if !hopByHop[k] {
			dst[k] = v
		}
	}
	dropListed(dst, src)
}

// dropListed removes from dst the fields that src's Connection names.
func dropListed(dst, src http.Header) {
	for _, v := range src["Connection"] {
		for f := range strings.SplitSeq(v, ",") {
			if f = http.CanonicalHeaderKey(strings.TrimSpace(f)); f != "" {
				delete(dst, f)
			}
		}
	}
}

// route returns the profile's route, built once per broker.
func (h *Handler) route(name string) (*route, error) {
	b := h.Broker()
	rs := h.routes.Load()
	if rs == nil || rs.b != b {
		fresh := &routes{b: b}
		if h.routes.CompareAndSwap(rs, fresh) {
			rs = fresh
		} else if rs = h.routes.Load(); rs.b != b {
			rs = fresh // a reload raced this call: answer it with what it saw
		}
	}
	if v, ok := rs.byName.Load(name); ok {
		return v.(*route), nil
	}
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if v, ok := rs.byName.Load(name); ok {
		return v.(*route), nil
	}
	rt, err := b.Transport(name)
	if err != nil {
		return nil, err
	}
	p, _ := b.Provider(name)
	base, err := url.Parse(p.Describe().APIBase)
	if err != nil {
		return nil, err
	}
	e := &route{rt: rt, base: base, vendor: p.Describe().Vendor}
	rs.byName.Store(name, e)
	return e, nil
}

func status(err error) int {
	switch {
	case errors.Is(err, tokenbroker.ErrTenantRefused):
		return http.StatusForbidden // refused before anything was sent
	case failure.KindOf(err) == failure.RateLimited:
		return http.StatusTooManyRequests
	case errors.Is(err, store.ErrUnavailable):
		return http.StatusServiceUnavailable // this replica's trouble, not the vendor's
	}
	return http.StatusBadGateway
}

func errorClass(err error) string {
	if errors.Is(err, tokenbroker.ErrTenantRefused) {
		return "tenant_refused"
	}
	if errors.Is(err, store.ErrUnavailable) {
		return "state_unavailable"
	}
	if k := failure.KindOf(err); k != failure.Other {
		return k.String()
	}
	return "upstream_unreachable"
}

// fail answers with a JSON error body that says what happened.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, name string, status int, class, msg string) {
	if h.Log != nil {
		if n, ok := h.logs.Allow(name+"\x00"+class, time.Now()); ok {
			h.Log.Warn("proxy request failed", "profile", name, "status", status, "error", msg, "like_this_since_last", n)
		}
	}
	if h.Served != nil && name != "" {
		h.Served(r, name, "", status)
	}
	body, _ := json.Marshal(map[string]string{"error": class, "message": msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(body, '\n'))
}

// Split takes /proxy/{profile}/{path...} apart and refuses any path that
// could reach beyond the profile's API (apipath's rule): dot segments,
// empty segments, encoded slashes, dots or backslashes, and absolute URLs.
func Split(u *url.URL) (name, rest string, err error) {
	return SplitPath(u.EscapedPath())
}

// SplitPath is Split for an escaped path.
func SplitPath(raw string) (name, rest string, err error) {
	raw, ok := strings.CutPrefix(raw, Prefix)
	if !ok {
		return "", "", errors.New("not a proxy path")
	}
	name, rest, _ = strings.Cut(raw, "/")
	if strings.IndexByte(name, '%') >= 0 {
		if name, err = url.PathUnescape(name); err != nil {
			name = ""
		}
	}
	if name == "" {
		return "", "", errors.New("the path must be /proxy/{profile}/{path}")
	}
	if err := apipath.CheckEmpty(rest); err != nil {
		return "", "", err
	}
	if err := apipath.Check(rest); err != nil {
		return "", "", err
	}
	return name, rest, nil
}
