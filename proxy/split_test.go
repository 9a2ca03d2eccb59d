package proxy

import (
	"net/http/httptest"
	"net/url"
	"testing"
)

// parsers are the ways a request URL reaches Split: url.Parse as a client
// would build it, url.ParseRequestURI as net/http's server does, and a
// request built by httptest.
var parsers = map[string]func(string) (*url.URL, error){
	"Parse":           url.Parse,
	"ParseRequestURI": url.ParseRequestURI,
	"httptest": func(s string) (*url.URL, error) {
		return httptest.NewRequest("GET", "http://broker.local"+s, nil).URL, nil
	},
}

func TestSplitAccepts(t *testing.T) {
	tests := []struct {
		in, name, rest string
	}{
		{"/proxy/aruba/monitoring/v1/aps", "aruba", "monitoring/v1/aps"},
		{"/proxy/aruba/", "aruba", ""},
		{"/proxy/aruba", "aruba", ""},
		{"/proxy/aruba/monitoring/v1/aps?limit=10&offset=20", "aruba", "monitoring/v1/aps"},
		// The query is not part of the path: nothing in it is refused.
		{"/proxy/aruba/x?next=http://evil.com/../a%2fb%2e%2e%5c", "aruba", "x"},
		{"/proxy/aruba/sites/my%20site/devices", "aruba", "sites/my%20site/devices"},
		{"/proxy/aruba/v1/aps/", "aruba", "v1/aps/"},
		{"/proxy/aruba/a.b/..c/.d/e..", "aruba", "a.b/..c/.d/e.."},
		{"/proxy/aruba/v1/aps;x=1:y@z", "aruba", "v1/aps;x=1:y@z"},
		{"/proxy/meraki-eu/api/v1/organizations", "meraki-eu", "api/v1/organizations"},
	}
	for pname, parse := range parsers {
		for _, tt := range tests {
			u, err := parse(tt.in)
			if err != nil {
				t.Fatalf("%s(%q): %v", pname, tt.in, err)
			}
			name, rest, err := Split(u)
			if err != nil || name != tt.name || rest != tt.rest {
				t.Errorf("%s: Split(%q) = %q, %q, %v; want %q, %q, nil", pname, tt.in, name, rest, err, tt.name, tt.rest)
			}
		}
	}
}

var refused = []string{
	"/proxy/aruba/../admin",
	"/proxy/aruba/..",
	"/proxy/aruba/a/..",
	"/proxy/aruba/a/../../x",
	"/proxy/aruba/./x",
	"/proxy/aruba/.",
	"/proxy/aruba/a/./b",
	"/proxy/aruba//evil.com/x",
	"/proxy/aruba/a//b",
	"/proxy/aruba/%2e%2e/x",
	"/proxy/aruba/%2E%2E/x",
	"/proxy/aruba/.%2e/x",
	"/proxy/aruba/%2e./x",
	"/proxy/aruba/%2e/x",
	"/proxy/aruba/a%2fb",
	"/proxy/aruba/a%2Fb",
	"/proxy/aruba/..%2fadmin",
	"/proxy/aruba/a%5cb",
	"/proxy/aruba/a%5Cb",
	"/proxy/aruba/a\\b",
	"/proxy/aruba/..\\admin",
	"/proxy/aruba/http://evil.com/x",
	"/proxy/aruba/HTTPS://evil.com/x",
	"/proxy/aruba/https:%2f%2fevil.com",
	"/proxy/aruba/https:%2F%2Fevil.com",
	"/proxy/",
	"/proxy//x",
	"/proxy//",
	"/proxy/aruba/a%00b",
	"/proxy/aruba/%252e%252e/x",
	"/proxy/aruba/%252e",
	"/proxy/aruba/a%252fb",
	"/proxy",
	"/proxyaruba/x",
	"/other/aruba/x",
	"/",
}

func TestSplitRefuses(t *testing.T) {
	for pname, parse := range parsers {
		for _, in := range refused {
			u, err := parse(in)
			if err != nil {
				t.Fatalf("%s(%q): %v", pname, in, err)
			}
			if name, rest, err := Split(u); err == nil {
				t.Errorf("%s: Split(%q) = %q, %q, nil; want an error (EscapedPath %q)", pname, in, name, rest, u.EscapedPath())
			} else if name != "" || rest != "" {
				t.Errorf("%s: Split(%q) = %q, %q, %v; want no name or path with the error", pname, in, name, rest, err)
			}
		}
	}
}

