package failure

import (
	"context"
	"errors"
	"net/url"

	"github.com/tokenbroker/tokenbroker/internal/httpx"
)

// APIError says why a call to a profile's API (the hop after the token)
// failed: the profile, the API's origin (never its path or query, which may
// carry what is not ours to show), what failed and what to check. A failure
// that is already classified (the token could not be had, the call was
// refused) is returned as it is. The proxy's error bodies and `curl` use it.
func APIError(profile, vendor string, endpoint *url.URL, err error) error {
	if err == nil {
		return nil
	}
	var fe *Error
	if errors.As(err, &fe) {
		return fe // without the url.Error around it, whose text repeats the whole URL
	}
	err = httpx.WithoutURL(err)
	e := &Error{Kind: Unreachable, Profile: profile, Endpoint: endpoint.Scheme + "://" + endpoint.Host, Err: err}
	switch {
	case errors.Is(err, context.Canceled):
		e.Kind, e.Msg = Other, "the call to the "+vendor+" API was cancelled"
	case httpx.IsTLSVerification(err):
		e.Msg = "TLS verification of the " + vendor + " API failed"
		e.Hint = "tokenbroker never skips verification; check the host name in base_url and the system's CA certificates"
	case errors.Is(err, context.DeadlineExceeded) || httpx.IsTimeout(err):
		e.Msg, e.Hint = "the "+vendor+" API did not answer in time", "check the network, or the vendor's status"
	default:
		e.Msg, e.Hint = "the "+vendor+" API could not be reached", "check the network and base_url"
	}
	return e
}
