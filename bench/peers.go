package main

import (
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// peer is a proxy in front of the bench's upstream that sets a fixed
// Authorization header: what an authenticating proxy costs at the least.
type peer struct {
	name string
	addr string
	stop func()
}

// freeAddr is a loopback address nothing listens on.
func freeAddr() string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// lookBin finds a peer's binary on PATH or in the sbin directories Debian
// installs servers to.
func lookBin(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, dir := range []string{"/usr/sbin", "/usr/local/sbin"} {
		if p := filepath.Join(dir, name); fileExists(p) {
			return p
		}
	}
	return ""
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// startProcess runs a peer and waits until it accepts connections.
func startProcess(name, addr string, bin string, args ...string) (*peer, bool) {
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		fmt.Printf("  %s did not start: %v\n", name, err)
		return nil, false
	}
	stop := func() { cmd.Process.Kill(); cmd.Wait() }
	for range 250 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return &peer{name: name, addr: addr, stop: stop}, true
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	fmt.Printf("  %s did not listen on %s\n", name, addr)
	return nil, false
}

// startNginx: one worker, keep-alive to the upstream.
func startNginx(dir, upstream, token string) (*peer, bool) {
	bin := lookBin("nginx")
	if bin == "" {
		return nil, false
	}
	addr, ndir := freeAddr(), filepath.Join(dir, "nginx")
	os.MkdirAll(filepath.Join(ndir, "logs"), 0o755)
	conf := fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
error_log %[1]s/logs/error.log;
pid %[1]s/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
  upstream api { server %[2]s; keepalive 256; }
  server {
    listen %[3]s;
    location / {
      proxy_pass http://api;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Authorization "Bearer %[4]s";
    }
  }
}
`, ndir, upstream, addr, token)
	path := filepath.Join(ndir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return nil, false
	}
	return startProcess("nginx", addr, bin, "-c", path, "-p", ndir)
}

// startHAProxy: one thread, connections to the upstream reused.
func startHAProxy(dir, upstream, token string) (*peer, bool) {
	bin := lookBin("haproxy")
	if bin == "" {
		return nil, false
	}
	addr := freeAddr()
	conf := fmt.Sprintf(`global
  maxconn 8192
  nbthread 1
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  option http-keep-alive
  http-reuse always
frontend f
  bind %s
  default_backend b
backend b
  http-request set-header Authorization "Bearer %s"
  server up %s
`, addr, token, upstream)
	path := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return nil, false
	}
	return startProcess("HAProxy", addr, bin, "-f", path, "-db")
}

// startCaddy: reverse_proxy with one header set, logs and admin off.
func startCaddy(dir, upstream, token string) (*peer, bool) {
	bin := lookBin("caddy")
	if bin == "" {
		return nil, false
	}
	addr := freeAddr()
	_, port, _ := net.SplitHostPort(addr)
	conf := fmt.Sprintf(`{
	admin off
	auto_https off
}
http://127.0.0.1:%s {
	bind 127.0.0.1
	reverse_proxy %s {
		header_up Authorization "Bearer %s"
	}
}
`, port, upstream, token)
	path := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return nil, false
	}
	os.Setenv("XDG_DATA_HOME", filepath.Join(dir, "caddy-data"))
	os.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "caddy-config"))
	return startProcess("Caddy", addr, bin, "run", "--config", path, "--adapter", "caddyfile")
}

// startReverseProxy is the plain Go peer: httputil.ReverseProxy setting
// one header, on an http.Transport tuned for the load (hundreds of idle
// connections to the upstream), so that the comparison is not about
// connection churn. With guarded, its transport is tokenbroker's own
// (httpx.NewTransport), which measures what the stray-byte guard costs.
func startReverseProxy(name, upstream, token string, rt http.RoundTripper) *peer {
	target, _ := url.Parse("http://" + upstream)
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Header.Set("Authorization", "Bearer "+token)
		},
		Transport: rt,
		ErrorLog:  log.New(io.Discard, "", 0), // the loads' ends cancel requests in flight
	}
	s := serveOn(rp)
	return &peer{name: name, addr: s.Addr, stop: func() { s.Close() }}
}

func tunedTransport() *http.Transport {
	return &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 512, IdleConnTimeout: 90 * time.Second, DisableCompression: true}
}
