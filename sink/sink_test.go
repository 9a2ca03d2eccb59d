package sink

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/tokenbroker/tokenbroker/config"
)

func tok(n int) *Token {
	return &Token{Profile: "aruba", BaseURL: "https://api.example", AccessToken: fmt.Sprintf("at-%04d-%s", n, strings.Repeat("x", 3000)),
		TokenType: "Bearer", ExpiresAt: "2026-12-01T11:00:00Z", Headers: map[string]string{"Authorization": fmt.Sprintf("Bearer at-%04d", n), "TenantID": "t'1"}}
}

// A reader polling the file while it is rewritten 1,000 times only ever
// sees a whole token, and the file keeps its mode.
func TestWriteIsNeverSeenHalfWritten(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "aruba.token")
	valid := map[string]bool{}
	var contents [][]byte
	for i := range 1000 {
		b, _ := Render(config.Sink{Format: config.SinkToken}, tok(i))
		contents = append(contents, b)
		valid[string(b)] = true
	}
	if err := Write(file, contents[0], 0o640); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var bad atomic.Value
	var reads atomic.Int64
	var wg sync.WaitGroup
	wg.Go(func() {
		for !stop.Load() {
			b, err := os.ReadFile(file)
			if err != nil {
				bad.Store(err.Error())
				return
			}
			if !valid[string(b)] {
				bad.Store(fmt.Sprintf("%d bytes, not a whole token", len(b)))
				return
			}
			reads.Add(1)
		}
	})
	for _, b := range contents[1:] {
		if err := Write(file, b, 0o640); err != nil {
			t.Fatal(err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if v := bad.Load(); v != nil {
		t.Fatalf("a reader saw %v", v)
	}
	fi, err := os.Stat(file)
	if err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("mode %v (%v), want 0640", fi.Mode().Perm(), err)
	}
	if got, _ := os.ReadFile(file); !bytes.Equal(got, contents[999]) {
		t.Error("the file does not hold the last token")
	}
	if left, _ := filepath.Glob(filepath.Join(dir, ".*tmp*")); len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
	t.Logf("%d reads during 1000 writes", reads.Load())
}

func TestRenderFormats(t *testing.T) {
	tk := tok(1)
	tk.AccessToken = "at-1"
	for _, c := range []struct {
		s    config.Sink
		want string
	}{
		{config.Sink{Format: config.SinkToken}, "at-1\n"},
		{config.Sink{Format: config.SinkHeader}, "Authorization: Bearer at-0001\nTenantID: t'1\n"},
		{config.Sink{Format: config.SinkJSON}, `{"access_token":"at-1","token_type":"Bearer","expires_at":"2026-12-01T11:00:00Z","headers":{"Authorization":"Bearer at-0001","TenantID":"t'1"}}` + "\n"},
		{config.Sink{Format: config.SinkEnv}, "TOKENBROKER_PROFILE='aruba'\nTOKENBROKER_TOKEN='at-1'\nTOKENBROKER_BASE_URL='https://api.example'\nTOKENBROKER_HEADERS='Authorization: Bearer at-0001\nTenantID: t'\\''1'\nTOKENBROKER_EXPIRES_AT='2026-12-01T11:00:00Z'\n"},
		{config.Sink{Format: config.SinkTemplate, Template: "machine api.example login x password {{.AccessToken}}\n"}, "machine api.example login x password at-1\n"},
	} {
		got, err := Render(c.s, tk)
		if err != nil || string(got) != c.want {
			t.Errorf("%s: %q (%v), want %q", c.s.Format, got, err, c.want)
		}
	}
	if got, err := Render(config.Sink{Format: config.SinkToken}, nil); err != nil || len(got) != 0 {
		t.Errorf("no token: %q %v, want an empty file", got, err)
	}
	_, err := Render(config.Sink{Format: config.SinkTemplate, Template: "ok\n{{.Nope}}"}, tk)
	if err == nil || !strings.Contains(err.Error(), ":2:") {
		t.Errorf("a template that fails: %v, want its line", err)
	}
}

// A sink in a directory others can write is refused, with why.
func TestSinkDirectoryOthersCanWrite(t *testing.T) {
	dir := t.TempDir()
	os.Chmod(dir, 0o777)
	err := Write(filepath.Join(dir, "t"), []byte("x"), 0o600)
	if err == nil || !strings.Contains(err.Error(), "can be written by others") {
		t.Fatalf("a world-writable directory: %v", err)
	}
}
