package failure

import (
	"context"
	"crypto/x509"
	"net/url"
	"strings"
	"syscall"
	"testing"
)

// TestAPIError: a failed API call names the profile, the API's origin
// (never its path or query, which may carry secrets) and what to check, by
// the kind of failure; an already classified failure passes unchanged.
func TestAPIError(t *testing.T) {
	api, _ := url.Parse("https://api.example.net/v2/items?api_key=SECRET")
	wrap := func(err error) error {
		return &url.Error{Op: "Get", URL: api.String(), Err: err}
	}
	refused := New(RateLimited, "profile %q: over the limit", "p")
	tests := map[string]struct {
		err  error
		kind Kind
		want []string
	}{
		"tls": {wrap(x509.UnknownAuthorityError{}), Unreachable,
			[]string{"TLS verification of the Acme API failed (https://api.example.net)", "CA certificates"}},
		"timeout": {wrap(context.DeadlineExceeded), Unreachable,
			[]string{"the Acme API did not answer in time (https://api.example.net)", "check the network"}},
		"refused": {wrap(syscall.ECONNREFUSED), Unreachable,
			[]string{"the Acme API could not be reached (https://api.example.net)", "connection refused", "base_url"}},
		"cancelled":  {wrap(context.Canceled), Other, []string{"cancelled"}},
		"classified": {wrap(refused), RateLimited, []string{"over the limit"}},
	}
	for name, tc := range tests {
		err := APIError("p", "Acme", api, tc.err)
		msg := err.Error()
		if k := KindOf(err); k != tc.kind {
			t.Errorf("%s: kind %v, want %v", name, k, tc.kind)
		}
		for _, w := range tc.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%s: %q lacks %q", name, msg, w)
			}
		}
		if !strings.Contains(msg, `profile "p"`) || strings.Contains(msg, "SECRET") || strings.Contains(msg, "/v2") {
			t.Errorf("%s: %q must name the profile and leave out the path and query", name, msg)
		}
	}
	if APIError("p", "Acme", api, nil) != nil {
		t.Error("no error, no APIError")
	}
}
