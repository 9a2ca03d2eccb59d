package provider

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/failure"
	"github.com/tokenbroker/tokenbroker/internal/httpx"
	"github.com/tokenbroker/tokenbroker/token"
)

// seen is one request as the server received it.
type seen struct {
	Method, Path, ContentType, Authorization string
	Query, Form                              url.Values
	Body                                     string
}

// recorder is a token endpoint that records requests and answers with a
// fixed status and body.
type recorder struct {
	mu     sync.Mutex
	reqs   []seen
	status int
	ctype  string
	body   string
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	form, _ := url.ParseQuery(string(b))
	if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		form = nil
	}
	rec.mu.Lock()
	rec.reqs = append(rec.reqs, seen{r.Method, r.URL.Path, r.Header.Get("Content-Type"), r.Header.Get("Authorization"), r.URL.Query(), form, string(b)})
	status, ctype, body := rec.status, rec.ctype, rec.body
	rec.mu.Unlock()
	if ctype == "" {
		ctype = "application/json"
	}
	w.Header().Set("Content-Type", ctype)
	if status == 0 {
		status = 200
	}
	w.WriteHeader(status)
	io.WriteString(w, body)
}

func (rec *recorder) last(t *testing.T) seen {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.reqs) == 0 {
		t.Fatal("no request reached the server")
	}
	return rec.reqs[len(rec.reqs)-1]
}

var fixedNow = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

func newProvider(t *testing.T, p *config.Profile) Provider {
	t.Helper()
	if p.Name == "" {
		p.Name = "test"
	}
	pr, err := New(p, Env{Now: func() time.Time { return fixedNow }})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return pr
}

func serve(t *testing.T, rec *recorder) string {
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	return srv.URL
}

func basic(id, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(id+":"+secret))
}

