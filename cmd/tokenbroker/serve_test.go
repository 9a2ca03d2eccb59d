package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"io"
	stdlog "log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// startServe runs `tokenbroker serve` on a free port and returns its
// address once it logs that it is serving.
// logWatch collects serve's log lines and lets a test wait for one.
type logWatch struct {
	mu    sync.Mutex
	lines []string
	added chan struct{}
}

func (l *logWatch) add(line string) {
	l.mu.Lock()
	l.lines = append(l.lines, line)
	l.mu.Unlock()
	select {
	case l.added <- struct{}{}:
	default:
	}
}

func (l *logWatch) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// waitFor waits until a line containing s is logged.
func (l *logWatch) waitFor(t *testing.T, s string) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for !strings.Contains(l.String(), s) {
		select {
		case <-l.added:
		case <-timeout:
			t.Fatalf("serve never logged %q:\n%s", s, l)
		}
	}
}

func startServe(t *testing.T, p *proc, env ...string) (*exec.Cmd, string, *logWatch) {
	t.Helper()
	cmd := p.command(t, "serve", "--listen", "127.0.0.1:0")
	cmd.Env = append(append([]string{}, p.env...), env...)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	log := &logWatch{added: make(chan struct{}, 1)}
	addr := make(chan string, 1)
	re := regexp.MustCompile(`msg=serving listen=(\S+)`)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			log.add(sc.Text())
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				addr <- "http://" + m[1]
			}
		}
	}()
	select {
	case a := <-addr:
		return cmd, a, log
	case <-time.After(20 * time.Second):
		t.Fatalf("serve did not start: %s", log)
	}
	return nil, "", nil
}

func apiGet(t *testing.T, url, key string) (int, string) {
	t.Helper()
	return apiCall(t, http.MethodGet, url, key, nil)
}

// apiCall sends a request to serve with the broker key and returns the
// status and body.
func apiCall(t *testing.T, method, url, key string, body io.Reader) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, body)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestServeReloadsOnSIGHUPAndDrainsOnSIGTERM runs serve as a real process.
func TestServeReloadsOnSIGHUPAndDrainsOnSIGTERM(t *testing.T) {
	p := newProc(t, nil)
	// A slow upstream, to have a request in flight when SIGTERM arrives.
	arrived, release := make(chan struct{}, 1), make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		<-release
		io.WriteString(w, "slow answer")
	}))
	defer slow.Close()
	cfg, _ := os.ReadFile(p.config)
	cfg = append(cfg, []byte("  slow:\n    provider: static\n    api_key: k\n    base_url: "+slow.URL+"\n")...)
	os.WriteFile(p.config, cfg, 0o644)
	const key = "serve-test-key"
	cmd, base, log := startServe(t, p, "TOKENBROKER_API_KEY="+key)
	code, body := apiGet(t, base+"/v1/profiles/ruckus/token", key)
	if code != 200 || !strings.Contains(body, "access_token") {
		t.Fatalf("token: %d %s", code, body)
	}
	// Add a profile and reload.
	cfg, _ = os.ReadFile(p.config)
	added := string(cfg) + "  ruckus-copy:\n    provider: ruckus-one\n    base_url: " + p.set.URLs["ruckus-one"] +
		"\n    tenant_id: " + p.set.Ruckus.TenantID + "\n    client_id: " + p.set.Ruckus.ClientID + "\n    client_secret: env:TB_RUCKUS_SECRET\n"
	os.WriteFile(p.config, []byte(added), 0o644)
	cmd.Process.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, body = apiGet(t, base+"/v1/profiles/ruckus-copy/token", key)
		if code == 200 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond) // the reload runs asynchronously after the signal
	}
	if code != 200 {
		t.Fatalf("after SIGHUP the new profile is unknown: %d %s", code, body)
	}
	// SIGTERM while a request is in flight: it completes, then serve exits 0.
	type answer struct {
		code int
		body string
		err  error
	}
	slowDone := make(chan answer, 1)
	go func() {
		req, _ := http.NewRequest(http.MethodGet, base+"/proxy/slow/x", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			slowDone <- answer{err: err}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		slowDone <- answer{code: resp.StatusCode, body: string(b)}
	}()
	<-arrived
	cmd.Process.Signal(syscall.SIGTERM)
	log.waitFor(t, "draining requests in flight")
	close(release)
	if a := <-slowDone; a.err != nil || a.code != 200 || a.body != "slow answer" {
		t.Errorf("in-flight request during drain: %+v, want it answered", a)
	}
	if err, ended := exitWithin(cmd, 30*time.Second); !ended {
		t.Fatal("serve did not exit after SIGTERM")
	} else if err != nil {
		t.Errorf("serve exited with %v after SIGTERM; log:\n%s", err, log)
	}
	if strings.Contains(log.String(), p.set.Ruckus.ClientSecret) {
		t.Error("the log contains a client secret")
	}
}

