package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

type nginx struct {
	addr string
	cmd  *exec.Cmd
}

// startNginx runs nginx as a reverse proxy to upstream that sets a fixed
// Authorization header: the floor of what an authenticating proxy costs.
// With a CA file, the upstream is HTTPS, verified against that CA as
// tokenbroker verifies it.
func startNginx(dir, upstream, token, caFile string) (*nginx, bool) {
	bin, err := exec.LookPath("nginx")
	if err != nil {
		for _, p := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx"} {
			if _, err := os.Stat(p); err == nil {
				bin = p
			}
		}
	}
	if bin == "" {
		return nil, false
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, false
	}
	addr := ln.Addr().String()
	ln.Close()
	ndir, scheme, verify := filepath.Join(dir, "nginx"), "http", ""
	if caFile != "" {
		ndir, scheme = filepath.Join(dir, "nginx-https"), "https"
		verify = fmt.Sprintf("proxy_ssl_verify on;\n      proxy_ssl_trusted_certificate %s;\n      proxy_ssl_name 127.0.0.1;", caFile)
	}
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
  upstream api { server %[2]s; keepalive 128; }
  server {
    listen %[3]s;
    location / {
      proxy_pass %[5]s://api;
      %[6]s
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Authorization "Bearer %[4]s";
    }
  }
}
`, ndir, upstream, addr, token, scheme, verify)
	path := filepath.Join(ndir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return nil, false
	}
	cmd := exec.Command(bin, "-c", path, "-p", ndir)
	if err := cmd.Start(); err != nil {
		return nil, false
	}
	for range 100 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return &nginx{addr: addr, cmd: cmd}, true
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Kill()
	return nil, false
}

func (n *nginx) stop() {
	n.cmd.Process.Kill()
	n.cmd.Wait()
}
