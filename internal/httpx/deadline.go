package httpx

import (
	"io"
	"net/http"
	"time"
)

// BoundBody bounds the reading of r's body on the server side: the body
// (and what net/http drains of it after the handler) must arrive within
// first from now, and, when each is not zero, within each of the previous
// read. At the body's end the bound is lifted, so that a handler that then
// waits (on a vendor) is not cut off by its connection's read deadline.
func BoundBody(w http.ResponseWriter, r *http.Request, first, each time.Duration) {
	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Now().Add(first))
	r.Body = &boundBody{ReadCloser: r.Body, rc: rc, each: each}
}

type boundBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	each time.Duration
}

func (b *boundBody) Read(p []byte) (int, error) {
	if b.each > 0 {
		b.rc.SetReadDeadline(time.Now().Add(b.each))
	}
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}
