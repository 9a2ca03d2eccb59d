package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tokenbroker/tokenbroker/emulator"
)

// result is one CLI run.
type result struct {
	code           int
	stdout, stderr string
}

// cli runs the command line in-process, exactly as main does.
func cli(t *testing.T, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(""), &out, &errb)
	return result{code, out.String(), errb.String()}
}

// world is a running emulator set and a config whose secrets are env:
// references with distinctive values, so that a leak is easy to find.
type world struct {
	set     *emulator.Set
	dir     string
	config  string
	secrets []string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	set, err := emulator.Start("127.0.0.1", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set.Close)
	w := &world{set: set, dir: t.TempDir()}
	set.Aruba.ClientSecret = "S3CRET-aruba-client-7f3a"
	set.Aruba.Password = "S3CRET-aruba-password-91c2"
	set.Ruckus.ClientSecret = "S3CRET-ruckus-client-0b4d"
	set.RingCentral.ClientSecret = "S3CRET-rc-client-55e1"
	set.WorkspaceOne.ClientSecret = "S3CRET-ws1-client-a8f0"
	env := map[string]string{
		"TB_ARUBA_SECRET": set.Aruba.ClientSecret, "TB_ARUBA_PASSWORD": set.Aruba.Password,
		"TB_RUCKUS_SECRET": set.Ruckus.ClientSecret, "TB_RC_SECRET": set.RingCentral.ClientSecret,
		"TB_RC_JWT": set.RingCentral.JWT, "TB_WS1_SECRET": set.WorkspaceOne.ClientSecret,
	}
	for k, v := range env {
		t.Setenv(k, v)
		w.secrets = append(w.secrets, v)
	}
	cfg := fmt.Sprintf(`state: sqlite:%s
profiles:
  aruba:
    provider: aruba-central
    base_url: %s
    client_id: %s
    client_secret: env:TB_ARUBA_SECRET
    customer_id: %s
    username: %s
    password: env:TB_ARUBA_PASSWORD
  ruckus:
    provider: ruckus-one
    base_url: %s
    tenant_id: %s
    client_id: %s
    client_secret: env:TB_RUCKUS_SECRET
    delegate_tenant: %s
  ringcentral:
    provider: ringcentral
    base_url: %s
    client_id: %s
    client_secret: env:TB_RC_SECRET
    jwt: env:TB_RC_JWT
  workspace-one:
    provider: workspace-one
    base_url: %s
    client_id: %s
    client_secret: env:TB_WS1_SECRET
`, filepath.Join(w.dir, "state", "state.db"),
		set.URLs["aruba-central"], set.Aruba.ClientID, set.Aruba.CustomerID, set.Aruba.Username,
		set.URLs["ruckus-one"], set.Ruckus.TenantID, set.Ruckus.ClientID, set.Ruckus.DelegatedTenants[0],
		set.URLs["ringcentral"], set.RingCentral.ClientID,
		set.URLs["workspace-one"], set.WorkspaceOne.ClientID)
	w.config = w.write(t, "config.yaml", cfg)
	return w
}

