package httpx

import (
	"crypto/x509"
	"errors"
	"net"
	"net/url"
	"os"
	"syscall"
	"testing"
)

func TestErrorKinds(t *testing.T) {
	wrap := func(err error) error { return &url.Error{Op: "Get", URL: "https://h/p?key=SECRET", Err: err} }
	timeout := &net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded}
	tests := map[string]struct {
		err          error
		tls, timeout bool
	}{
		"unknown authority": {wrap(x509.UnknownAuthorityError{}), true, false},
		"wrong host":        {wrap(x509.HostnameError{Host: "h"}), true, false},
		"timeout":           {wrap(timeout), false, true},
		"refused":           {wrap(syscall.ECONNREFUSED), false, false},
	}
	for name, tc := range tests {
		if got := IsTLSVerification(tc.err); got != tc.tls {
			t.Errorf("%s: IsTLSVerification = %v", name, got)
		}
		if got := IsTimeout(tc.err); got != tc.timeout {
			t.Errorf("%s: IsTimeout = %v", name, got)
		}
		if inner := WithoutURL(tc.err); errors.As(inner, new(*url.Error)) {
			t.Errorf("%s: WithoutURL kept the url.Error: %v", name, inner)
		}
	}
	plain := errors.New("x")
	if WithoutURL(plain) != plain {
		t.Error("WithoutURL changed an error without a URL")
	}
}
