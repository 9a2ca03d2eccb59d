package config

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestServeBlock(t *testing.T) {
	c, err := Parse([]byte("serve: {max_connections: 8, write_timeout: 5s}\nprofiles: {}\n"))
	if err != nil {
		t.Fatal(err)
	}
	got := c.Serve.WithDefaults()
	want := Serve{MaxConnections: 8, ReadHeaderTimeout: DefaultServe.ReadHeaderTimeout, IdleTimeout: DefaultServe.IdleTimeout, WriteTimeout: 5 * time.Second}
	if got != want {
		t.Errorf("serve %+v, want %+v", got, want)
	}
	for _, bad := range []string{"serve: {max_connections: -1}\n", "serve: {idle_timeout: -1s}\n", "serve: {max_conns: 3}\n"} {
		if _, err := Parse([]byte(bad)); err == nil || !strings.Contains(err.Error(), "serve") && !strings.Contains(err.Error(), "max_conns") {
			t.Errorf("%q: %v, want a config error", bad, err)
		}
	}
}

// env: and file: values lose a trailing newline alike.
func TestSecretsAreTrimmedAlike(t *testing.T) {
	t.Setenv("TB_CONFIG_TEST", "value\r\n")
	path := t.TempDir() + "/secret"
	if err := writeFile(path, "value\n"); err != nil {
		t.Fatal(err)
	}
	for _, s := range []Secret{"env:TB_CONFIG_TEST", Secret("file:" + path), "value"} {
		if v, err := s.Resolve(); err != nil || v != "value" {
			t.Errorf("%s: %q %v", s, v, err)
		}
	}
}

func writeFile(path, text string) error { return os.WriteFile(path, []byte(text), 0o600) }