func TestServeMakesABrokerKeyFile(t *testing.T) {
	p := newProc(t, nil)
	_, base, log := startServe(t, p)
	keyFile := strings.TrimSuffix(p.statePath(), "state.db") + "api-key"
	b, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatalf("no key file: %v\n%s", err, log)
	}
	if fi, _ := os.Stat(keyFile); fi.Mode().Perm() != 0o600 {
		t.Errorf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	if !strings.Contains(log.String(), keyFile) {
		t.Errorf("the log does not name the key file:\n%s", log)
	}
	if code, _ := apiGet(t, base+"/v1/profiles", strings.TrimSpace(string(b))); code != 200 {
		t.Errorf("the key from the file: %d", code)
	}
	if code, _ := apiGet(t, base+"/v1/profiles", "wrong"); code != 401 {
		t.Errorf("a wrong key: %d, want 401", code)
	}
}

func TestCurlAndExec(t *testing.T) {
	p := newProc(t, nil)
	r := p.run(t, "curl", "ruckus", "/venues")
	var venues []map[string]any
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &venues) != nil || len(venues) == 0 {
		t.Fatalf("curl: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if r := p.run(t, "curl", "ruckus", "/nope"); r.code != 1 || !strings.Contains(r.stderr, "404") {
		t.Errorf("curl 404: %d %q", r.code, r.stderr)
	}
	if r := p.run(t, "curl", "ruckus", "http://127.0.0.1:1/elsewhere"); r.code != 2 || !strings.Contains(r.stderr, "outside the profile's API") {
		t.Errorf("curl to another host: %d %q", r.code, r.stderr)
	}
	// The proxy's path and method rule holds for curl too: exit 2, nothing sent.
	for _, args := range [][]string{{"/a/%2e%2e/admin"}, {"/venues/..%3b/admin"}, {"/a%5cb"}, {"-X", "TRACE", "/venues"}, {"-X", "CONNECT", "/venues"}} {
		if r := p.run(t, append([]string{"curl", "ruckus"}, args...)...); r.code != 2 || !strings.Contains(r.stderr, `profile "ruckus"`) {
			t.Errorf("curl %v: exit %d %q, want 2 naming the profile", args, r.code, r.stderr)
		}
	}
	// An API nobody listens on: exit 5 (vendor unreachable), naming the
	// profile, the API and what to check.
	cfg, _ := os.ReadFile(p.config)
	os.WriteFile(p.config, append(cfg, "  down:\n    provider: static\n    api_key: k\n    base_url: http://127.0.0.1:1/api\n"...), 0o644)
	if r := p.run(t, "curl", "down", "/items"); r.code != 5 || !strings.Contains(r.stderr, `profile "down"`) ||
		!strings.Contains(r.stderr, "could not be reached (http://127.0.0.1:1)") || !strings.Contains(r.stderr, "check the network") {
		t.Errorf("curl to an API that is down: %d %q", r.code, r.stderr)
	}
	token := strings.TrimSpace(p.run(t, "token", "ruckus").stdout)
	r = p.run(t, "exec", "ruckus", "--", "sh", "-c", `printf '%s|%s' "$TOKENBROKER_TOKEN" "$TOKENBROKER_BASE_URL"; exit 7`)
	if r.code != 7 || r.stdout != token+"|"+p.set.URLs["ruckus-one"] {
		t.Errorf("exec: exit %d stdout %q, want the child's exit 7 and its output", r.code, r.stdout)
	}
	if r := p.run(t, "exec", "ruckus", "sh"); r.code != 2 {
		t.Errorf("exec without --: exit %d", r.code)
	}
}

