package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
)

// An MSP profile's tenants from the CLI, the token API and the proxy, all
// with the MSP's one token: PROFILE/TENANT by name or id, the vendor's
// TenantID set from the list, an unlisted tenant refused (exit 2, 403)
// before anything reaches the vendor.
func TestMSPTenantsEndToEnd(t *testing.T) {
	p := newProc(t, nil)
	acme, globex := p.set.Aruba.Customers[0].ID, p.set.Aruba.Customers[1].ID
	cfg, _ := os.ReadFile(p.config)
	cfg = []byte(strings.Replace(string(cfg), "    provider: aruba-central\n",
		"    provider: aruba-central\n    tenants: [{id: "+acme+", name: acme}, {id: "+globex+", name: globex}]\n", 1))
	os.WriteFile(p.config, cfg, 0o644)
	offline := p.dir + "/offline.json"
	os.WriteFile(offline, p.set.Aruba.IssueOfflineToken(), 0o600)
	mustOK(t, p.run(t, "import", "aruba", offline))

	msp := strings.TrimSpace(mustOK(t, p.run(t, "token", "aruba")).stdout)
	if got := strings.TrimSpace(mustOK(t, p.run(t, "token", "aruba/acme")).stdout); got != msp {
		t.Errorf("token aruba/acme = %q, want the MSP's token", got)
	}
	if h := mustOK(t, p.run(t, "header", "aruba/acme")).stdout; !strings.Contains(h, "TenantID: "+acme+"\n") || !strings.Contains(h, "Authorization: Bearer "+msp) {
		t.Errorf("header aruba/acme:\n%s", h)
	}
	if h := mustOK(t, p.run(t, "header", "aruba/"+globex)).stdout; !strings.Contains(h, "TenantID: "+globex+"\n") {
		t.Errorf("header by the tenant's id:\n%s", h)
	}
	if out := mustOK(t, p.run(t, "curl", "aruba/globex", "/monitoring/v1/aps")).stdout; !strings.Contains(out, `"aps"`) {
		t.Errorf("curl aruba/globex: %s", out)
	}
	if out := mustOK(t, p.run(t, "status")).stdout; !strings.Contains(out, "Aruba Central (MSP, 2 tenants)") {
		t.Errorf("status does not show the MSP's tenants:\n%s", out)
	}
	if r := p.run(t, "inspect", "aruba/acme", "--json"); r.code != 0 || !strings.Contains(r.stdout, `"tenant_header": "TenantID"`) {
		t.Errorf("inspect aruba/acme: %+v", r)
	}
	accepted, _ := p.set.Aruba.APIStats()
	for _, args := range [][]string{{"token", "aruba/initech"}, {"curl", "aruba/initech", "/monitoring/v1/aps"}, {"header", "ruckus/acme"}} {
		r := p.run(t, args...)
		if r.code != 2 || !strings.Contains(r.stderr, "tokenbroker tenants") {
			t.Errorf("%v: exit %d %q, want 2 and how to list the tenants", args, r.code, r.stderr)
		}
	}
	if now, _ := p.set.Aruba.APIStats(); now != accepted {
		t.Errorf("%d refused calls reached the vendor", now-accepted)
	}

	serveCmd, base, _ := startServe(t, p, "TOKENBROKER_API_KEY="+replicaKey)
	rep := &replica{base: base}
	code, body, _ := rep.get("/v1/profiles/aruba/tenants")
	if code != 200 || !strings.Contains(body, `"name":"acme"`) || !strings.Contains(body, globex) {
		t.Errorf("tenants: %d %s", code, body)
	}
	code, body, _ = rep.get("/v1/profiles/aruba/tenants/acme/token")
	var h struct {
		AccessToken string            `json:"access_token"`
		Headers     map[string]string `json:"headers"`
	}
	json.Unmarshal([]byte(body), &h)
	if code != 200 || h.AccessToken != msp || h.Headers["TenantID"] != acme {
		t.Errorf("tenant token: %d %s", code, body)
	}
	if code, body, _ := rep.get("/v1/profiles/aruba/tenants/initech/token"); code != http.StatusForbidden || !strings.Contains(body, "tenant_refused") {
		t.Errorf("unlisted tenant's token: %d %s", code, body)
	}
	proxied := func(tenant string, extra ...string) (int, string) {
		req, _ := http.NewRequest("GET", base+"/proxy/aruba/monitoring/v1/aps", nil)
		req.Header.Set("Authorization", "Bearer "+replicaKey)
		if tenant != "" {
			req.Header.Set("X-Tokenbroker-Tenant", tenant)
		}
		for i := 0; i+1 < len(extra); i += 2 {
			req.Header.Set(extra[i], extra[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		buf := make([]byte, 4096)
		n, _ := resp.Body.Read(buf)
		b.Write(buf[:n])
		return resp.StatusCode, b.String()
	}
	if code, body := proxied("globex"); code != 200 {
		t.Errorf("proxy for globex: %d %s", code, body)
	}
	before, _ := p.set.Aruba.APIStats()
	if code, body := proxied("initech"); code != http.StatusForbidden || !strings.Contains(body, "tenant_refused") {
		t.Errorf("proxy for an unlisted tenant: %d %s", code, body)
	}
	// A vendor tenant header from the caller never passes: the emulator
	// would refuse this unknown customer with 403.
	if code, body := proxied("", "TenantID", "0000"); code != 200 {
		t.Errorf("proxy with the caller's own TenantID: %d %s", code, body)
	}
	if after, _ := p.set.Aruba.APIStats(); after != before+1 {
		t.Errorf("%d calls reached the vendor for one accepted call", after-before)
	}
	// The calls per tenant, by id however the caller named the tenant.
	proxied(globex)
	var listed struct {
		Tenants []struct {
			ID       string `json:"id"`
			Calls    int    `json:"calls"`
			LastCall string `json:"last_call"`
		} `json:"tenants"`
	}
	_, body, _ = rep.get("/v1/profiles/aruba/tenants")
	json.Unmarshal([]byte(body), &listed)
	for _, tn := range listed.Tenants {
		if want := map[string]int{acme: 0, globex: 2}[tn.ID]; tn.Calls != want || (want > 0) != (tn.LastCall != "") {
			t.Errorf("tenant %s: %d calls (last %q), want %d", tn.ID, tn.Calls, tn.LastCall, want)
		}
	}
	if _, metrics, _ := rep.get("/metrics"); !strings.Contains(metrics, `tokenbroker_tenant_requests_total{profile="aruba",tenant="`+globex+`"} 2`) {
		t.Errorf("no per-tenant counter in /metrics")
	}
	// serve adds its counts to the state (every 30 s, and as it stops),
	// where the CLI reads them.
	serveCmd.Process.Signal(syscall.SIGTERM)
	serveCmd.Wait()
	out := mustOK(t, p.run(t, "tenants", "aruba")).stdout
	if !regexp.MustCompile(`globex\s+`+globex+`\s+2\s+20\d\d-`).MatchString(out) || !regexp.MustCompile(`acme\s+`+acme+`\s+0\s+-`).MatchString(out) {
		t.Errorf("tenants after serve stopped:\n%s", out)
	}
}

// `tenants: discover` asks Aruba's MSP API for the customers, 50 a call,
// keeps them in the state, and makes every one reachable as
// PROFILE/TENANT from the CLI, the token API and the proxy.
func TestMSPTenantsDiscovered(t *testing.T) {
	p := newProc(t, nil)
	cfg, _ := os.ReadFile(p.config)
	cfg = []byte(strings.Replace(string(cfg), "    provider: aruba-central\n", "    provider: aruba-central\n    tenants: discover\n", 1))
	os.WriteFile(p.config, cfg, 0o644)
	offline := p.dir + "/offline.json"
	os.WriteFile(offline, p.set.Aruba.IssueOfflineToken(), 0o600)
	mustOK(t, p.run(t, "import", "aruba", offline))

	if r := p.run(t, "tenants", "aruba"); r.code != 0 || !strings.Contains(r.stderr, "--refresh") {
		t.Errorf("before any discovery: %+v", r)
	}
	if r := p.run(t, "token", "aruba/customer-007"); r.code != 2 || !strings.Contains(r.stderr, "--refresh") {
		t.Errorf("a tenant before any discovery: exit %d %q", r.code, r.stderr)
	}
	before, _ := p.set.Aruba.APIStats()
	out := mustOK(t, p.run(t, "tenants", "aruba", "--refresh")).stdout
	after, _ := p.set.Aruba.APIStats()
	n := len(p.set.Aruba.Customers)
	if !strings.Contains(out, fmt.Sprintf("%d tenants, discovered", n)) || !strings.Contains(out, "customer-300") {
		t.Errorf("tenants --refresh:\n%s", out)
	}
	if pages := after - before; pages != int64((n+49)/50) {
		t.Errorf("%d calls to list %d customers, want %d pages of 50", pages, n, (n+49)/50)
	}
	var listed struct {
		Tenants []struct{ ID, Name string } `json:"tenants"`
	}
	json.Unmarshal([]byte(mustOK(t, p.run(t, "tenants", "aruba", "--json")).stdout), &listed)
	if len(listed.Tenants) != n {
		t.Fatalf("tenants --json from the state: %d tenants", len(listed.Tenants))
	}
	id := p.set.Aruba.Customers[6].ID
	if h := mustOK(t, p.run(t, "header", "aruba/customer-007")).stdout; !strings.Contains(h, "TenantID: "+id+"\n") {
		t.Errorf("header aruba/customer-007:\n%s", h)
	}

	_, base, _ := startServe(t, p, "TOKENBROKER_API_KEY="+replicaKey)
	rep := &replica{base: base}
	if code, body, _ := rep.get("/v1/profiles/aruba/tenants"); code != 200 || !strings.Contains(body, `"discovered_at"`) || !strings.Contains(body, id) {
		t.Errorf("tenants over HTTP: %d %.200s", code, body)
	}
	req, _ := http.NewRequest("GET", base+"/proxy/aruba/monitoring/v1/aps", nil)
	req.Header.Set("Authorization", "Bearer "+replicaKey)
	req.Header.Set("X-Tokenbroker-Tenant", "customer-250")
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("proxy for a discovered tenant: %v %v", resp, err)
	}
	resp.Body.Close()
}

// RUCKUS One delegation works the same way: the MSP's one token, the
// tenant in x-rks-tenantid.
func TestRuckusDelegatedTenants(t *testing.T) {
	p := newProc(t, nil)
	cfg, _ := os.ReadFile(p.config)
	cfg = []byte(strings.Replace(string(cfg), "    provider: ruckus-one\n",
		"    provider: ruckus-one\n    tenants: [{id: delegated-0002, name: branch}, {id: delegated-0300, name: hq}]\n", 1))
	os.WriteFile(p.config, cfg, 0o644)
	if h := mustOK(t, p.run(t, "header", "ruckus/hq")).stdout; !strings.Contains(h, "x-rks-tenantid: delegated-0300\n") {
		t.Errorf("header ruckus/hq:\n%s", h)
	}
	for _, tenant := range []string{"branch", "delegated-0300"} {
		if r := p.run(t, "curl", "ruckus/"+tenant, "/venues"); r.code != 0 {
			t.Errorf("curl ruckus/%s: %+v", tenant, r)
		}
	}
	if r := p.run(t, "curl", "ruckus/delegated-0299", "/venues"); r.code != 2 {
		t.Errorf("a delegated tenant the profile was not given: %+v", r)
	}
}

// freeAddr is a loopback address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// proxy_listen serves a profile's (or tenant's) API at the root of its own
// address, as SDKs that keep only a host need (pycentral's central_info
// takes base_url and a token: here http://ADDR and a client's key), with
// the same keys and rules.
func TestProxyListenAtTheRoot(t *testing.T) {
	p := newProc(t, nil)
	acme := p.set.Aruba.Customers[0].ID
	rootAddr, acmeAddr := freeAddr(t), freeAddr(t)
	cfg, _ := os.ReadFile(p.config)
	cfg = []byte(strings.Replace(string(cfg), "    provider: aruba-central\n",
		"    provider: aruba-central\n    proxy_listen: "+rootAddr+"\n    tenants: [{id: "+acme+", name: acme, proxy_listen: \""+acmeAddr+"\"}]\n", 1))
	cfg = append(cfg, []byte("clients:\n  sdk:\n    key: sdk-client-key-0123456789\n    profiles: [aruba]\n")...)
	os.WriteFile(p.config, cfg, 0o644)
	offline := p.dir + "/offline.json"
	os.WriteFile(offline, p.set.Aruba.IssueOfflineToken(), 0o600)
	mustOK(t, p.run(t, "import", "aruba", offline))
	_, base, _ := startServe(t, p, "TOKENBROKER_API_KEY="+replicaKey)

	// Like pycentral: the token as a bearer, the vendor's path at the root.
	sdk := func(addr, path string) int {
		req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
		req.Header.Set("Authorization", "Bearer sdk-client-key-0123456789")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := sdk(rootAddr, "/monitoring/v1/aps"); code != 200 {
		t.Errorf("the profile's API at the root: %d", code)
	}
	if code := sdk(acmeAddr, "/monitoring/v1/aps"); code != 200 {
		t.Errorf("the tenant's API at the root: %d", code)
	}
	if code := sdk(rootAddr, "/oauth2/token"); code != 403 {
		t.Errorf("a proxy client on the credential endpoint at the root: %d, want 403", code)
	}
	rep := &replica{base: base}
	_, body, _ := rep.get("/v1/profiles/aruba/tenants")
	if !strings.Contains(body, `"calls":1`) {
		t.Errorf("the tenant listener's call was not for the tenant: %s", body)
	}
}