func (w *world) write(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(w.dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func (w *world) run(t *testing.T, args ...string) result {
	t.Helper()
	return cli(t, append([]string{"--config", w.config}, args...)...)
}

func mustOK(t *testing.T, r result) result {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("exit %d, stderr: %s", r.code, r.stderr)
	}
	return r
}

func TestTokenIsObtainedOnceAndReused(t *testing.T) {
	w := newWorld(t)
	first := mustOK(t, w.run(t, "token", "ruckus"))
	tok := strings.TrimSpace(first.stdout)
	if tok == "" || strings.Count(first.stdout, "\n") != 1 {
		t.Fatalf("stdout %q: want the token alone on one line", first.stdout)
	}
	second := mustOK(t, w.run(t, "token", "ruckus"))
	if strings.TrimSpace(second.stdout) != tok {
		t.Errorf("second run printed another token")
	}
	if n := w.set.Ruckus.TokenRequests(); n != 1 {
		t.Errorf("%d token requests reached the emulator, want 1", n)
	}
	var js struct {
		AccessToken string            `json:"access_token"`
		TokenType   string            `json:"token_type"`
		ExpiresAt   string            `json:"expires_at"`
		Headers     map[string]string `json:"headers"`
	}
	if err := json.Unmarshal([]byte(mustOK(t, w.run(t, "token", "ruckus", "--json")).stdout), &js); err != nil {
		t.Fatal(err)
	}
	if js.AccessToken != tok || js.ExpiresAt == "" || js.Headers["Authorization"] != "Bearer "+tok || js.Headers["x-rks-tenantid"] != w.set.Ruckus.DelegatedTenants[0] {
		t.Errorf("--json: %+v", js)
	}
	hdr := mustOK(t, w.run(t, "header", "ruckus")).stdout
	want := "Authorization: Bearer " + tok + "\nx-rks-tenantid: " + w.set.Ruckus.DelegatedTenants[0] + "\n"
	if hdr != want {
		t.Errorf("header printed %q, want %q", hdr, want)
	}
	// --min-ttl longer than the lifetime forces a new token.
	mustOK(t, w.run(t, "token", "ruckus", "--min-ttl", "3h"))
	if n := w.set.Ruckus.TokenRequests(); n != 2 {
		t.Errorf("--min-ttl 3h: %d token requests, want 2", n)
	}
}

func TestArubaImportRefreshLoginRevoke(t *testing.T) {
	w := newWorld(t)
	file := w.write(t, "offline.json", string(w.set.Aruba.IssueOfflineToken()))
	mustOK(t, w.run(t, "import", "aruba", file))
	var offline struct{ AccessToken, RefreshToken string }
	json.Unmarshal(w.set.Aruba.IssueOfflineToken(), &offline)
	tok := strings.TrimSpace(mustOK(t, w.run(t, "token", "aruba")).stdout)
	if !w.set.Aruba.ValidAccessToken(tok) {
		t.Fatal("the imported token is not valid at the emulator")
	}
	if w.set.Aruba.TokenRequests() != 0 {
		t.Error("a fresh imported token was refreshed")
	}
	mustOK(t, w.run(t, "refresh", "aruba"))
	var in struct {
		Grant      string `json:"grant"`
		Generation int64  `json:"generation"`
	}
	json.Unmarshal([]byte(mustOK(t, w.run(t, "inspect", "aruba", "--json")).stdout), &in)
	if in.Grant != "refresh_token" || in.Generation != 2 {
		t.Errorf("after refresh: %+v", in)
	}
	// The vendor is down: a refresh fails with exit 5 and the stored token stays.
	w.set.Aruba.SetDown(true)
	if r := w.run(t, "refresh", "aruba"); r.code != 5 {
		t.Errorf("refresh while down: exit %d (%s), want 5", r.code, r.stderr)
	}
	w.set.Aruba.SetDown(false)
	json.Unmarshal([]byte(mustOK(t, w.run(t, "inspect", "aruba", "--json")).stdout), &in)
	if in.Generation != 2 {
		t.Errorf("a failed refresh changed the stored token: generation %d", in.Generation)
	}
	mustOK(t, w.run(t, "login", "aruba"))
	tok = strings.TrimSpace(mustOK(t, w.run(t, "token", "aruba")).stdout)
	if !w.set.Aruba.ValidAccessToken(tok) {
		t.Fatal("token after login not valid")
	}
	mustOK(t, w.run(t, "revoke", "aruba"))
	if w.set.Aruba.ValidAccessToken(tok) {
		t.Error("revoke left the token valid at the vendor")
	}
	if r := w.run(t, "token", "aruba"); r.code != 3 || !strings.Contains(r.stderr, "tokenbroker login aruba") {
		t.Errorf("token after revoke: exit %d %q, want 3 and a login hint", r.code, r.stderr)
	}
}

// TestArubaLoginRetriesAStepAnotherProcessJustUsed: Aruba allows each of
// the first three OAuth steps once a second; a login right after another
// process's login waits and succeeds instead of failing with 429.
func TestArubaLoginRetriesAStepAnotherProcessJustUsed(t *testing.T) {
	w := newWorld(t)
	body := fmt.Sprintf(`{"username":%q,"password":%q}`, w.set.Aruba.Username, w.set.Aruba.Password)
	resp, err := http.Post(w.set.URLs["aruba-central"]+"/oauth2/authorize/central/api/login?client_id="+w.set.Aruba.ClientID, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("direct login: %d", resp.StatusCode)
	}
	mustOK(t, w.run(t, "login", "aruba"))
	if c := w.set.Aruba.Counts(); c["login"] != 3 {
		t.Errorf("counts %v: want 3 logins: the direct one, the refused one and its retry", c)
	}
}

func TestRingCentralNeverReexchangesTheJWTWhileRefreshWorks(t *testing.T) {
	w := newWorld(t)
	w.set.RingCentral.AuthLimitPerMinute = 0
	mustOK(t, w.run(t, "token", "ringcentral"))
	for range 3 {
		mustOK(t, w.run(t, "refresh", "ringcentral"))
	}
	c := w.set.RingCentral.Counts()
	if c["jwt_bearer"] != 1 || c["refresh_token"] != 3 {
		t.Errorf("counts %v, want 1 JWT exchange and 3 refreshes", c)
	}
	mustOK(t, w.run(t, "revoke", "ringcentral"))
}

// TestBadInput runs the CLI through its error paths: each gets the right
// exit code and a message that says what is wrong, and no secret is printed.
func TestBadInput(t *testing.T) {
	w := newWorld(t)
	closed := httptest.NewServer(nil)
	closedURL := closed.URL
	closed.Close()
	w.set.RingCentral.AuthLimitPerMinute = 1
	mustOK(t, w.run(t, "token", "ringcentral")) // uses up the auth limit

	n := 0
	profile := func(body string) string {
		n++
		return w.write(t, fmt.Sprintf("bad%d.yaml", n), "state: sqlite:"+filepath.Join(w.dir, "bad.db")+"\nprofiles:\n  p:\n"+body)
	}
	cases := []struct {
		name   string
		config string // empty: the world's config
		args   []string
		code   int
		want   string
	}{
		{"unknown profile", "", []string{"token", "nope"}, 2, `unknown profile "nope"`},
		{"usage", "", []string{"token"}, 2, "accepts 1 arg"},
		{"unknown command", "", []string{"tokne"}, 2, "unknown command"},
		{"unknown provider", profile("    provider: arubba\n"), []string{"token", "p"}, 2, `unknown provider "arubba"`},
		{"unknown region", profile("    provider: aruba-central\n    region: mars\n    client_id: a\n    client_secret: b\n"), []string{"token", "p"}, 2, `region "mars"`},
		{"missing secret", profile("    provider: ruckus-one\n    tenant_id: t\n    client_id: a\n"), []string{"token", "p"}, 2, "needs `client_secret`"},
		{"missing tenant", profile("    provider: ruckus-one\n    client_id: a\n    client_secret: b\n"), []string{"token", "p"}, 2, "needs `tenant_id`"},
		{"env unset", profile("    provider: ruckus-one\n    base_url: " + w.set.URLs["ruckus-one"] + "\n    tenant_id: t\n    client_id: a\n    client_secret: env:TB_NOT_SET_ANYWHERE\n"), []string{"token", "p"}, 2, "TB_NOT_SET_ANYWHERE"},
		{"file unreadable", profile("    provider: ruckus-one\n    base_url: " + w.set.URLs["ruckus-one"] + "\n    tenant_id: t\n    client_id: a\n    client_secret: file:/nonexistent/tb-secret\n"), []string{"token", "p"}, 2, "/nonexistent/tb-secret"},
		{"plain http", profile("    provider: ruckus-one\n    base_url: http://tokens.example.invalid\n    tenant_id: t\n    client_id: a\n    client_secret: b\n"), []string{"token", "p"}, 2, "plain http to tokens.example.invalid refused"},
		{"malformed yaml", w.write(t, "broken.yaml", "profiles:\n  p:\n    provider: [unclosed\n"), []string{"token", "p"}, 2, "line"},
		{"unknown key", profile("    provider: ruckus-one\n    clinet_id: a\n"), []string{"token", "p"}, 2, "clinet_id"},
		{"missing config", filepath.Join(w.dir, "absent.yaml"), []string{"token", "p"}, 2, "absent.yaml"},
		{"rejected 401", profile("    provider: ruckus-one\n    base_url: " + w.set.URLs["ruckus-one"] + "\n    tenant_id: " + w.set.Ruckus.TenantID + "\n    client_id: " + w.set.Ruckus.ClientID + "\n    client_secret: env:TB_ARUBA_SECRET\n"), []string{"token", "p"}, 3, "RUCKUS One rejected the credentials"},
		{"rate limited", "", []string{"refresh", "ringcentral"}, 4, "rate limiting"},
		{"unreachable", profile("    provider: workspace-one\n    base_url: " + closedURL + "\n    client_id: a\n    client_secret: b\n"), []string{"token", "p"}, 5, "unreachable"},
		{"import garbage", "", []string{"import", "aruba", w.write(t, "garbage.json", "<html>")}, 2, "not a token JSON"},
		{"no login for ruckus", "", []string{"login", "ruckus"}, 2, "no interactive login"},
	}
	var printed strings.Builder
	for _, c := range cases {
		cfg := c.config
		if cfg == "" {
			cfg = w.config
		}
		r := cli(t, append([]string{"--config", cfg}, c.args...)...)
		printed.WriteString(r.stdout + r.stderr)
		if r.code != c.code || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%s: exit %d, stderr %q; want exit %d and %q", c.name, r.code, r.stderr, c.code, c.want)
		}
		if r.stdout != "" {
			t.Errorf("%s: printed %q on stdout; errors belong on stderr", c.name, r.stdout)
		}
	}
	for _, s := range w.secrets {
		if strings.Contains(printed.String(), s) {
			t.Errorf("a secret was printed: %.12s...", s)
		}
	}
}

