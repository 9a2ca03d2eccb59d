package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Mutual TLS (RFC 8705, tls_client_auth): a real process presents the
// profile's client certificate to a server that requires one, on the
// token call and on API calls, and a profile without it is refused.
func TestMutualTLSClientCertificate(t *testing.T) {
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test client CA"}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	caDER, _ := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	caCert, _ := x509.ParseCertificate(caDER)
	clientKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	clTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "tb-mtls-client"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	clDER, _ := x509.CreateCertificate(rand.Reader, clTmpl, caCert, &clientKey.PublicKey, caKey)
	keyDER, _ := x509.MarshalPKCS8PrivateKey(clientKey)
	os.WriteFile(filepath.Join(dir, "client.pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: clDER}), 0o600)
	os.WriteFile(filepath.Join(dir, "client-key.pem"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)

	var tokenCalls, apiCalls atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		cn := ""
		if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
			cn = r.TLS.PeerCertificates[0].Subject.CommonName
		}
		switch r.URL.Path {
		case "/token":
			r.ParseForm()
			tokenCalls.Add(1)
			if cn != "tb-mtls-client" || r.Form.Get("client_id") != "mtls-app" || r.Form.Get("client_secret") != "" {
				w.WriteHeader(401)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"access_token":"at-mtls","token_type":"Bearer","expires_in":3600}`)
		case "/api/ping":
			apiCalls.Add(1)
			fmt.Fprintf(w, "pong from %s with %s\n", cn, r.Header.Get("Authorization"))
		}
	}))
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	srv.TLS = &tls.Config{ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: pool}
	srv.StartTLS()
	defer srv.Close()
	roots := filepath.Join(dir, "roots.pem")
	os.WriteFile(roots, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644)

	cfg := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`state: sqlite:%s
profiles:
  mtls:
    provider: oauth2
    token_url: %s/token
    base_url: %s
    client_id: mtls-app
    auth_style: tls_client_auth
    tls_client_cert: file:%s
    tls_client_key: file:%s
  nocert:
    provider: oauth2
    token_url: %s/token
    client_id: mtls-app
    client_secret: s
`, filepath.Join(dir, "state.db"), srv.URL, srv.URL, filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem"), srv.URL)), 0o600)
	run := func(args ...string) (int, string, string) {
		cmd := exec.Command(binary(t), append([]string{"--config", cfg}, args...)...)
		cmd.Env = append(os.Environ(), "SSL_CERT_FILE="+roots, "TOKENBROKER_KEY=")
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		}
		return code, out.String(), errb.String()
	}
	if code, out, errs := run("token", "mtls"); code != 0 || strings.TrimSpace(out) != "at-mtls" {
		t.Fatalf("token over mutual TLS: exit %d, %q, %s", code, out, errs)
	}
	if code, out, errs := run("curl", "mtls", "/api/ping"); code != 0 || !strings.Contains(out, "pong from tb-mtls-client with Bearer at-mtls") {
		t.Fatalf("API call over mutual TLS: exit %d, %q, %s", code, out, errs)
	}
	if code, _, errs := run("token", "nocert"); code != 3 {
		t.Errorf("a profile without the certificate: exit %d, %s; want 3 (rejected)", code, errs)
	}
	if apiCalls.Load() != 1 || tokenCalls.Load() != 2 {
		t.Errorf("%d token and %d API calls", tokenCalls.Load(), apiCalls.Load())
	}
}
