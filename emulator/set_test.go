package emulator

import (
	"bufio"
	"io"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestStartAndClose(t *testing.T) {
	http.DefaultClient.CloseIdleConnections()
	before := runtime.NumGoroutine()
	clk := newClock()
	s, err := Start("127.0.0.1", clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if len(s.URLs) != len(vendorKeys) {
		t.Fatalf("URLs = %v", s.URLs)
	}
	seen := map[string]bool{}
	for _, k := range vendorKeys {
		u, err := url.Parse(s.URLs[k])
		if err != nil || u.Scheme != "http" || u.Hostname() != "127.0.0.1" || u.Port() == "" || seen[u.Host] {
			t.Fatalf("%s: bad or shared URL %q", k, s.URLs[k])
		}
		seen[u.Host] = true
	}
	get := func(rawURL string, headers ...string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, rawURL, nil)
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	// Each vendor is on its own server: the right handler answers.
	at, _ := offline(t, s.Aruba)
	if code, body := get(s.URLs["aruba-central"]+"/monitoring/v1/aps", "Authorization", "Bearer "+at); code != 200 {
		t.Fatalf("aruba: %d %s", code, body)
	}
	if code, _ := get(s.URLs["mist"]+"/api/v1/self", "Authorization", "Token "+s.Mist.Key); code != 200 {
		t.Fatalf("mist: %d", code)
	}
	if code, _ := get(s.URLs["meraki"]+"/api/v1/self", "Authorization", "Bearer "+s.Meraki.Key); code != 200 {
		t.Fatalf("meraki: %d", code)
	}
	if code, _ := get(s.URLs["ruckus-one"] + "/monitoring/v1/aps"); code != 404 {
		t.Fatalf("ruckus serves aruba paths: %d", code)
	}
	// The shared clock reaches every emulator.
	clk.Advance(2 * time.Hour)
	if s.Aruba.ValidAccessToken(at) {
		t.Fatal("clock not shared")
	}
	s.RingCentral.SetDown(true)
	if code, body := get(s.URLs["ringcentral"] + "/restapi/v1.0/account/~"); code != 503 || !strings.Contains(body, "service unavailable") {
		t.Fatalf("down: %d %s", code, body)
	}

	s.Close()
	s.Close() // idempotent
	if _, err := http.Get(s.URLs["aruba-central"] + "/"); err == nil {
		t.Fatal("server still answering after Close")
	}
	// No goroutine outlives the set (client-side connection goroutines take a moment to go).
	http.DefaultClient.CloseIdleConnections()
	deadline := time.Now().Add(2 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		runtime.Gosched()
		time.Sleep(5 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines after Close, %d before Start", n, before)
	}
}

func TestConfigYAML(t *testing.T) {
	s, err := Start("", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	y := s.ConfigYAML()
	// A light structural read: profile -> key -> value.
	profiles := map[string]map[string]string{}
	var cur string
	sc := bufio.NewScanner(strings.NewReader(y))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "#") || line == "profiles:":
		case strings.HasPrefix(line, "    "):
			k, v, ok := strings.Cut(strings.TrimSpace(line), ": ")
			if !ok || !strings.HasPrefix(v, `"`) || !strings.HasSuffix(v, `"`) {
				t.Fatalf("bad line %q", line)
			}
			profiles[cur][k] = strings.Trim(v, `"`)
		case strings.HasPrefix(line, "  ") && strings.HasSuffix(line, ":"):
			cur = strings.TrimSuffix(strings.TrimSpace(line), ":")
			profiles[cur] = map[string]string{}
		default:
			t.Fatalf("unexpected line %q in\n%s", line, y)
		}
	}
	want := map[string]map[string]string{
		"aruba": {"provider": "aruba-central", "base_url": s.URLs["aruba-central"], "client_id": "aruba-client-id",
			"client_secret": "aruba-client-secret", "customer_id": "cust-0001", "username": "netops@example.com", "password": "aruba-password"},
		"ruckus": {"provider": "ruckus-one", "base_url": s.URLs["ruckus-one"], "tenant_id": "0a1b2c3d4e5f",
			"client_id": "ruckus-client-id", "client_secret": "ruckus-client-secret"},
		"ringcentral": {"provider": "ringcentral", "base_url": s.URLs["ringcentral"], "client_id": "rc-client-id",
			"client_secret": "rc-client-secret", "jwt": s.RingCentral.JWT, "environment": "production"},
		"workspace-one": {"provider": "workspace-one", "base_url": s.URLs["workspace-one"], "client_id": "ws1-client-id", "client_secret": "ws1-client-secret"},
		"catalyst": {"provider": "oauth2", "base_url": s.URLs["catalyst-center"], "token_url": s.URLs["catalyst-center"] + "/dna/system/api/v1/auth/token",
			"grant": "client_credentials", "auth_style": "basic", "client_id": "admin", "client_secret": "catalyst-password",
			"token_field": "Token", "header": "X-Auth-Token: {token}"},
		"mist":   {"provider": "static", "base_url": s.URLs["mist"], "api_key": s.Mist.Key, "header": "Authorization: Token {token}"},
		"meraki": {"provider": "static", "base_url": s.URLs["meraki"], "api_key": s.Meraki.Key, "header": "Authorization: Bearer {token}"},
	}
	for name, fields := range want {
		for k, v := range fields {
			if got := profiles[name][k]; got != v {
				t.Errorf("%s.%s = %q, want %q", name, k, got, v)
			}
		}
	}
	if len(profiles) != len(want) {
		t.Errorf("profiles %v", profiles)
	}
}

func TestSplitListen(t *testing.T) {
	for in, want := range map[string]struct {
		host string
		port int
	}{
		"":               {"127.0.0.1", 0},
		"127.0.0.1":      {"127.0.0.1", 0},
		"127.0.0.1:9000": {"127.0.0.1", 9000},
		"[::1]":          {"::1", 0},
		"[::1]:9100":     {"::1", 9100},
		":9200":          {"127.0.0.1", 9200},
	} {
		h, p, err := splitListen(in)
		if err != nil || h != want.host || p != want.port {
			t.Errorf("splitListen(%q) = %q %d %v", in, h, p, err)
		}
	}
	if _, _, err := splitListen("127.0.0.1:65535"); err == nil {
		t.Error("a base port without room for seven servers was accepted")
	}
}
