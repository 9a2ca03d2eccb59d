package tokenbroker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/oauth2"

	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/failure"
	"github.com/tokenbroker/tokenbroker/internal/apipath"
	"github.com/tokenbroker/tokenbroker/internal/httpx"
	"github.com/tokenbroker/tokenbroker/internal/wait"
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

// TenantHeader names the MSP tenant a call is for: one of the profile's
// `tenants:` by id or name. It never reaches the vendor: it is replaced by
// the vendor's own tenant header.
const TenantHeader = "X-Tokenbroker-Tenant"

// tenantLookupTimeout bounds reading a discovered tenant list for a
// PROFILE/TENANT client.
const tenantLookupTimeout = 5 * time.Second

// ErrTenantRefused is in the error of a call for a tenant the profile was
// not given (or any tenant, for a profile without tenants): nothing is sent.
var ErrTenantRefused = config.ErrTenantRefused

// tenantFor resolves the tenant a call is for: the transport's own (a
// PROFILE/TENANT transport), else the caller's X-Tokenbroker-Tenant
// ("" when neither). A caller's header cannot name another tenant than
// the transport's.
func (t *transport) tenantFor(ctx context.Context, h http.Header) (string, error) {
	vals := h.Values(TenantHeader)
	if len(vals) == 0 {
		return t.tenant, nil
	}
	if len(vals) > 1 {
		return "", &failure.Error{Kind: failure.Config, Profile: t.name, Msg: TenantHeader + " is given more than once", Err: ErrTenantRefused}
	}
	_, ten, err := t.b.Tenant(ctx, t.name+"/"+vals[0])
	if err != nil {
		return "", err
	}
	if t.tenant != "" && ten.ID != t.tenant {
		return "", &failure.Error{Kind: failure.Config, Profile: t.name, Msg: fmt.Sprintf("%s names tenant %q, but this client is for %q", TenantHeader, vals[0], t.tenant), Err: ErrTenantRefused}
	}
	return ten.ID, nil
}

// Transport returns an http.RoundTripper that calls the profile's API (or,
// for PROFILE/TENANT, the API as that tenant of an MSP profile): it
// attaches the token and tenant headers (replacing any Authorization),
// keeps within the vendor's rate limit and daily quota, renews the token and
// retries once on 401, and retries once after a 429's Retry-After. Requests
// to any host other than the profile's API base are refused.
func (b *Broker) Transport(name string) (http.RoundTripper, error) {
	ctx, cancel := context.WithTimeout(context.Background(), tenantLookupTimeout)
	defer cancel()
	prof, ten, err := b.Tenant(ctx, name)
	if err != nil {
		return nil, err
	}
	name = prof.Name
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
	t := &transport{b: b, name: name, base: base, lim: lim, rt: b.opts.API, stateless: d.Stateless, tenantHeader: d.TenantHeader}
	if ten != nil {
		t.tenant = ten.ID // provider.New refused tenants without a tenant header
	}
	return t, nil
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
	lim       *ratelimit.Account
	rt        http.RoundTripper // Options.API; nil: the profile's own pool
	stateless bool
	// tenantHeader is the vendor's (TenantID, x-rks-tenantid), "" if none.
	tenantHeader string
	tenant       string                     // the tenant id of a PROFILE/TENANT transport
	attach       atomic.Pointer[attachment] // the headers of the last token used
}

// attachment is the header lines for one access token, built once per
// token rather than once per request.
type attachment struct {
	token  string
	header http.Header
}

