package tokenbroker

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"

	"github.com/tokenbroker/tokenbroker/failure"
	"github.com/tokenbroker/tokenbroker/internal/h1"
	"github.com/tokenbroker/tokenbroker/internal/httpx"
	"github.com/tokenbroker/tokenbroker/ratelimit"
)

// MaxReplayBody is the largest request body kept in memory so that a call
// can be resent after a 401 or 429; larger bodies are streamed, not retried.
const MaxReplayBody = 1 << 20

// maxAPIBody caps a vendor API response read through HTTPClient or the proxy.
const maxAPIBody = 256 << 20

// RefusedHeader marks a 429 that tokenbroker answered itself (rate limit
// queue full, or daily quota spent) rather than the vendor.
const RefusedHeader = "X-Tokenbroker-Refused"

var (
	apiTransportOnce sync.Once
	apiTransport     http.RoundTripper
)

// defaultAPITransport is shared by every profile: connections to a vendor
// are reused across callers.
func defaultAPITransport() http.RoundTripper {
	apiTransportOnce.Do(func() {
		base := &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 60 * time.Second,
			IdleConnTimeout:       90 * time.Second,
			MaxIdleConns:          1024,
			MaxIdleConnsPerHost:   256,
			ForceAttemptHTTP2:     true,
		}
		// Direct connections use the synchronous HTTP/1.1 client (no
		// goroutine hand-off per exchange); through an HTTP proxy from the
		// environment, net/http's transport.
		direct := h1.New(&tls.Config{MinVersion: tls.VersionTLS12}, 256, 60*time.Second)
		apiTransport = &httpx.Transport{Base: viaProxy{direct: direct, proxied: base}, MaxBody: maxAPIBody}
	})
	return apiTransport
}

// viaProxy sends a request through net/http's transport when the
// environment names a proxy for it, else through the direct client.
type viaProxy struct {
	direct, proxied http.RoundTripper
}

func (v viaProxy) RoundTrip(req *http.Request) (*http.Response, error) {
	if p, err := http.ProxyFromEnvironment(req); err == nil && p != nil {
		return v.proxied.RoundTrip(req)
	}
	return v.direct.RoundTrip(req)
}

// Transport returns an http.RoundTripper that calls the profile's API: it
// attaches the token and tenant headers (replacing any Authorization),
// keeps within the vendor's rate limit and daily quota, renews the token and
// retries once on 401, and retries once after a 429's Retry-After. Requests
// to any host other than the profile's API base are refused.
func (b *Broker) Transport(name string) (http.RoundTripper, error) {
	p, err := b.Provider(name)
	if err != nil {
		return nil, err
	}
	d := p.Describe()
	if d.APIBase == "" {
		return nil, &failure.Error{Kind: failure.Config, Profile: name, Msg: "no API base is known", Hint: "set `base_url` or `region`"}
	}
	base, err := url.Parse(d.APIBase)
	if err != nil {
		return nil, err
	}
	lim, err := b.limitsFor(name)
	if err != nil {
		return nil, err
	}
	rt := b.opts.API
	if rt == nil {
		rt = defaultAPITransport()
	}
	return &transport{b: b, name: name, base: base, lim: lim, rt: rt, stateless: d.Stateless}, nil
}

// HTTPClient returns a client for the profile's API with Transport's
// behaviour; redirects are followed only on the same host.
func (b *Broker) HTTPClient(name string) (*http.Client, error) {
	t, err := b.Transport(name)
	if err != nil {
		return nil, err
	}
	return &http.Client{Transport: t, CheckRedirect: httpx.SameHostRedirects}, nil
}

// TokenSource returns an oauth2.TokenSource for the profile, for libraries
// that take one. Each call goes through Token, so it shares the cache, the
// store and the single upstream request.
func (b *Broker) TokenSource(name string) oauth2.TokenSource {
	return tokenSource{b: b, name: name}
}

type tokenSource struct {
	b    *Broker
	name string
}

func (s tokenSource) Token() (*oauth2.Token, error) {
	t, err := s.b.Token(context.Background(), s.name, TokenOptions{})
	if err != nil {
		return nil, err
	}
	return &oauth2.Token{AccessToken: t.AccessToken, TokenType: t.TokenType, Expiry: t.Expiry}, nil
}

type transport struct {
	b         *Broker
	name      string
	base      *url.URL
	lim       *limits
	rt        http.RoundTripper
	stateless bool
	attach    atomic.Pointer[attachment] // the headers of the last token used
}

// attachment is the header lines for one access token, built once per
// token rather than once per request.
type attachment struct {
	token  string
	header http.Header
}

