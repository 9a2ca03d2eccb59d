package tokenbroker

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/tokenbroker/tokenbroker/failure"
	"github.com/tokenbroker/tokenbroker/internal/coarse"
	"github.com/tokenbroker/tokenbroker/internal/h1"
	"github.com/tokenbroker/tokenbroker/internal/httpx"
	"github.com/tokenbroker/tokenbroker/internal/wait"
	"github.com/tokenbroker/tokenbroker/ratelimit"
)

// Forwarder is Transport for callers that hold a request as bytes, as the
// proxy's fast lane does: the same admission (quota, rate limit, token),
// the same one retry after a 401 or a 429, the same caps, without building
// net/http requests and responses.
type Forwarder struct {
	t      *transport
	client *h1.Client
	origin *h1.Origin
	host   string // host[:port] as the URL gives it, also the Host header
}

// Call is one request to forward. Its byte slices are only read.
type Call struct {
	Method []byte
	// Target is the escaped path and query on the API host, starting with
	// "/"; the caller has checked that it stays inside the profile's API.
	Target []byte
	// Fields are the caller's header lines. Framing and hop-by-hop fields,
	// Host, Authorization and the profile's own headers are not forwarded.
	Fields []h1.Field
	Body   []byte
}

// Answer is the vendor's response (or tokenbroker's own 429). Head is valid
// until the first Read of Body. Close must be called once, when done; the
// Answer must not be used after it.
type Answer struct {
	Head h1.Head
	Body io.Reader // the Answer itself

	f       *Forwarder
	conn    h1.Conn
	hasConn bool
	headLen int
	body    h1.Body
	own     io.Reader // tokenbroker's own body, instead of the vendor's
	read    int64
	started bool
	eof     bool
}

// answers are reused, with their field slices: a call then allocates
// nothing for its answer.
var answers = sync.Pool{New: func() any { return new(Answer) }}

func (f *Forwarder) newAnswer() *Answer {
	a := answers.Get().(*Answer)
	fields := a.Head.Fields[:0]
	*a = Answer{f: f}
	a.Head.Fields = fields
	a.Body = a
	return a
}

// ErrNoForwarder is returned by Broker.Forwarder when calls to the profile
// must go through Transport: an HTTP proxy from the environment applies, or
// the broker was given its own transport for API calls.
var ErrNoForwarder = errors.New("calls to this profile go through Transport")

// Forwarder returns the profile's byte-level forwarder.
func (b *Broker) Forwarder(name string) (*Forwarder, error) {
	rt, err := b.Transport(name)
	if err != nil {
		return nil, err
	}
	t := rt.(*transport)
	if b.opts.API != nil {
		return nil, ErrNoForwarder
	}
	if _, err := httpx.CheckURL(t.base.String()); err != nil {
		return nil, &failure.Error{Kind: failure.Config, Profile: name, Endpoint: t.base.String(), Msg: err.Error()}
	}
	if p, err := http.ProxyFromEnvironment(&http.Request{URL: t.base}); err != nil || p != nil {
		return nil, ErrNoForwarder
	}
	defaultAPITransport()
	return &Forwarder{t: t, client: apiDirect, origin: apiDirect.Origin(t.base.Scheme, t.base.Host), host: t.base.Host}, nil
}

// Forward sends the call, retrying once after a 401 (with a renewed token)
// and once after a 429 (after its Retry-After) as Transport does.
func (f *Forwarder) Forward(ctx context.Context, c *Call) (*Answer, error) {
	var tried retries
	for {
		tok, refused, err := f.t.admit(ctx)
		if err != nil {
			return nil, err
		}
		if refused != nil {
			return f.refusal(refused), nil
		}
		a, err := f.exchange(ctx, c, f.t.attachment(tok))
		if err != nil {
			return nil, err
		}
		if a.Head.Get("X-RateLimit-Remaining-day") != nil {
			f.t.lim.observeQuota(ctx, quotaFields(&a.Head), time.Now())
		}
		pause, again := f.t.again(ctx, &tried, a.Head.Status, func(name string) string { return string(a.Head.Get(name)) }, tok.AccessToken)
		if !again {
			return a, nil
		}
		a.discard()
		if err := wait.Sleep(ctx, pause); err != nil {
			return nil, err
		}
	}
}

// exchange writes the request on a pooled connection and reads the
// response head; a kept-alive connection the vendor closed meanwhile is
// replaced once.
func (f *Forwarder) exchange(ctx context.Context, c *Call, att *attachment) (*Answer, error) {
	for attempt := 0; ; attempt++ {
		cn, reused, err := f.client.Acquire(ctx, f.origin)
		if err != nil {
			return nil, err
		}
		cn.Bound(coarse.Now(), apiHeaderTimeout)
		a, err := f.roundTrip(&cn, c, att)
		if err == nil {
			if a.Head.ContentLength < 0 || int64(cn.R.Buffered()-a.headLen) < a.Head.ContentLength {
				cn.Unbound() // the body may take its time; a whole one needs no more reads
			}
			return a, nil
		}
		f.client.Release(cn, false)
		if !reused || attempt > 0 || ctx.Err() != nil || !h1.Stale(err) {
			return nil, err
		}
	}
}