func (t *transport) attachment(tok *Token) (*attachment, error) {
	if a := t.attach.Load(); a != nil && a.token == tok.AccessToken {
		return a, nil
	}
	p, _ := t.b.Provider(t.name)
	a := &attachment{token: tok.AccessToken, header: p.Headers(tok)}
	if err := checkHeaders(t.name, a.header); err != nil {
		return nil, err
	}
	t.attach.Store(a)
	return a, nil
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if !strings.EqualFold(req.URL.Host, t.base.Host) || req.URL.Scheme != t.base.Scheme || req.URL.Opaque != "" ||
		(req.Host != "" && !strings.EqualFold(req.Host, t.base.Host)) {
		closeBody(req)
		return nil, &failure.Error{Kind: failure.Config, Profile: t.name, Endpoint: req.URL.Scheme + "://" + req.URL.Host,
			Msg: "refused a request outside the profile's API " + t.base.Scheme + "://" + t.base.Host}
	}
	if err := apipath.Method(req.Method); err != nil {
		closeBody(req)
		return nil, &failure.Error{Kind: failure.Config, Profile: t.name, Endpoint: t.base.Scheme + "://" + t.base.Host, Msg: err.Error()}
	}
	if err := apipath.Path(t.base.EscapedPath(), req.URL.EscapedPath()); err != nil {
		closeBody(req)
		return nil, &failure.Error{Kind: failure.Config, Profile: t.name, Endpoint: t.base.Scheme + "://" + t.base.Host,
			Msg: "refused " + strconv.Quote(trimmed(req.URL.EscapedPath())) + ": " + err.Error()}
	}
	ctx := req.Context()
	replay, err := bufferBody(req)
	if err != nil {
		return nil, err
	}
	var tried retries
	for {
		resp, used, err := t.send(req, replay)
		if err != nil || replay == nil {
			return resp, err // a streamed body cannot be sent twice
		}
		pause, again := t.again(ctx, &tried, resp.StatusCode, resp.Header.Get, used)
		if !again {
			return resp, nil
		}
		drain(resp)
		if err := wait.Sleep(ctx, pause); err != nil {
			return nil, err
		}
	}
}

// retries records which second attempts a call has had.
type retries struct{ renewed, waited bool }

// again decides whether an answer is worth one more attempt, and after how
// long: a vendor 401 once the token was renewed (shared by every caller
// that saw it), a vendor 429 whose Retry-After fits the queue's wait. Each
// happens at most once per call; otherwise the answer stands.
func (t *transport) again(ctx context.Context, tried *retries, status int, header func(string) string, used string) (time.Duration, bool) {
	switch {
	case status == http.StatusUnauthorized && !t.stateless && !tried.renewed:
		tried.renewed = true
		if tok, err := t.b.Rejected(ctx, t.name, used); err != nil || tok == nil {
			return 0, false // the vendor's 401 stands; a renewal error is in the log and status
		}
		return 0, true
	case status == http.StatusTooManyRequests && !tried.waited && header(RefusedHeader) == "":
		tried.waited = true
		wait := retryAfter(header("Retry-After"))
		return wait, wait <= t.lim.MaxWait()
	}
	return 0, false
}

// send makes one attempt: admission, headers, the call. It returns the
// token it used.
func (t *transport) send(req *http.Request, replay []byte) (*http.Response, string, error) {
	tenant, err := t.tenantFor(req.Context(), req.Header)
	if err != nil {
		return nil, "", err
	}
	tok, refused, err := t.admit(req.Context())
	if err != nil {
		return nil, "", err
	}
	if refused != nil {
		return refusal(req, refused), "", nil
	}
	// A shallow copy with its own header map: the caller's request is not
	// changed, and header values (never modified) are shared, not copied.
	out := new(http.Request)
	*out = *req
	out.Header = make(http.Header, len(req.Header)+2)
	for k, v := range req.Header {
		out.Header[k] = v
	}
	switch {
	case len(replay) > 0:
		out.Body = io.NopCloser(bytes.NewReader(replay))
		out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(replay)), nil }
		out.ContentLength = int64(len(replay))
	case replay != nil:
		out.Body, out.ContentLength = http.NoBody, 0 // a known empty body, announced where the method expects one
	}
	att, err := t.attachment(tok)
	if err != nil {
		return nil, "", err
	}
	out.Header.Del("Authorization")
	out.Header.Del(TenantHeader)
	hdr := att.header
	if th := t.tenantHeader; th != "" {
		// The vendor's tenant header comes from the profile alone: a
		// caller cannot name a customer the profile was not given.
		for ck := range out.Header {
			if strings.EqualFold(ck, th) {
				delete(out.Header, ck)
			}
		}
		if tenant != "" {
			hdr = hdr.Clone() // the attachment is shared by every call
			for k := range hdr {
				if strings.EqualFold(k, th) {
					delete(hdr, k)
				}
			}
			hdr[th] = []string{tenant}
		}
	}
	for k, v := range hdr {
		// The profile's names are spelled as the vendor documents them;
		// whatever the caller sent under the same name, in any case, goes.
		for ck := range out.Header {
			if strings.EqualFold(ck, k) {
				delete(out.Header, ck)
			}
		}
		out.Header[k] = v
	}
	rt := t.rt
	if rt == nil {
		rt = t.b.conns.get(t.name, time.Now()).transport(out)
	}
	resp, err := rt.RoundTrip(out)
	if err != nil {
		return nil, "", err
	}
	t.lim.ObserveQuota(req.Context(), resp.Header, t.b.opts.Now())
	return resp, tok.AccessToken, nil
}

