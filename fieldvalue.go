package tokenbroker

import (
	"net/http"
	"strconv"

	"golang.org/x/net/http/httpguts"

	"github.com/tokenbroker/tokenbroker/failure"
)

// checkToken refuses a token that cannot be sent as an RFC 9110 field
// value: a CR, LF or other control character in it would end the header
// early or add fields of the vendor's (or an attacker's) choosing to every
// call. Such a token is the vendor's error, and is never stored or handed
// out.
func checkToken(name string, t *Token) error {
	switch {
	case t == nil || t.AccessToken == "":
		return &failure.Error{Kind: failure.Protocol, Profile: name, Msg: "the vendor gave an empty access token"}
	case !httpguts.ValidHeaderFieldValue(t.AccessToken) || hasEdgeSpace(t.AccessToken):
		return &failure.Error{Kind: failure.Protocol, Profile: name,
			Msg:  "the vendor's access token holds a control character or edge whitespace, which no header may carry; it was not stored",
			Hint: "check token_url and token_field; the last good token was kept"}
	case !httpguts.ValidHeaderFieldValue(t.TokenType):
		return &failure.Error{Kind: failure.Protocol, Profile: name,
			Msg: "the vendor's token_type holds a control character; the token was not stored"}
	}
	return nil
}

func hasEdgeSpace(s string) bool {
	return s != "" && (s[0] == ' ' || s[0] == '\t' || s[len(s)-1] == ' ' || s[len(s)-1] == '\t')
}

// checkHeaders refuses header lines that are not valid fields: the last
// guard before a value reaches a vendor connection or a caller's terminal.
func checkHeaders(name string, h http.Header) error {
	for k, vs := range h {
		if !httpguts.ValidHeaderFieldName(k) {
			return &failure.Error{Kind: failure.Config, Profile: name, Msg: "the header name " + quoteShort(k) + " is not a valid field name"}
		}
		for _, v := range vs {
			if !httpguts.ValidHeaderFieldValue(v) {
				return &failure.Error{Kind: failure.Config, Profile: name,
					Msg: "the value of header " + k + " holds a control character (a CR or LF?)", Hint: "check the profile's key, header and tenant values"}
			}
		}
	}
	return nil
}

func quoteShort(s string) string {
	if len(s) > 40 {
		s = s[:40] + "..."
	}
	return strconv.Quote(s)
}