func wantParams(t *testing.T, where string, got url.Values, want map[string]string) {
	t.Helper()
	for k, v := range want {
		if g := got.Get(k); g != v {
			t.Errorf("%s %s = %q, want %q", where, k, g, v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s has unexpected %s", where, k)
		}
	}
}

func TestRuckusSendsClientCredentialsInFormBody(t *testing.T) {
	rec := &recorder{body: `{"access_token":"eyJhbGciOiJSUzI1NiJ9.eyJ0ZW5hbnRfaWQiOiIwYTFiMmMifQ.c2ln","token_type":"Bearer","expires_in":"7199"}`}
	base := serve(t, rec)
	p := newProvider(t, &config.Profile{Provider: "ruckus-one", BaseURL: base, TenantID: "0a1b2c", ClientID: "cid", ClientSecret: "s3cret", DelegateTenant: "d-1"})
	tok, err := p.Obtain(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := rec.last(t)
	if r.Method != "POST" || r.Path != "/oauth2/token/0a1b2c" {
		t.Errorf("request %s %s, want POST /oauth2/token/0a1b2c", r.Method, r.Path)
	}
	if r.Authorization != "" {
		t.Errorf("Authorization = %q, want none (RUCKUS wants the secret in the body)", r.Authorization)
	}
	if r.ContentType != "application/x-www-form-urlencoded" {
		t.Errorf("Content-Type = %q", r.ContentType)
	}
	wantParams(t, "form", r.Form, map[string]string{"grant_type": "client_credentials", "client_id": "cid", "client_secret": "s3cret"})
	wantParams(t, "query", r.Query, nil)
	if want := fixedNow.Add(7199 * time.Second); !tok.Expiry.Equal(want) {
		t.Errorf("expiry %v, want %v (expires_in given as a string)", tok.Expiry, want)
	}
	h := p.Headers(tok)
	if got := h.Get("Authorization"); got != "Bearer "+tok.AccessToken {
		t.Errorf("Authorization header %q", got)
	}
	// Spelled as RUCKUS documents it, not canonicalised.
	//lint:ignore SA1008 the vendor's own spelling is what is tested
	if got := h["x-rks-tenantid"]; len(got) != 1 || got[0] != "d-1" {
		t.Errorf("x-rks-tenantid = %q, want d-1 (headers %v)", got, h)
	}
}

func TestRuckusRegionsAndTokenURLOverride(t *testing.T) {
	for region, want := range map[string][2]string{
		"us":   {"https://ruckus.cloud/oauth2/token/T", "https://api.ruckus.cloud"},
		"eu":   {"https://eu.ruckus.cloud/oauth2/token/T", "https://api.eu.ruckus.cloud"},
		"asia": {"https://asia.ruckus.cloud/oauth2/token/T", "https://api.asia.ruckus.cloud"},
	} {
		p := newProvider(t, &config.Profile{Provider: "ruckus-one", Region: region, TenantID: "T", ClientID: "a", ClientSecret: "b"})
		o := p.(*oauthProvider)
		if o.tokenURL != want[0] || o.Describe().APIBase != want[1] {
			t.Errorf("region %s: token %s api %s, want %v", region, o.tokenURL, o.Describe().APIBase, want)
		}
	}
	p := newProvider(t, &config.Profile{Provider: "ruckus-one", Region: "eu", TenantID: "T", ClientID: "a", ClientSecret: "b",
		TokenURL: "https://api.eu.ruckus.cloud/oauth2/token/T"})
	if got := p.(*oauthProvider).tokenURL; got != "https://api.eu.ruckus.cloud/oauth2/token/T" {
		t.Errorf("token_url override ignored: %s", got)
	}
}

func TestArubaRegionsAreTheSeedsEleven(t *testing.T) {
	want := map[string]string{
		"us-1": "app1-apigw.central.arubanetworks.com", "us-2": "apigw-prod2.central.arubanetworks.com",
		"us-west-4": "apigw-uswest4.central.arubanetworks.com", "eu-1": "eu-apigw.central.arubanetworks.com",
		"eu-2": "apigw-eucentral2.central.arubanetworks.com", "eu-3": "apigw-eucentral3.central.arubanetworks.com",
		"ca-1": "apigw-ca.central.arubanetworks.com", "cn-1": "apigw.central.arubanetworks.com.cn",
		"apac-1": "api-ap.central.arubanetworks.com", "apac-east1": "apigw-apaceast.central.arubanetworks.com",
		"apac-south1": "apigw-apacsouth.central.arubanetworks.com",
	}
	if len(vendors["aruba-central"].Regions) != len(want) {
		t.Errorf("%d regions, want %d", len(vendors["aruba-central"].Regions), len(want))
	}
	for region, host := range want {
		p := newProvider(t, &config.Profile{Provider: "aruba-central", Region: region, ClientID: "a", ClientSecret: "b"})
		o := p.(*aruba)
		if o.tokenURL != "https://"+host+"/oauth2/token" || o.apiBase != "https://"+host {
			t.Errorf("%s: %s %s", region, o.tokenURL, o.apiBase)
		}
	}
}

func TestArubaRefreshSendsParametersInQueryString(t *testing.T) {
	rec := &recorder{body: `{"access_token":"new-at","refresh_token":"new-rt","expires_in":7200,"token_type":"bearer"}`}
	base := serve(t, rec)
	p := newProvider(t, &config.Profile{Provider: "aruba-central", BaseURL: base, ClientID: "cid", ClientSecret: "s3cret", DelegateTenant: "cust-9"})
	prev := &token.Token{AccessToken: "old-at", RefreshToken: "old-rt", Extra: map[string]any{"appname": "netops"}}
	tok, err := p.Obtain(context.Background(), prev)
	if err != nil {
		t.Fatal(err)
	}
	r := rec.last(t)
	if r.Method != "POST" || r.Path != "/oauth2/token" || r.Body != "" || r.Authorization != "" {
		t.Errorf("got %s %s body %q auth %q; want POST /oauth2/token, empty body, no Basic", r.Method, r.Path, r.Body, r.Authorization)
	}
	wantParams(t, "query", r.Query, map[string]string{"client_id": "cid", "client_secret": "s3cret", "grant_type": "refresh_token", "refresh_token": "old-rt"})
	if tok.RefreshToken != "new-rt" || tok.PrevRefreshToken != "old-rt" {
		t.Errorf("refresh token %q prev %q: want the newest kept and the old as fallback", tok.RefreshToken, tok.PrevRefreshToken)
	}
	if !tok.RefreshExpiry.Equal(fixedNow.Add(15 * 24 * time.Hour)) {
		t.Errorf("refresh expiry %v, want 15 days idle limit", tok.RefreshExpiry)
	}
	if tok.Extra["appname"] != "netops" {
		t.Errorf("extra fields not carried over: %v", tok.Extra)
	}
	if prev.RefreshToken != "old-rt" || prev.PrevRefreshToken != "" {
		t.Error("Obtain changed prev")
	}
	//lint:ignore SA1008 the vendor's own spelling is what is tested
	if got := p.Headers(tok)["TenantID"]; len(got) != 1 || got[0] != "cust-9" {
		t.Errorf("TenantID header %q", got)
	}
}

func TestArubaWithoutTokenNeedsLogin(t *testing.T) {
	p := newProvider(t, &config.Profile{Name: "aruba-us", Provider: "aruba-central", Region: "us-1", ClientID: "a", ClientSecret: "b"})
	_, err := p.Obtain(context.Background(), nil)
	if failure.KindOf(err) != failure.Rejected || !strings.Contains(err.Error(), "tokenbroker login aruba-us") {
		t.Fatalf("err = %v, want Rejected naming `tokenbroker login aruba-us`", err)
	}
}

func TestArubaImportOfflineToken(t *testing.T) {
	var vectors map[string]json.RawMessage
	b, err := os.ReadFile("testdata/token-responses.json")
	if err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(b, &vectors)
	p := newProvider(t, &config.Profile{Provider: "aruba-central", Region: "eu-1", ClientID: "a", ClientSecret: "b"})
	tok, err := p.(Importer).Import(vectors["aruba-central-offline-token"])
	if err != nil {
		t.Fatal(err)
	}
	created := time.UnixMilli(1582847137105)
	if !tok.ObtainedAt.Equal(created) || !tok.Expiry.Equal(created.Add(7200*time.Second)) {
		t.Errorf("obtained %v expiry %v; want created_at (ms) + 7200 s", tok.ObtainedAt, tok.Expiry)
	}
	if tok.AccessToken != "ouzMaXEBbB6XqGtsWomK7MvaTuhrqDQ1" || tok.RefreshToken != "Yr2ZJbHmQqJn0WqGkCwW4Xn8Ueq7xS2T" || tok.Scope != "all" {
		t.Errorf("token fields: %+v", tok)
	}
	if tok.Extra["appname"] != "netops-automation" || tok.Extra["authenticated_userid"] != "netops@example.com" {
		t.Errorf("extra fields: %v", tok.Extra)
	}
	for _, bad := range []string{`not json`, `{"refresh_token":"x"}`, `{"access_token":"a","created_at":"soon"}`} {
		if _, err := p.(Importer).Import([]byte(bad)); failure.KindOf(err) != failure.Config {
			t.Errorf("import %s: err %v, want a config error", bad, err)
		}
	}
}

func TestRingCentralJWTBearerWithBasic(t *testing.T) {
	rec := &recorder{body: `{"access_token":"at","token_type":"bearer","expires_in":3600,"refresh_token":"rt","refresh_token_expires_in":604800,"scope":"ReadAccounts","owner_id":"1234"}`}
	base := serve(t, rec)
	p := newProvider(t, &config.Profile{Provider: "ringcentral", BaseURL: base, ClientID: "rc id", ClientSecret: "rc/secret", JWT: "cred.jwt.value"})
	tok, err := p.Obtain(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := rec.last(t)
	if r.Path != "/restapi/oauth/token" || r.Authorization != basic(url.QueryEscape("rc id"), url.QueryEscape("rc/secret")) {
		t.Errorf("path %s auth %q", r.Path, r.Authorization)
	}
	wantParams(t, "form", r.Form, map[string]string{"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": "cred.jwt.value"})
	if !tok.RefreshExpiry.Equal(fixedNow.Add(604800*time.Second)) || tok.Extra["owner_id"] != "1234" || tok.Grant != "jwt_bearer" {
		t.Errorf("token %+v", tok)
	}
	// The refresh grant uses the refresh token, never the JWT again.
	rec.body = `{"access_token":"at2","token_type":"bearer","expires_in":3600,"refresh_token":"rt2"}`
	tok2, err := p.Obtain(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	r = rec.last(t)
	wantParams(t, "form", r.Form, map[string]string{"grant_type": "refresh_token", "refresh_token": "rt"})
	if r.Authorization == "" || tok2.RefreshToken != "rt2" || tok2.PrevRefreshToken != "rt" {
		t.Errorf("refresh: auth %q token %+v", r.Authorization, tok2)
	}
}

func jwtWith(claims map[string]any) string {
	b, _ := json.Marshal(claims)
	return "eyJhbGciOiJub25lIn0." + base64.RawURLEncoding.EncodeToString(b) + ".sig"
}

func TestRingCentralJWTChecks(t *testing.T) {
	var warnings []string
	mk := func(jwt string, env string) Provider {
		p, err := New(&config.Profile{Name: "rc", Provider: "ringcentral", Environment: env, ClientID: "a", ClientSecret: "b", JWT: config.Secret(jwt)},
			Env{Now: func() time.Time { return fixedNow }, Warn: func(s string) { warnings = append(warnings, s) }})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	sandboxJWT := jwtWith(map[string]any{"aud": "https://platform.devtest.ringcentral.com/restapi/oauth/token", "exp": fixedNow.Add(365 * 24 * time.Hour).Unix()})
	_, err := mk(sandboxJWT, "production").Obtain(context.Background(), nil)
	if failure.KindOf(err) != failure.Rejected || !strings.Contains(err.Error(), "other RingCentral environment") || !strings.Contains(err.Error(), "environment: sandbox") {
		t.Errorf("wrong environment: %v", err)
	}
	expired := jwtWith(map[string]any{"exp": fixedNow.Add(-time.Hour).Unix()})
	if _, err := mk(expired, "").Obtain(context.Background(), nil); failure.KindOf(err) != failure.Rejected || !strings.Contains(err.Error(), "expired") {
		t.Errorf("expired JWT: %v", err)
	}
	rec := &recorder{body: `{"access_token":"at","expires_in":3600}`}
	base := serve(t, rec)
	soon := jwtWith(map[string]any{"exp": fixedNow.Add(3 * 24 * time.Hour).Unix()})
	p, _ := New(&config.Profile{Name: "rc", Provider: "ringcentral", BaseURL: base, ClientID: "a", ClientSecret: "b", JWT: config.Secret(soon)},
		Env{Now: func() time.Time { return fixedNow }, Warn: func(s string) { warnings = append(warnings, s) }})
	if _, err := p.Obtain(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "expires on 2026-11-28") {
		t.Errorf("warnings %q, want one about the JWT expiring", warnings)
	}
	// The server's own audience complaint is put in plain words too.
	rec.status, rec.body = 400, `{"error":"invalid_grant","error_description":"Invalid JWT: audience is not this environment","errors":[{"errorCode":"OAU-149"}]}`
	if _, err := p.Obtain(context.Background(), nil); !strings.Contains(fmtErr(err), "other RingCentral environment") {
		t.Errorf("server audience error: %v", err)
	}
}

func fmtErr(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestWorkspaceOneBasicAndRefresh(t *testing.T) {
	rec := &recorder{body: `{"access_token":"at","token_type":"Bearer","expires_in":10799,"scope":"admin","refresh_token":"rt"}`}
	base := serve(t, rec)
	p := newProvider(t, &config.Profile{Provider: "workspace-one", BaseURL: base + "/", ClientID: "svc", ClientSecret: "pw"})
	tok, err := p.Obtain(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := rec.last(t)
	if r.Path != "/SAAS/auth/oauthtoken" || r.Authorization != basic("svc", "pw") {
		t.Errorf("path %s auth %q", r.Path, r.Authorization)
	}
	wantParams(t, "form", r.Form, map[string]string{"grant_type": "client_credentials"})
	// A refresh answer without refresh_token keeps the old one.
	rec.body = `{"access_token":"at2","token_type":"Bearer"}`
	tok2, err := p.Obtain(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	wantParams(t, "form", rec.last(t).Form, map[string]string{"grant_type": "refresh_token", "refresh_token": "rt"})
	if tok2.RefreshToken != "rt" || tok2.PrevRefreshToken != "" || !tok2.Expiry.IsZero() {
		t.Errorf("refresh kept %q prev %q expiry %v; want old refresh token, no fallback, unknown expiry", tok2.RefreshToken, tok2.PrevRefreshToken, tok2.Expiry)
	}
}

func TestGenericCatalystTokenFieldAndHeader(t *testing.T) {
	rec := &recorder{body: `{"Token":"eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.c2ln"}`}
	base := serve(t, rec)
	p := newProvider(t, &config.Profile{Provider: "oauth2", TokenURL: base + "/dna/system/api/v1/auth/token", ClientID: "admin", ClientSecret: "pw",
		TokenField: "Token", Header: "X-Auth-Token: {token}"})
	tok, err := p.Obtain(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := rec.last(t)
	if r.Authorization != basic("admin", "pw") || r.Path != "/dna/system/api/v1/auth/token" {
		t.Errorf("auth %q path %s", r.Authorization, r.Path)
	}
	h := p.Headers(tok)
	if h.Get("X-Auth-Token") != tok.AccessToken || h.Get("Authorization") != "" {
		t.Errorf("headers %v", h)
	}
}

func TestGenericAuthStyleIsPinned(t *testing.T) {
	rec := &recorder{status: 401, body: `{"error":"invalid_client"}`}
	base := serve(t, rec)
	p := newProvider(t, &config.Profile{Provider: "oauth2", TokenURL: base + "/token", ClientID: "id", ClientSecret: "sec", AuthStyle: "body", Scopes: []string{"read", "write"}})
	_, err := p.Obtain(context.Background(), nil)
	if failure.KindOf(err) != failure.Rejected {
		t.Fatalf("err %v, want Rejected", err)
	}
	if len(rec.reqs) != 1 {
		t.Fatalf("%d requests, want exactly 1: the auth style must never be retried in the other style", len(rec.reqs))
	}
	r := rec.last(t)
	if r.Authorization != "" {
		t.Errorf("Basic sent with auth_style body")
	}
	wantParams(t, "form", r.Form, map[string]string{"grant_type": "client_credentials", "client_id": "id", "client_secret": "sec", "scope": "read write"})
}

func TestStaticKeys(t *testing.T) {
	t.Setenv("MIST_KEY", "mist-key-value")
	for _, c := range []struct{ header, name, want string }{
		{"Authorization: Token {token}", "Authorization", "Token mist-key-value"},
		{"", "Authorization", "Bearer mist-key-value"},
	} {
		p := newProvider(t, &config.Profile{Provider: "static", APIKey: "env:MIST_KEY", Header: c.header})
		tok, err := p.Obtain(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.Headers(tok).Get(c.name); got != c.want {
			t.Errorf("header %q: %q, want %q", c.header, got, c.want)
		}
	}
}

func TestBadProfilesAreConfigErrors(t *testing.T) {
	cases := map[string]struct {
		p    config.Profile
		want string
	}{
		"unknown provider":          {config.Profile{Provider: "arubba"}, `unknown provider "arubba"`},
		"unknown region":            {config.Profile{Provider: "aruba-central", Region: "mars-1", ClientID: "a", ClientSecret: "b"}, `unknown Aruba Central region "mars-1"`},
		"no region":                 {config.Profile{Provider: "aruba-central", ClientID: "a", ClientSecret: "b"}, "needs `region`"},
		"no tenant":                 {config.Profile{Provider: "ruckus-one", ClientID: "a", ClientSecret: "b"}, "needs `tenant_id`"},
		"no secret":                 {config.Profile{Provider: "ruckus-one", ClientID: "a", TenantID: "t"}, "needs `client_secret`"},
		"no client id":              {config.Profile{Provider: "workspace-one", ClientSecret: "a", BaseURL: "https://x"}, "needs `client_id`"},
		"plain http":                {config.Profile{Provider: "ruckus-one", ClientID: "a", ClientSecret: "b", TenantID: "t", BaseURL: "http://ruckus.example.com"}, "plain http to ruckus.example.com refused"},
		"plain http token":          {config.Profile{Provider: "oauth2", ClientID: "a", ClientSecret: "b", TokenURL: "http://10.0.0.1/token"}, "plain http"},
		"bad header":                {config.Profile{Provider: "static", APIKey: "k", Header: "Bearer {token}"}, "header: must look like"},
		"tenants, no tenant header": {config.Profile{Provider: "ringcentral", JWT: "j", ClientID: "a", ClientSecret: "b", Tenants: config.Tenants{Discover: true}}, "needs a vendor with a tenant header"},
		"bad auth style":            {config.Profile{Provider: "oauth2", ClientID: "a", ClientSecret: "b", TokenURL: "https://x/t", AuthStyle: "auto"}, "auth_style"},
		"unsupported grant":         {config.Profile{Provider: "oauth2", ClientID: "a", TokenURL: "https://x/t", Grant: "password"}, `grant "password"`},
		"static without key":        {config.Profile{Provider: "static"}, "needs `api_key`"},
	}
	for name, c := range cases {
		c.p.Name = "p1"
		_, err := New(&c.p, Env{})
		if failure.KindOf(err) != failure.Config || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), `"p1"`) {
			t.Errorf("%s: err %v, want a config error naming the profile and containing %q", name, err, c.want)
		}
	}
}

func TestUnsetSecretReferenceNamesTheVariable(t *testing.T) {
	rec := &recorder{body: `{"access_token":"x"}`}
	base := serve(t, rec)
	p := newProvider(t, &config.Profile{Name: "r1", Provider: "ruckus-one", BaseURL: base, TenantID: "t", ClientID: "id", ClientSecret: "env:TB_TEST_UNSET_VAR"})
	_, err := p.Obtain(context.Background(), nil)
	if failure.KindOf(err) != failure.Config || !strings.Contains(err.Error(), "TB_TEST_UNSET_VAR") {
		t.Errorf("err %v", err)
	}
	p = newProvider(t, &config.Profile{Name: "r1", Provider: "ruckus-one", BaseURL: base, TenantID: "t", ClientID: "id", ClientSecret: "file:/nonexistent/secret"})
	_, err = p.Obtain(context.Background(), nil)
	if failure.KindOf(err) != failure.Config || !strings.Contains(err.Error(), "/nonexistent/secret") {
		t.Errorf("err %v", err)
	}
	if len(rec.reqs) != 0 {
		t.Error("a request was sent without the secret")
	}
}

func TestTokenEndpointFailuresAreClassed(t *testing.T) {
	big := strings.Repeat("x", 10<<20)
	cases := []struct {
		name         string
		rec          *recorder
		kind         failure.Kind
		msg          string
		retryAfterIs time.Duration
	}{
		{"html", &recorder{ctype: "text/html", body: "<html>login</html>"}, failure.Protocol, "HTML page", 0},
		{"invalid json", &recorder{body: "{not json"}, failure.Protocol, "invalid JSON", 0},
		{"no access_token", &recorder{body: `{"token_type":"bearer"}`}, failure.Protocol, "without an access token", 0},
		{"10 MB body", &recorder{body: `{"access_token":"` + big + `"}`}, failure.Protocol, "larger than the limit", 0},
		{"400", &recorder{status: 400, body: `{"extra":{},"message":"Invalid client"}`}, failure.Rejected, "rejected the credentials (400): Invalid client", 0},
		{"401", &recorder{status: 401, body: `{"message":"Auth failure","status":false}`}, failure.Rejected, "Auth failure", 0},
		{"429", &recorder{status: 429, body: `{"message":"API rate limit exceeded"}`}, failure.RateLimited, "rate limiting", 0},
		{"503", &recorder{status: 503, body: `oops`}, failure.Unreachable, "503", 0},
		{"404", &recorder{status: 404, body: `{}`}, failure.Config, "404", 0},
	}
	// Workspace ONE, and the generic provider's grants, which x/oauth2
	// runs: its errors are text, and are classed by the types the client
	// recorded, not by their wording.
	profiles := []struct {
		p    config.Profile
		path string
		prev *token.Token
	}{
		{config.Profile{Name: "w1", Provider: "workspace-one", ClientID: "id", ClientSecret: "sec"}, "/SAAS/auth/oauthtoken", nil},
		{config.Profile{Name: "w1", Provider: "oauth2", ClientID: "id", ClientSecret: "sec"}, "/token", nil},
		{config.Profile{Name: "w1", Provider: "oauth2", Grant: "authorization_code", ClientID: "id", ClientSecret: "sec", AuthorizationURL: "http://127.0.0.1:1/auth"}, "/token",
			&token.Token{AccessToken: "old", RefreshToken: "rt", Expiry: time.Now().Add(-time.Minute)}},
	}
	for _, pr := range profiles {
		for _, c := range cases {
			base := serve(t, c.rec)
			prof := pr.p
			prof.BaseURL = base
			if prof.Provider == "oauth2" {
				prof.TokenURL = base + pr.path
			}
			p := newProvider(t, &prof)
			_, err := p.Obtain(context.Background(), pr.prev)
			if pr.prev != nil {
				c.msg = strings.Replace(c.msg, "the credentials", "the refresh token", 1)
			}
			if failure.KindOf(err) != c.kind || !strings.Contains(fmtErr(err), c.msg) {
				t.Errorf("%s %s (refresh %v): err %v (kind %v), want kind %v containing %q", prof.Provider, c.name, pr.prev != nil, err, failure.KindOf(err), c.kind, c.msg)
			}
			if err != nil && (!strings.Contains(err.Error(), `profile "w1"`) || !strings.Contains(err.Error(), pr.path)) {
				t.Errorf("%s %s: error does not name the profile and endpoint: %v", prof.Provider, c.name, err)
			}
		}
	}
}

func TestRetryAfterIsRead(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "60")
		w.WriteHeader(429)
	}))
	defer srv.Close()
	p := newProvider(t, &config.Profile{Provider: "workspace-one", BaseURL: srv.URL, ClientID: "id", ClientSecret: "sec"})
	_, err := p.Obtain(context.Background(), nil)
	var fe *failure.Error
	if !asFailure(err, &fe) || fe.RetryAfter != time.Minute {
		t.Fatalf("err %v, want RetryAfter 1m", err)
	}
}

func asFailure(err error, fe **failure.Error) bool {
	e, ok := err.(*failure.Error)
	*fe = e
	return ok
}

func TestNetworkFailures(t *testing.T) {
	// A redirect to another host would hand the secret to a stranger.
	other := httptest.NewServer(&recorder{body: `{"access_token":"x"}`})
	defer other.Close()
	redir := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, strings.Replace(other.URL, "127.0.0.1", "localhost", 1)+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer redir.Close()
	// TLS with a certificate nobody trusts.
	tlsSrv := httptest.NewTLSServer(&recorder{body: `{"access_token":"x"}`})
	defer tlsSrv.Close()
	// A server that never answers.
	hang := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(hang)
	// A port nobody listens on.
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close()

	cases := []struct {
		name, base string
		kind       failure.Kind
		msg        string
	}{
		{"redirect to another host", redir.URL, failure.Protocol, "redirected"},
		{"tls", tlsSrv.URL, failure.Unreachable, "TLS verification"},
		{"timeout", slow.URL, failure.Unreachable, "did not answer in time"},
		{"connection refused", closedURL, failure.Unreachable, "unreachable"},
	}
	for _, c := range cases {
		p, err := New(&config.Profile{Name: "w", Provider: "workspace-one", BaseURL: c.base, ClientID: "id", ClientSecret: "sec"},
			Env{HTTP: httpx.New(httpx.Options{Timeout: 300 * time.Millisecond, RejectHTML: true})})
		if err != nil {
			t.Fatal(err)
		}
		_, err = p.Obtain(context.Background(), nil)
		if failure.KindOf(err) != c.kind || !strings.Contains(fmtErr(err), c.msg) {
			t.Errorf("%s: err %v, want kind %v containing %q", c.name, err, c.kind, c.msg)
		}
	}
}

// A profile the provider refuses is named with the file and line where it
// is defined.
func TestProviderConfigErrorsNameTheLine(t *testing.T) {
	c, err := config.Parse([]byte("profiles:\n  ok:\n    provider: static\n    api_key: k\n    base_url: https://api.example.com\n  bad:\n    provider: oauth2\n    client_id: x\n"))
	if err != nil {
		t.Fatal(err)
	}
	_, err = New(c.Profiles["bad"], Env{})
	if failure.KindOf(err) != failure.Config || !strings.Contains(err.Error(), "(line 6)") {
		t.Fatalf("err %v, want a config error naming line 6", err)
	}
}

// `audience` goes with every grant that asks for a token, not only token
// exchange (Hydra, Auth0 and Okta read it on client credentials).
func TestAudienceOnClientCredentials(t *testing.T) {
	rec := &recorder{body: `{"access_token":"a","expires_in":60}`}
	base := serve(t, rec)
	for _, style := range []string{"basic", "private_key_jwt"} {
		prof := &config.Profile{Name: "aud", Provider: "oauth2", TokenURL: base + "/token", ClientID: "id", ClientSecret: "sec",
			AuthStyle: style, Audience: "https://api.example", Scopes: []string{"read"}}
		if style == "private_key_jwt" {
			prof.PrivateKey = pemOf(clientKey)
		}
		if _, err := newProvider(t, prof).Obtain(context.Background(), nil); err != nil {
			t.Fatal(err)
		}
		if f := rec.last(t).Form; f.Get("audience") != "https://api.example" || f.Get("scope") != "read" {
			t.Errorf("%s: form %v, want the audience and the scope", style, f)
		}
	}
}

// Vendor text is kept whole up to a few KB (the server's reason may be
// long), cut on a character boundary, with control characters (a
// terminal's escapes) taken out.
func TestVendorTextKeptWholeAndPrintable(t *testing.T) {
	long := strings.Repeat("é", 1000) + " the real reason"
	if got := vendorMessage([]byte(`{"error":"invalid_request","error_description":"` + long + `"}`)); !strings.HasSuffix(got, "the real reason") {
		t.Errorf("a 2 KB description was cut: ...%q", got[len(got)-40:])
	}
	huge := strings.Repeat("é", 5000)
	got := vendorMessage([]byte(`{"message":"` + huge + `"}`))
	if len(got) > maxVendorText+3 || !utf8.ValidString(got) || !strings.HasSuffix(got, "...") {
		t.Errorf("a 10 KB message: %d bytes, valid UTF-8 %v", len(got), utf8.ValidString(got))
	}
	if got := vendorMessage([]byte(`{"message":"bad\u001b[31m red\r\nline"}`)); strings.ContainsAny(got, "\x1b\r\n") {
		t.Errorf("control characters kept: %q", got)
	}
}
