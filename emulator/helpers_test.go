package emulator

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeClock is a Clock that only moves when the test says so.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2025, 3, 10, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// result is one HTTP exchange as the tests look at it.
type result struct {
	status int
	header http.Header
	body   []byte
	obj    map[string]any // the body when it is a JSON object
}

// str returns a string field of the JSON body.
func (r result) str(key string) string {
	s, _ := r.obj[key].(string)
	return s
}

// send makes one request with plain net/http. headers are name/value pairs.
func send(t *testing.T, srv *httptest.Server, method, path, body string, headers ...string) result {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Add(headers[i], headers[i+1])
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	res := result{status: resp.StatusCode, header: resp.Header, body: raw}
	_ = json.Unmarshal(raw, &res.obj)
	return res
}

const formType = "application/x-www-form-urlencoded"

// form sends a form body with the right Content-Type.
func form(t *testing.T, srv *httptest.Server, path, body string, headers ...string) result {
	t.Helper()
	return send(t, srv, http.MethodPost, path, body, append([]string{"Content-Type", formType}, headers...)...)
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func wantStatus(t *testing.T, r result, want int) {
	t.Helper()
	if r.status != want {
		t.Fatalf("status = %d, want %d; body %s", r.status, want, r.body)
	}
}

// serve starts h on a test server that the test closes.
func serve(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// vector returns one entry of testdata/token-responses.json.
func vector(t *testing.T, name string) map[string]any {
	t.Helper()
	raw, err := os.ReadFile("testdata/token-responses.json")
	if err != nil {
		t.Fatal(err)
	}
	var all map[string]map[string]any
	if err := json.Unmarshal(raw, &all); err != nil {
		t.Fatal(err)
	}
	v, ok := all[name]
	if !ok {
		t.Fatalf("no vector %q", name)
	}
	return v
}

// sameKeys fails unless got has exactly the fields of the vendor's documented shape.
func sameKeys(t *testing.T, got, want map[string]any) {
	t.Helper()
	g, w := slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want))
	if !slices.Equal(g, w) {
		t.Fatalf("fields = %v, want %v", g, w)
	}
}

// claims decodes a JWT-shaped token's payload.
func claims(t *testing.T, tok string) map[string]any {
	t.Helper()
	c, err := parseJWT(tok)
	if err != nil {
		t.Fatalf("token %q is not JWT-shaped: %v", tok, err)
	}
	return c
}