// admit waits for a call's turn: the daily quota, the rate limit, then the
// token as it is at the moment of sending (a call that queued must not
// carry a token that was replaced meanwhile). refused is tokenbroker's own
// 429, to be answered instead of calling.
func (t *transport) admit(ctx context.Context) (tok *Token, refused *ratelimit.Refused, err error) {
	if err := t.lim.CheckQuota(ctx, t.b.opts.Now()); err != nil {
		t.b.observe().Refused(t.name)
		return nil, err.(*ratelimit.Refused), nil
	}
	if !t.lim.Limited() {
		tok, err = t.b.token(ctx, t.name)
		return tok, nil, err
	}
	// Have a token in hand before taking a slot, so that fetching one (a
	// store read, maybe a renewal) does not make the call late for it.
	if _, err := t.b.token(ctx, t.name); err != nil {
		return nil, nil, err
	}
	for attempt := 1; ; attempt++ {
		asked := t.b.opts.Now()
		turn, err := t.lim.Turn(ctx)
		if r, ok := err.(*ratelimit.Refused); ok {
			t.b.observe().Refused(t.name)
			return nil, r, nil
		}
		if err != nil {
			return nil, nil, err
		}
		if waited := turn.Sub(asked); waited > 0 {
			t.b.observe().Waited(t.name, waited)
		}
		if tok, err = t.b.token(ctx, t.name); err != nil {
			return nil, nil, err
		}
		// A call sent well after its turn (a slow token read, or a machine
		// too busy to wake it on time) could squeeze one more into the
		// vendor's window: it takes a new turn instead (the late one stays
		// counted, which errs on the safe side), and after three it is
		// refused rather than sent late.
		if t.b.opts.Now().Sub(turn) <= t.lim.Lateness() {
			return tok, nil, nil
		}
		if attempt == lateAttempts {
			t.b.observe().Refused(t.name)
			return nil, &ratelimit.Refused{RetryAfter: time.Second, Reason: "this machine was too busy to send the call on its turn, three times"}, nil
		}
	}
}

// lateAttempts is how many turns a call may miss before it is refused.
const lateAttempts = 3

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

func retryAfter(v string) time.Duration {
	if s, err := strconv.ParseInt(v, 10, 64); err == nil && s >= 0 {
		if s > int64(365*24*time.Hour/time.Second) {
			return 365 * 24 * time.Hour // beyond any wait: passed on, not retried
		}
		return time.Duration(s) * time.Second
	}
	if at, err := http.ParseTime(v); err == nil {
		return time.Until(at)
	}
	return time.Second
}

func drain(resp *http.Response) {
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// trimmed shortens a caller's path for an error message.
func trimmed(p string) string {
	if len(p) > 200 {
		return p[:200] + "..."
	}
	return p
}

func closeBody(req *http.Request) {
	if req.Body != nil {
		req.Body.Close()
	}
}
