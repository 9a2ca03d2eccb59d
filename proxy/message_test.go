package proxy

import (
	"context"
	"crypto/x509"
	"net/url"
	"strings"
	"syscall"
	"testing"

	"github.com/tokenbroker/tokenbroker/failure"
)

// TestUpstreamMessage: an API hop's failure names the profile, the API's
// origin (never its path or query, which may carry secrets) and what to
// check, by the kind of failure.
func TestUpstreamMessage(t *testing.T) {
	api, _ := url.Parse("https://api.example.net/v2")
	wrap := func(err error) error {
		return &url.Error{Op: "Get", URL: "https://api.example.net/v2/items?api_key=SECRET", Err: err}
	}
	tests := map[string]struct {
		err  error
		want []string
	}{
		"tls":     {wrap(x509.UnknownAuthorityError{}), []string{"TLS verification of the Acme API failed (https://api.example.net)", "CA certificates"}},
		"timeout": {wrap(context.DeadlineExceeded), []string{"the Acme API did not answer in time (https://api.example.net)", "check the network"}},
		"refused": {wrap(syscall.ECONNREFUSED), []string{"the Acme API could not be reached (https://api.example.net)", "connection refused", "base_url"}},
		"classified": {failure.New(failure.RateLimited, "profile %q: over the limit", "p"),
			[]string{"over the limit"}},
	}
	for name, tc := range tests {
		msg := upstreamMessage("p", "Acme", api, tc.err)
		for _, w := range tc.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: %q lacks %q", name, msg, w)
			}
		}
		if !strings.Contains(msg, `profile "p"`) || strings.Contains(msg, "SECRET") || strings.Contains(msg, "/v2") {
			t.Errorf("%s: %q must name the profile and leave out the path and query", name, msg)
		}
	}
}
