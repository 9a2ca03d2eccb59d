package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/oauth2"

	"github.com/tokenbroker/tokenbroker/failure"
	"github.com/tokenbroker/tokenbroker/internal/httpx"
)

// site says where a failure happened, for the message.
type site struct {
	profile  string
	vendor   string // display name
	endpoint string // URL; its query string is dropped
	what     string // what was presented: "the refresh token", "the credentials"
	hint     string // what to do when rejected
	// endpointName and missingHint say what a 404 means: by default that
	// there is no token endpoint at the configured address.
	endpointName, missingHint string
}

// classify turns any error from a vendor call into a failure.Error whose
// message names the profile, the endpoint and what to do. It never includes
// request URLs with their query (Aruba sends secrets there) or request bodies.
func classify(err error, s site) error {
	if err == nil {
		return nil
	}
	var fe *failure.Error
	if errors.As(err, &fe) {
		return failure.WithProfile(fe, s.profile)
	}
	e := &failure.Error{Profile: s.profile, Endpoint: stripQuery(s.endpoint)}
	var re *oauth2.RetrieveError
	switch {
	case errors.As(err, &re):
		status := http.StatusOK
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		msg := vendorMessage(re.Body)
		e.Code = re.ErrorCode
		if e.Code == "" && status == http.StatusUnauthorized {
			// RFC 6749 5.2 answers 401 for a client that failed to
			// authenticate; Aruba says only "Auth failure".
			e.Code = "invalid_client"
		}
		switch {
		case status == http.StatusTooManyRequests:
			e.Kind, e.Msg = failure.RateLimited, s.vendor+" is rate limiting token requests (429)"
			e.RetryAfter = retryAfter(re.Response)
			e.Hint = "wait and try again"
			if e.RetryAfter > 0 {
				e.Hint = fmt.Sprintf("wait %s and try again", e.RetryAfter)
			}
		case status >= 500:
			e.Kind, e.Msg = failure.Unreachable, fmt.Sprintf("%s answered %d %s", s.vendor, status, http.StatusText(status))
			e.Hint = "the vendor is having trouble; tokenbroker keeps the last good token and retries later"
		case status == http.StatusNotFound:
			name, hint := s.endpointName, s.missingHint
			if name == "" {
				name, hint = "token endpoint", "check region, base_url, token_url and tenant_id"
			}
			e.Kind, e.Msg = failure.Config, s.vendor+" has no "+name+" at this address (404)"
			e.Hint = hint
		case e.Code == "invalid_client" && s.what != "the credentials":
			// The grant presented something else (a refresh token, a code):
			// say that it is the client that was refused, not the grant.
			e.Kind = failure.Rejected
			e.Msg = fmt.Sprintf("%s rejected the client (%d)", s.vendor, status)
			if msg != "" {
				e.Msg += ": " + msg
			}
			e.Hint = "check client_id and client_secret (and auth_style) for profile " + s.profile
		default:
			e.Kind = failure.Rejected
			e.Msg = fmt.Sprintf("%s rejected %s (%d)", s.vendor, s.what, status)
			if msg != "" {
				e.Msg += ": " + msg
			}
			e.Hint = s.hint
		}
		return e
	case errors.Is(err, httpx.ErrHTML):
		e.Kind, e.Msg = failure.Protocol, "the token endpoint answered an HTML page, not a token"
		e.Hint = "check base_url and token_url: they probably point at a web page"
	case errors.Is(err, httpx.ErrTooLarge):
		e.Kind, e.Msg = failure.Protocol, "the token endpoint's answer is larger than the limit, not read whole"
		e.Hint = "check base_url and token_url"
	case errors.Is(err, errNoToken):
		e.Kind, e.Msg = failure.Protocol, "the token endpoint answered without an access token"
		e.Hint = "check token_url (and token_field for a generic oauth2 profile)"
	case errors.Is(err, errInvalidJSON):
		e.Kind, e.Msg = failure.Protocol, "the token endpoint answered invalid JSON"
		e.Hint = "check base_url and token_url"
	case errors.Is(err, context.DeadlineExceeded) || httpx.IsTimeout(err):
		e.Kind, e.Msg = failure.Unreachable, s.vendor+" did not answer in time"
		e.Hint = "check the network; tokenbroker keeps the last good token"
	case httpx.IsTLSVerification(err):
		e.Kind, e.Msg = failure.Unreachable, "TLS verification of "+s.vendor+" failed"
		e.Err = httpx.WithoutURL(err)
		e.Hint = "tokenbroker never skips verification; check the host name and the system's CA certificates"
	case errors.Is(err, httpx.ErrRedirect):
		e.Kind, e.Msg = failure.Protocol, "the token endpoint redirected elsewhere"
		e.Err = httpx.WithoutURL(err)
		e.Hint = "set token_url or base_url to the final address"
	case errors.Is(err, httpx.ErrPlainHTTP):
		e.Kind, e.Msg = failure.Config, "refused to send credentials over plain http"
		e.Err = httpx.WithoutURL(err)
	default:
		e.Kind, e.Msg = failure.Unreachable, s.vendor+" is unreachable"
		e.Err = httpx.WithoutURL(err)
		e.Hint = "check the network and the host name; tokenbroker keeps the last good token"
	}
	return e
}

// vendorMessage renders a vendor's JSON error body in plain words; other
// bodies (HTML pages, text) are not echoed.
func vendorMessage(body []byte) string {
	var m struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
		Message     string `json:"message"`
		Errors      []struct {
			Code    string `json:"errorCode"`
			Message string `json:"message"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &m) != nil {
		return ""
	}
	var parts []string
	for _, p := range []string{m.Error, m.Description, m.Message} {
		if p != "" {
			parts = append(parts, p)
		}
	}
	msg := strings.Join(parts, ": ")
	if len(m.Errors) > 0 && m.Errors[0].Code != "" {
		msg += " [" + m.Errors[0].Code + "]"
	}
	return printable(msg, maxVendorText)
}

func retryAfter(resp *http.Response) time.Duration {
	if resp == nil {
		return 0
	}
	v := resp.Header.Get("Retry-After")
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return time.Until(t)
	}
	return 0
}

func stripQuery(raw string) string {
	if i := strings.IndexByte(raw, '?'); i >= 0 {
		return raw[:i]
	}
	return raw
}

// maxVendorText bounds the vendor's words kept in an error: enough for a
// server's whole reason, not a page.
const maxVendorText = 4096

// printable makes vendor text safe to show and keep: valid UTF-8, no
// control characters (a terminal would act on escapes), at most max bytes
// cut on a character boundary.
func printable(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return ' '
		}
		return r
	}, strings.ToValidUTF8(s, "\uFFFD"))
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
