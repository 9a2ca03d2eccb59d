package httpx

import (
	"context"
	"errors"
	"net/http"
	"sync"
)

// ErrPlainHTTP is a request refused for going over plain http off
// loopback.
var ErrPlainHTTP = errors.New("plain http refused")

// ErrRedirect is a redirect refused (to another host, a downgrade, too many).
var ErrRedirect = errors.New("redirect refused")

type plainHTTPError struct{ host string }

func (e plainHTTPError) Error() string {
	return "plain http to " + e.host + " refused: only loopback may use http, use https"
}
func (plainHTTPError) Is(target error) bool { return target == ErrPlainHTTP }

type redirectError string

func (e redirectError) Error() string      { return string(e) }
func (redirectError) Is(target error) bool { return target == ErrRedirect }

// Cause records, for one call, what this package saw happen on the wire:
// the typed error it raised, and the status and body of the answer that
// was read. Libraries between the caller and the client (x/oauth2) turn
// errors into text with %v; Explain gives the type back, so failures are
// classified with errors.Is and never by their wording.
type Cause struct {
	mu     sync.Mutex
	err    error
	status int
	body   []byte
	whole  bool
}

type causeKey struct{}

// WithCause returns a context whose calls through a client of this package
// record into the returned Cause.
func WithCause(ctx context.Context) (context.Context, *Cause) {
	c := &Cause{}
	return context.WithValue(ctx, causeKey{}, c), c
}

func causeOf(req *http.Request) *Cause {
	c, _ := req.Context().Value(causeKey{}).(*Cause)
	return c
}

// raise records err as the call's cause and returns it.
func (c *Cause) raise(err error) error {
	if c != nil && err != nil {
		c.mu.Lock()
		if c.err == nil {
			c.err = err
		}
		c.mu.Unlock()
	}
	return err
}

// answered records that a status was received; the body grows as it is
// read and is whole once it has been read to its end.
func (c *Cause) answered(status int) {
	if c != nil {
		c.mu.Lock()
		c.status, c.body, c.whole = status, nil, false
		c.mu.Unlock()
	}
}

func (c *Cause) read(p []byte, eof bool) {
	if c != nil {
		c.mu.Lock()
		c.body = append(c.body, p...)
		c.whole = c.whole || eof
		c.mu.Unlock()
	}
}

// Answer is the last answer's status and, when it was read to its end, its
// body (capped like every body; it may hold credentials: keep it no longer
// than the classification).
func (c *Cause) Answer() (status int, body []byte, whole bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status, c.body, c.whole
}

// Explain returns err with the recorded cause joined to it, so errors.Is
// and errors.As see both. A nil err stays nil.
func (c *Cause) Explain(err error) error {
	if err == nil || c == nil {
		return err
	}
	c.mu.Lock()
	cause := c.err
	c.mu.Unlock()
	return Because(err, cause)
}

// Because returns err, reading as it does, with cause joined to it for
// errors.Is and errors.As.
func Because(err, cause error) error {
	if err == nil || cause == nil || errors.Is(err, cause) {
		return err
	}
	return &explained{err, cause}
}

// explained reads as the original error and unwraps to both.
type explained struct{ err, cause error }

func (e *explained) Error() string   { return e.err.Error() }
func (e *explained) Unwrap() []error { return []error{e.err, e.cause} }
