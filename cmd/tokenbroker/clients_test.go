package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// `clients add` makes a key whose hash, pasted into the config, lets that
// script call the proxy for its profile and nothing more.
func TestClientsAddThenServe(t *testing.T) {
	p := newProc(t, nil)
	r := mustOK(t, p.run(t, "clients", "add", "ci-job"))
	key := strings.TrimSpace(r.stdout)
	hash := regexp.MustCompile(`key: (sha256:[0-9a-f]{64})`).FindStringSubmatch(r.stderr)
	if len(key) < 40 || hash == nil || strings.Contains(r.stderr, key) {
		t.Fatalf("clients add: stdout %q, stderr %q", r.stdout, r.stderr)
	}
	cfg, _ := os.ReadFile(p.config)
	cfg = append(cfg, []byte("clients:\n  ci-job:\n    key: "+hash[1]+"\n    profiles: [ruckus]\n")...)
	os.WriteFile(p.config, cfg, 0o644)
	if out := mustOK(t, p.run(t, "clients")).stdout; !strings.Contains(out, "ci-job") || !strings.Contains(out, "proxy") || strings.Contains(out, hash[1]) {
		t.Errorf("clients:\n%s", out)
	}
	_, base, _ := startServe(t, p, "TOKENBROKER_API_KEY="+replicaKey)
	as := &replica{base: base}
	get := func(path string) int {
		code, _, _ := as.callWith(key, "GET", path)
		return code
	}
	if code := get("/proxy/ruckus/venues"); code != 200 {
		t.Errorf("the client through the proxy: %d", code)
	}
	if code := get("/v1/profiles/ruckus/token"); code != 403 {
		t.Errorf("the proxy-only client reading a token: %d, want 403", code)
	}
	if code := get("/proxy/aruba/monitoring/v1/aps"); code != 403 {
		t.Errorf("the client on another profile: %d, want 403", code)
	}
}