func (f *Forwarder) roundTrip(cn *h1.Conn, c *Call, att *attachment) (*Answer, error) {
	w := cn.W
	w.Write(c.Method)
	w.WriteByte(' ')
	w.Write(c.Target)
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(f.host)
	w.WriteString("\r\n")
	for _, fl := range c.Fields {
		if !h1.Framing(fl.Name) && !h1.EqualFold(fl.Name, "Host") && !h1.EqualFold(fl.Name, "Authorization") && !att.sets(fl.Name) {
			w.Write(fl.Name)
			w.WriteString(": ")
			w.Write(fl.Value)
			w.WriteString("\r\n")
		}
	}
	w.Write(att.wire)
	if len(c.Body) > 0 || bodyExpected(c.Method) {
		w.WriteString("Content-Length: ")
		h1.WriteInt(w, int64(len(c.Body)))
		w.WriteString("\r\n")
	}
	w.WriteString("\r\n")
	w.Write(c.Body)
	if err := w.Flush(); err != nil {
		return nil, err
	}
	a := f.newAnswer()
	a.conn, a.hasConn = *cn, true
	for {
		head, err := h1.PeekHead(cn.R)
		peeked := err == nil
		if errors.Is(err, bufio.ErrBufferFull) || errors.Is(err, h1.ErrLoneLF) {
			head, err = cn.ReadHead() // larger than the buffer, or lines ending in a bare LF
		}
		if err != nil {
			return nil, err
		}
		if err := h1.ParseResponse(head, &a.Head); err != nil {
			return nil, err
		}
		if a.Head.Status/100 != 1 || a.Head.Status == http.StatusSwitchingProtocols {
			if peeked {
				a.headLen = len(head)
			}
			break
		}
		if peeked {
			cn.R.Discard(len(head)) // an interim answer (103 Early Hints): not passed on
		}
	}
	if a.Head.ContentLength > maxAPIBody {
		return nil, fmt.Errorf("%w: %d bytes announced, limit %d", httpx.ErrTooLarge, a.Head.ContentLength, maxAPIBody)
	}
	a.body.Reset(cn.R, &a.Head, c.Method)
	return a, nil
}

// Read reads the body, capped at the API body limit.
func (a *Answer) Read(p []byte) (n int, err error) {
	if !a.started {
		a.started = true
		if a.hasConn {
			a.conn.R.Discard(a.headLen)
		}
	}
	if a.own != nil {
		n, err = a.own.Read(p)
	} else {
		n, err = a.body.Read(p)
	}
	if a.read += int64(n); a.read > maxAPIBody {
		return n, fmt.Errorf("%w: more than %d bytes", httpx.ErrTooLarge, maxAPIBody)
	}
	if err == io.EOF {
		a.eof = true
	}
	return n, err
}

// Close returns the connection to the pool when the body was read to its
// end, and closes it otherwise.
func (a *Answer) Close() {
	if a.hasConn {
		a.f.client.Release(a.conn, a.eof && a.body.Delimited() && !a.Head.Close)
	}
	a.conn, a.hasConn, a.own = h1.Conn{}, false, nil
	answers.Put(a)
}

// discard reads a small unwanted body to its end, so that the connection
// can be kept, and closes the answer.
func (a *Answer) discard() {
	io.Copy(io.Discard, io.LimitReader(a, 64<<10))
	a.Close()
}

// refusal is tokenbroker's own 429 as an Answer.
func (f *Forwarder) refusal(r *ratelimit.Refused) *Answer {
	resp := refusal(nil, r)
	a := f.newAnswer()
	a.Head.Status, a.Head.ContentLength = resp.StatusCode, resp.ContentLength
	for k, vs := range resp.Header {
		for _, v := range vs {
			a.Head.Fields = append(a.Head.Fields, h1.Field{Name: []byte(k), Value: []byte(v)})
		}
	}
	a.own = resp.Body
	return a
}

// quotaFields gives the vendor's rate-limit fields to the quota, which
// reads them as an http.Header.
func quotaFields(h *h1.Head) http.Header {
	q := http.Header{}
	for _, fl := range h.Fields {
		if len(fl.Name) > 12 && h1.EqualFold(fl.Name[:12], "X-RateLimit-") {
			q.Add(string(fl.Name), string(fl.Value))
		}
	}
	return q
}

func bodyExpected(method []byte) bool {
	m := string(method)
	return m == http.MethodPost || m == http.MethodPut || m == http.MethodPatch
}
