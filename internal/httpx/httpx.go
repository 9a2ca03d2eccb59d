// Package httpx builds the one kind of outbound HTTP client tokenbroker uses:
// a timeout on every call, a cap on every response body, TLS verification
// always on, plain http only to loopback, and no redirects to another host.
package httpx

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Defaults for token endpoints: small bodies, short waits.
const (
	DefaultTimeout  = 30 * time.Second
	DefaultMaxBody  = 512 << 10
	maxRedirects    = 3
	dialTimeout     = 10 * time.Second
	tlsHandshakeMax = 10 * time.Second
)

// ErrTooLarge is returned when a response body exceeds the cap.
var ErrTooLarge = errors.New("response body too large")

// ErrHTML is returned when an endpoint that must answer JSON answers a web
// page, which nearly always means a wrong base_url or token_url.
var ErrHTML = errors.New("answered an HTML page instead of JSON")

// WithoutURL drops the *url.Error wrapper, whose text repeats the request
// URL (and with it any query-string secret).
func WithoutURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// IsTimeout reports whether err is a network timeout.
func IsTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// IsTLSVerification reports whether err is a failed TLS handshake or
// certificate check: the answer is a hint about CA certificates and host
// names, not about the network.
func IsTLSVerification(err error) bool {
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	var rh tls.RecordHeaderError
	var ve *tls.CertificateVerificationError
	return errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ci) ||
		errors.As(err, &rh) || errors.As(err, &ve)
}

// IsLoopback reports whether host names this machine.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// CheckURL accepts https URLs, and http URLs only to loopback, so that no
// secret ever crosses a network in clear.
func CheckURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("invalid URL %q: %v", raw, err)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("invalid URL %q: no host", raw)
	}
	switch u.Scheme {
	case "https":
		return u, nil
	case "http":
		if IsLoopback(u.Hostname()) {
			return u, nil
		}
		return nil, plainHTTPError{u.Host}
	}
	return nil, fmt.Errorf("invalid URL %q: scheme must be https", raw)
}

// checkRequestURL is CheckURL for a parsed URL, without re-parsing it on
// every request.
func checkRequestURL(u *url.URL) error {
	switch {
	case u.Host == "":
		return fmt.Errorf("invalid URL: no host")
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && IsLoopback(u.Hostname()):
		return nil
	case u.Scheme == "http":
		return plainHTTPError{u.Host}
	}
	return fmt.Errorf("invalid URL scheme %q: use https", u.Scheme)
}

// Options tune a client.
type Options struct {
	Timeout time.Duration // whole request, default DefaultTimeout
	MaxBody int64         // response body cap, default DefaultMaxBody
	// RejectHTML fails 2xx responses whose Content-Type is text/html.
	RejectHTML bool
	// ClientCert is presented to servers that ask for one (RFC 8705
	// mutual TLS): a client of one profile's alone.
	ClientCert *tls.Certificate
}

// New returns a hardened client.
func New(o Options) *http.Client {
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxBody == 0 {
		o.MaxBody = DefaultMaxBody
	}
	// Token endpoints, logins and webhook sinks take bodies that carry
	// credentials, and one client serves every profile: a connection is
	// used for one call only, so no answer can reach another profile's
	// call however the server frames it. These calls are rare (one per
	// token lifetime), so the handshakes cost nothing that shows.
	tr, base := NewTransport(o.Timeout, 1, nil)
	tr.MaxIdleConnsPerHost = -1
	if o.ClientCert != nil {
		tr.TLSClientConfig.Certificates = []tls.Certificate{*o.ClientCert}
	}
	return &http.Client{
		Timeout:       o.Timeout,
		Transport:     &Transport{Base: base, MaxBody: o.MaxBody, RejectHTML: o.RejectHTML},
		CheckRedirect: SameHostRedirects,
	}
}

// SameHostRedirects follows a redirect only to the same host and never
// downgrades to plain http off loopback: a token request redirected elsewhere
// would hand the client secret to a stranger.
func SameHostRedirects(req *http.Request, via []*http.Request) error {
	c := causeOf(req)
	if len(via) >= maxRedirects {
		return c.raise(redirectError(fmt.Sprintf("stopped after %d redirects", maxRedirects)))
	}
	first := via[0].URL
	if !strings.EqualFold(req.URL.Host, first.Host) {
		return c.raise(redirectError(fmt.Sprintf("redirect from %s to another host %s refused", first.Host, req.URL.Host)))
	}
	if _, err := CheckURL(req.URL.String()); err != nil {
		return c.raise(redirectError("redirect refused: " + err.Error()))
	}
	return nil
}

// Transport caps response bodies and optionally refuses HTML answers.
type Transport struct {
	Base       http.RoundTripper
	MaxBody    int64
	RejectHTML bool
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	c := causeOf(req)
	if err := checkRequestURL(req.URL); err != nil {
		return nil, c.raise(err)
	}
	resp, err := t.Base.RoundTrip(req)
	if err != nil {
		return nil, c.raise(err)
	}
	c.answered(resp.StatusCode)
	if t.RejectHTML && resp.StatusCode/100 == 2 {
		if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "text/html" {
			resp.Body.Close()
			return nil, c.raise(ErrHTML)
		}
	}
	if resp.ContentLength > t.MaxBody {
		resp.Body.Close()
		return nil, c.raise(fmt.Errorf("%w: %d bytes announced, limit %d", ErrTooLarge, resp.ContentLength, t.MaxBody))
	}
	resp.Body = &cappedBody{rc: resp.Body, left: t.MaxBody, cause: c}
	return resp, nil
}

// cappedBody errors once more than the cap has been read, instead of
// silently truncating, so a parser never sees half a document as whole.
type cappedBody struct {
	rc    io.ReadCloser
	left  int64
	cause *Cause // nil unless the call asked for one
}

func (c *cappedBody) Read(p []byte) (int, error) {
	if c.left < 0 {
		return 0, c.cause.raise(ErrTooLarge)
	}
	if int64(len(p)) > c.left+1 {
		p = p[:c.left+1]
	}
	n, err := c.rc.Read(p)
	c.left -= int64(n)
	if c.left < 0 {
		return n, c.cause.raise(ErrTooLarge)
	}
	c.cause.read(p[:n], err == io.EOF)
	return n, err
}

func (c *cappedBody) Close() error { return c.rc.Close() }