// Split looks at the raw (escaped) form of the path, whichever way the URL
// was built: an encoded slash or dot is refused even when the URL carries
// it only in RawPath, and a decoded Path alone is escaped again.
func TestSplitRawPath(t *testing.T) {
	tests := []struct {
		name    string
		u       *url.URL
		wantErr bool
		rest    string
	}{
		{"encoded slash in RawPath", &url.URL{Path: "/proxy/aruba/a/b", RawPath: "/proxy/aruba/a%2Fb"}, true, ""},
		{"encoded dots in RawPath", &url.URL{Path: "/proxy/aruba/../x", RawPath: "/proxy/aruba/%2e%2e/x"}, true, ""},
		{"encoded backslash in RawPath", &url.URL{Path: "/proxy/aruba/a\\b", RawPath: "/proxy/aruba/a%5cb"}, true, ""},
		{"decoded dots, no RawPath", &url.URL{Path: "/proxy/aruba/../x"}, true, ""},
		{"decoded backslash, no RawPath", &url.URL{Path: "/proxy/aruba/a\\b"}, true, ""},
		{"decoded NUL, no RawPath", &url.URL{Path: "/proxy/aruba/a\x00b"}, true, ""},
		{"literal percent in Path", &url.URL{Path: "/proxy/aruba/%2e%2e/x"}, true, ""},
		// A RawPath that does not match Path is ignored: Path is escaped.
		{"stale RawPath", &url.URL{Path: "/proxy/aruba/../x", RawPath: "/proxy/aruba/ok/x"}, true, ""},
		{"stale RawPath hiding nothing", &url.URL{Path: "/proxy/aruba/ok/x", RawPath: "/proxy/aruba/%2e%2e/x"}, false, "ok/x"},
		{"space in Path", &url.URL{Path: "/proxy/aruba/my site"}, false, "my%20site"},
		{"matching RawPath", &url.URL{Path: "/proxy/aruba/my site", RawPath: "/proxy/aruba/my%20site"}, false, "my%20site"},
	}
	for _, tt := range tests {
		name, rest, err := Split(tt.u)
		if tt.wantErr {
			if err == nil {
				t.Errorf("%s: Split(%q) = %q, %q, nil; want an error", tt.name, tt.u.EscapedPath(), name, rest)
			}
			continue
		}
		if err != nil || name != "aruba" || rest != tt.rest {
			t.Errorf("%s: Split(%q) = %q, %q, %v; want %q, %q, nil", tt.name, tt.u.EscapedPath(), name, rest, err, "aruba", tt.rest)
		}
	}
}

func TestSplitRefusesDotSegmentsWithParameters(t *testing.T) {
	for _, raw := range []string{"/proxy/aruba/..;/admin", "/proxy/aruba/a/..;x/b", "/proxy/aruba/.;/x"} {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		if name, rest, err := Split(u); err == nil {
			t.Errorf("Split(%q) = %q, %q; want a refusal", raw, name, rest)
		}
	}
}

func TestSplitUnescapesTheProfileName(t *testing.T) {
	u, _ := url.Parse("/proxy/my%20api/x")
	if name, _, err := Split(u); err != nil || name != "my api" {
		t.Errorf("Split = %q, %v; want the profile name unescaped", name, err)
	}
}

// Dot segments hidden behind an escaped parameter separator ("..%3b" is
// "..;" once decoded, which Tomcat reads as "..") and literal backslashes
// are refused: they reached the vendor before.
func TestSplitRefusesDecodedDotSegments(t *testing.T) {
	for _, raw := range []string{"/proxy/aruba/..%3b/admin", "/proxy/aruba/a/..%3Bx/b", "/proxy/aruba/.%3b/x",
		"/proxy/aruba/a%0d%0ab", "/proxy/aruba/a%7fb"} {
		if name, rest, err := SplitPath(raw); err == nil {
			t.Errorf("SplitPath(%q) = %q, %q; want a refusal", raw, name, rest)
		}
	}
	// What some servers read as dots or slashes: overlong UTF-8, the
	// characters NFKC folds into them, what Windows trims to "..".
	for _, raw := range []string{"/proxy/aruba/%C0%AE%C0%AE/x", "/proxy/aruba/..%C0%AF../x", "/proxy/aruba/%EF%BC%8E%EF%BC%8E/x",
		"/proxy/aruba/a%EF%BC%8Fb", "/proxy/aruba/...", "/proxy/aruba/..%20/x", "/proxy/aruba/%3b../x", "/proxy/aruba/a%ff"} {
		if name, rest, err := SplitPath(raw); err == nil {
			t.Errorf("SplitPath(%q) = %q, %q; want a refusal", raw, name, rest)
		}
	}
	// A backslash as the server's request parser leaves it in the URL.
	u := httptest.NewRequest("GET", "http://broker.local/proxy/aruba/a%5Cb", nil).URL
	u.RawPath, u.Path = "/proxy/aruba/a\\b", "/proxy/aruba/a\\b"
	if _, _, err := Split(u); err == nil {
		t.Errorf("Split(%q): want a refusal", u.EscapedPath())
	}
}