func (t *transport) headers(tok *Token) http.Header {
	if a := t.attach.Load(); a != nil && a.token == tok.AccessToken {
		return a.header
	}
	p, _ := t.b.Provider(t.name)
	a := &attachment{token: tok.AccessToken, header: p.Headers(tok)}
	t.attach.Store(a)
	return a.header
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !strings.EqualFold(req.URL.Host, t.base.Host) || req.URL.Scheme != t.base.Scheme {
		closeBody(req)
		return nil, &failure.Error{Kind: failure.Config, Profile: t.name, Endpoint: req.URL.Scheme + "://" + req.URL.Host,
			Msg: "refused a request outside the profile's API " + t.base.Scheme + "://" + t.base.Host}
	}
	ctx := req.Context()
	replay, err := bufferBody(req)
	if err != nil {
		return nil, err
	}
	resp, used, err := t.send(req, replay)
	if err != nil || replay == nil {
		return resp, err // a streamed body cannot be sent twice
	}
	if resp.StatusCode == http.StatusUnauthorized && !t.stateless {
		if _, rerr := t.b.Rejected(ctx, t.name, used); rerr != nil {
			return resp, nil // the vendor's 401 stands; the renewal error is in the log and status
		}
		drain(resp)
		if resp, _, err = t.send(req, replay); err != nil {
			return nil, err
		}
	}
	if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get(RefusedHeader) == "" {
		wait := retryAfter(resp.Header)
		if wait <= t.lim.cfg.MaxWait {
			drain(resp)
			if err := sleep(ctx, wait); err != nil {
				return nil, err
			}
			resp, _, err = t.send(req, replay)
			return resp, err
		}
	}
	return resp, nil
}

// send makes one attempt: quota, rate limit, then the token as it is at the
// moment of sending (a call that queued must not carry a token that was
// replaced meanwhile), headers, the call. It returns the token it used.
func (t *transport) send(req *http.Request, replay []byte) (*http.Response, string, error) {
	ctx := req.Context()
	if err := t.lim.checkQuota(ctx, time.Now()); err != nil {
		t.b.observe().Refused(t.name)
		return refusal(req, err.(*ratelimit.Refused)), "", nil
	}
	if t.lim.window != nil {
		// Have a token in hand before taking a slot, so that fetching one
		// (a store read, maybe a renewal) does not make the call late for it.
		if _, err := t.b.token(ctx, t.name); err != nil {
			return nil, "", err
		}
		waited, err := t.lim.window.Wait(ctx)
		if r, ok := err.(*ratelimit.Refused); ok {
			t.b.observe().Refused(t.name)
			return refusal(req, r), "", nil
		}
		if err != nil {
			return nil, "", err
		}
		if waited > 0 {
			t.b.observe().Waited(t.name, waited)
		}
	}
	tok, err := t.b.token(ctx, t.name)
	if err != nil {
		return nil, "", err
	}
	// A shallow copy with its own header map: the caller's request is not
	// changed, and header values (never modified) are shared, not copied.
	out := new(http.Request)
	*out = *req
	out.Header = make(http.Header, len(req.Header)+2)
	for k, v := range req.Header {
		out.Header[k] = v
	}
	if replay != nil {
		out.Body = io.NopCloser(bytes.NewReader(replay))
		out.ContentLength = int64(len(replay))
	}
	out.Header.Del("Authorization")
	for k, v := range t.headers(tok) {
		out.Header[k] = v
	}
	resp, err := t.rt.RoundTrip(out)
	if err != nil {
		return nil, "", err
	}
	t.lim.observeQuota(ctx, resp.Header, time.Now())
	return resp, tok.AccessToken, nil
}

// refusal is the 429 tokenbroker answers itself, shaped like a vendor's.
func refusal(req *http.Request, r *ratelimit.Refused) *http.Response {
	secs := int(r.RetryAfter.Seconds() + 0.999)
	body, _ := json.Marshal(map[string]any{"error": "rate_limited", "message": "tokenbroker: " + r.Reason, "retry_after_seconds": secs})
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Retry-After", strconv.Itoa(secs))
	h.Set(RefusedHeader, r.Reason)
	return &http.Response{StatusCode: http.StatusTooManyRequests, Status: "429 Too Many Requests", Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: h, Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body)), Request: req}
}

// bufferBody reads a small body into memory so the call can be replayed.
// It returns nil for no body or one too large (left streaming).
func bufferBody(req *http.Request) ([]byte, error) {
	if req.Body == nil || req.Body == http.NoBody {
		return []byte{}, nil
	}
	if req.ContentLength > MaxReplayBody {
		return nil, nil
	}
	head, err := io.ReadAll(io.LimitReader(req.Body, MaxReplayBody+1))
	if err != nil {
		return nil, fmt.Errorf("reading the request body: %w", err)
	}
	if len(head) <= MaxReplayBody {
		req.Body.Close()
		return head, nil
	}
	// Too large: put back what was read and stream the rest.
	req.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(head), req.Body), req.Body}
	return nil, nil
}

func retryAfter(h http.Header) time.Duration {
	v := h.Get("Retry-After")
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second
	}
	if at, err := http.ParseTime(v); err == nil {
		return time.Until(at)
	}
	return time.Second
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}