func TestServeOnAUnixSocket(t *testing.T) {
	p := newProc(t, nil)
	sock := filepath.Join(p.dir, "tb.sock")
	cmd := p.command(t, "serve", "--listen", "unix:"+sock)
	cmd.Env = append(append([]string{}, p.env...), "TOKENBROKER_API_KEY=k")
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	sc := bufio.NewScanner(stderr)
	for sc.Scan() && !strings.Contains(sc.Text(), "msg=serving") {
	}
	go io.Copy(io.Discard, stderr)
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode().Perm()&0o077 != 0 {
		t.Fatalf("socket %v %v: want it private to this user", fi, err)
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	req, _ := http.NewRequest(http.MethodGet, "http://tokenbroker/v1/profiles/ruckus/token", nil)
	req.Header.Set("Authorization", "Bearer k")
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("token over the socket: %d", resp.StatusCode)
	}
}

// TestServeOverHTTPS runs serve against a vendor served over HTTPS, as every
// real one is: the token request, the proxy (a plain GET, and a body too
// large to keep for a retry, streamed) all verify the vendor's
// certificate against the roots the process trusts (SSL_CERT_FILE here).
// Without that trust, every path fails with an error that names the profile
// and the certificate, and the vendor is never called.
func TestServeOverHTTPS(t *testing.T) {
	p := newProc(t, nil)
	var calls atomic.Int64
	var lastProto atomic.Value // of the last API call
	vendor := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.URL.Path == "/venues" {
			lastProto.Store(r.Proto)
		}
		p.set.Ruckus.ServeHTTP(w, r)
	}))
	vendor.Config.ErrorLog = stdlog.New(io.Discard, "", 0) // the refused handshakes
	vendor.EnableHTTP2 = true                              // as most vendor clouds offer it
	vendor.StartTLS()
	defer vendor.Close()
	cfg, _ := os.ReadFile(p.config)
	cfg = append(cfg, []byte("  ruckus-tls:\n    provider: ruckus-one\n    base_url: "+vendor.URL+
		"\n    tenant_id: "+p.set.Ruckus.TenantID+"\n    client_id: "+p.set.Ruckus.ClientID+"\n    client_secret: env:TB_RUCKUS_SECRET\n"+
		// No token request: the proxy's call is the first to meet the certificate.
		"  static-tls:\n    provider: static\n    api_key: not-a-ruckus-token\n    base_url: "+vendor.URL+"\n")...)
	os.WriteFile(p.config, cfg, 0o644)
	caFile := filepath.Join(p.dir, "vendor-ca.pem")
	os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: vendor.Certificate().Raw}), 0o644)

	const key = "https-test-key"
	post := func(url string, n int) (int, string) {
		return apiCall(t, http.MethodPost, url, key, bytes.NewReader(make([]byte, n)))
	}

	// Untrusted first: the state is shared, and a token already stored would
	// be served from it without calling the vendor.
	t.Run("untrusted", func(t *testing.T) {
		before := calls.Load()
		_, base, log := startServe(t, p, "TOKENBROKER_API_KEY="+key, "SSL_CERT_FILE="+filepath.Join(p.dir, "no-such-roots.pem"))
		code, body := apiGet(t, base+"/v1/profiles/ruckus-tls/token", key)
		t.Logf("token API: %d %s", code, body)
		if code == 200 || !strings.Contains(body, "ruckus-tls") || !strings.Contains(body, "certificate") {
			t.Errorf("token from an untrusted vendor: %d %s, want an error naming the profile and the certificate", code, body)
		}
		for _, profile := range []string{"ruckus-tls", "static-tls"} {
			for _, try := range []func() (int, string){
				func() (int, string) { return apiGet(t, base+"/proxy/"+profile+"/venues", key) },
				func() (int, string) { return post(base+"/proxy/"+profile+"/venues", 2<<20) },
			} {
				code, body := try()
				t.Logf("proxy: %d %s", code, body)
				if code != http.StatusBadGateway || !strings.Contains(body, profile) || !strings.Contains(body, "certificate") ||
					!strings.Contains(body, vendor.URL) || !strings.Contains(body, "CA certificates") {
					t.Errorf("proxy to an untrusted vendor: %d %s, want 502 naming the profile, the endpoint, the certificate and what to check", code, body)
				}
			}
		}
		// The CLI's curl meets the same check, on the token request and on
		// the API call alike.
		p.env = append(p.env, "SSL_CERT_FILE="+filepath.Join(p.dir, "no-such-roots.pem"))
		defer func() { p.env = p.env[:len(p.env)-1] }()
		for _, profile := range []string{"ruckus-tls", "static-tls"} {
			r := p.run(t, "curl", profile, "/venues")
			t.Logf("curl %s: exit %d: %s", profile, r.code, r.stderr)
			if r.code != 5 || !strings.Contains(r.stderr, profile) || !strings.Contains(r.stderr, "certificate") {
				t.Errorf("curl %s to an untrusted vendor: exit %d, stderr %q", profile, r.code, r.stderr)
			}
		}
		if n := calls.Load() - before; n != 0 {
			t.Errorf("the untrusted vendor answered %d HTTP requests; the TLS handshake should stop every one", n)
		}
		if strings.Contains(log.String(), p.set.Ruckus.ClientSecret) {
			t.Error("the log contains the client secret")
		}
	})

	t.Run("trusted", func(t *testing.T) {
		_, base, log := startServe(t, p, "TOKENBROKER_API_KEY="+key, "SSL_CERT_FILE="+caFile)
		if code, body := apiGet(t, base+"/v1/profiles/ruckus-tls/token", key); code != 200 || !strings.Contains(body, "access_token") {
			t.Fatalf("token over HTTPS: %d %s\n%s", code, body, log)
		}
		code, body := apiGet(t, base+"/proxy/ruckus-tls/venues", key)
		var venues []map[string]any
		if code != 200 || json.Unmarshal([]byte(body), &venues) != nil || len(venues) == 0 {
			t.Fatalf("proxy over HTTPS: %d %s", code, body)
		}
		if got := lastProto.Load(); got != "HTTP/2.0" {
			t.Errorf("the proxied call reached the vendor over %v, want HTTP/2 (which it offers)", got)
		}
		p.env = append(p.env, "SSL_CERT_FILE="+caFile)
		defer func() { p.env = p.env[:len(p.env)-1] }()
		if r := p.run(t, "curl", "ruckus-tls", "/venues"); r.code != 0 || json.Unmarshal([]byte(r.stdout), &venues) != nil || len(venues) == 0 {
			t.Errorf("curl over HTTPS: exit %d %q %q", r.code, r.stdout, r.stderr)
		}
		// Larger than a retry keeps: streamed to the vendor.
		if code, body := post(base+"/proxy/ruckus-tls/venues", 2<<20); code != http.StatusMethodNotAllowed || !strings.Contains(body, "POST is not allowed on /venues") {
			t.Fatalf("proxy, streamed body, over HTTPS: %d %s, want the vendor's own 405", code, body)
		}
	})
}
