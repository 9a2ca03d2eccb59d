// Package apipath is the one rule for which paths may be sent to a
// profile's API, shared by the proxy, Transport (and so HTTPClient and
// `curl`): a path below the API's base that no server can read as leaving
// it, and a standard method.
package apipath

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Errors name what was refused, for the caller's error message.
var (
	ErrEscape    = errors.New("encoded slashes, dots, backslashes, percent signs and control characters are refused in API paths")
	ErrEmpty     = errors.New("absolute URLs and empty path segments are refused: give a path on the profile's API")
	ErrDot       = errors.New("dot segments are refused in API paths")
	ErrOutside   = errors.New("the path leaves the profile's API")
	ErrBadEscape = errors.New("the path holds an invalid percent escape")
	ErrBackslash = errors.New("backslashes are refused in API paths")
)

// Check accepts rest, the escaped path below an API's base (without its
// leading slash), when no segment is empty, none is a dot segment (also
// once decoded, and also with ";params" as Tomcat reads "..;x" as ".."),
// and no escape encodes a slash, backslash, dot, percent sign or control
// character.
func Check(rest string) error {
	if rest == "" {
		return nil
	}
	for seg := range strings.SplitSeq(rest, "/") {
		if err := checkSegment(seg); err != nil {
			return err
		}
	}
	// A trailing slash leaves one empty last segment, which is allowed.
	return nil
}

func checkSegment(raw string) error {
	if strings.IndexByte(raw, '\\') >= 0 {
		return ErrBackslash
	}
	for i := 0; i < len(raw); i++ {
		if raw[i] == '%' && i+2 < len(raw) && refusedEscape(lower(raw[i+1]), lower(raw[i+2])) {
			return ErrEscape
		}
	}
	seg, err := url.PathUnescape(raw)
	if err != nil {
		return ErrBadEscape
	}
	for i := 0; i < len(seg); i++ {
		if c := seg[i]; c < 0x20 || c == 0x7f {
			return ErrEscape
		}
	}
	// Bytes that are no UTF-8 (overlong forms of "." and "/" among them),
	// and the characters Unicode normalisation folds into a dot, slash or
	// backslash, are read as those by some servers.
	if !utf8.ValidString(seg) || strings.ContainsAny(seg, lookalikes) {
		return ErrEscape
	}
	if i := strings.IndexByte(seg, ';'); i >= 0 {
		if i == 0 && raw != "" {
			return ErrDot // ";.." names the segment's parameters only
		}
		seg = seg[:i]
	}
	// "." and "..", and what Windows servers trim to them ("...", ". ").
	if seg != "" && strings.Trim(seg, ". ") == "" {
		return ErrDot
	}
	return nil
}

// lookalikes fold into ".", "/" or "\\" under NFKC: fullwidth and small
// full stops, the one-dot leader, fullwidth and big solidi, the division
// slash and the fullwidth and small reverse solidi.
const lookalikes = "\uff0e\ufe52\u2024\uff0f\u2215\u2044\uff3c\ufe68"

// CheckEmpty refuses empty segments inside rest (a trailing slash aside)
// and a rest that starts with a slash: "//host" and "a//b" are read as
// other resources by some servers.
func CheckEmpty(rest string) error {
	for i := 0; i < len(rest); i++ {
		if rest[i] == '/' && (i == 0 || rest[i-1] == '/') {
			return ErrEmpty
		}
	}
	return nil
}

// Below returns the part of the escaped path p below the escaped base path
// (without the slash between them), or ErrOutside.
func Below(base, p string) (string, error) {
	base = strings.TrimRight(base, "/")
	rest, ok := strings.CutPrefix(p, base+"/")
	if !ok {
		if p == base {
			return "", nil
		}
		return "", ErrOutside
	}
	return rest, nil
}

// Path checks the escaped path p of a request to the API whose escaped base
// path is base.
func Path(base, p string) error {
	rest, err := Below(base, p)
	if err != nil {
		return err
	}
	if err := CheckEmpty(rest); err != nil {
		return err
	}
	return Check(rest)
}

// Method accepts the standard methods an API is called with, in upper
// case: a method is case-sensitive, and a server that upper-cases "get"
// would read another request than the one checked. CONNECT would turn the
// call into a tunnel, and TRACE would echo the vendor credential back to
// the caller: both are refused.
func Method(m string) error {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return nil
	}
	if len(m) > 32 {
		m = m[:32] + "..."
	}
	return errors.New("method " + strconv.Quote(m) + " is not forwarded: use GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS")
}

// refusedEscape reports the escapes (lower-cased) of a slash, a backslash,
// a dot and a percent sign (a double encoding).
func refusedEscape(a, b byte) bool {
	switch string([]byte{a, b}) {
	case "2f", "5c", "2e", "25":
		return true
	}
	return false
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