func TestDemoPasses(t *testing.T) {
	r := cli(t, "demo")
	if r.code != 0 || !strings.Contains(r.stdout, " 0 failed") {
		t.Fatalf("demo exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, step := range []string{"import offline token", "login (CSRF + auth code)", "MSP login", "revoked token refused"} {
		if !strings.Contains(r.stdout, step) {
			t.Errorf("demo lacks step %q", step)
		}
	}
}

// `import PROFILE --refresh-token` takes the configured seed in once:
// `token` before it exits 3 saying what to run, and a second take-in
// exits 2.
func TestImportRefreshTokenSeed(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"access_token":"at-from-seed","token_type":"Bearer","expires_in":3600,"refresh_token":"rt-next"}`)
	}))
	defer srv.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfg, []byte("state: sqlite:"+filepath.Join(dir, "state.db")+"\nprofiles:\n  idp:\n    provider: oauth2\n    grant: refresh_token\n    token_url: "+srv.URL+"/token\n    client_id: id\n    client_secret: env:TB_SEED_SECRET\n    refresh_token: env:TB_SEED\n"), 0o600)
	t.Setenv("TB_SEED_SECRET", "sec")
	t.Setenv("TB_SEED", "the-seed")
	if r := cli(t, "--config", cfg, "token", "idp"); r.code != 3 || !strings.Contains(r.stderr, "import idp --refresh-token") {
		t.Fatalf("token before the take-in: exit %d, %s", r.code, r.stderr)
	}
	if r := mustOK(t, cli(t, "--config", cfg, "import", "idp", "--refresh-token")); !strings.Contains(r.stdout, "refresh_token taken in") {
		t.Errorf("import --refresh-token: %q", r.stdout)
	}
	if r := mustOK(t, cli(t, "--config", cfg, "token", "idp")); strings.TrimSpace(r.stdout) != "at-from-seed" {
		t.Errorf("token after the take-in: %q", r.stdout)
	}
	if r := cli(t, "--config", cfg, "import", "idp", "--refresh-token"); r.code != 2 || !strings.Contains(r.stderr, "already") {
		t.Errorf("a second take-in: exit %d, %s", r.code, r.stderr)
	}
}
