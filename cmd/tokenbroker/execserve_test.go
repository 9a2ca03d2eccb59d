package main

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/emulator"
)

// execChild is the test binary run as the child of `exec --serve`: it
// calls the vendor through $TOKENBROKER_PROXY_URL for $TB_EXEC_FOR, and
// exits 7 when every call succeeded; with TB_EXEC_CHILD=signal it waits
// for SIGTERM and exits 42.
func execChild() int {
	if os.Getenv("TB_EXEC_CHILD") == "signal" {
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM)
		fmt.Println("ready")
		select {
		case <-sig:
			return 42
		case <-time.After(20 * time.Second):
			return 1
		}
	}
	d, _ := time.ParseDuration(os.Getenv("TB_EXEC_FOR"))
	url, key := os.Getenv("TOKENBROKER_PROXY_URL")+"/venues", os.Getenv("TOKENBROKER_PROXY_KEY")
	ok, failed, first := 0, 0, ""
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			failed++
			first = err.Error()
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			failed++
			if first == "" {
				first = fmt.Sprintf("%d %s", resp.StatusCode, b)
			}
			continue
		}
		ok++
	}
	fmt.Printf("ok=%d failed=%d first=%q token-set=%v\n", ok, failed, first, os.Getenv("TOKENBROKER_TOKEN") != "")
	if failed > 0 || ok == 0 {
		return 1
	}
	return 7
}

// A child of `exec --serve` calls the vendor through its proxy for longer
// than three token lifetimes without an error; its exit code is ours, and
// a signal sent to us reaches it.
func TestExecServeKeepsAChildsTokenAlive(t *testing.T) {
	const ttl = 2 * time.Second
	tt := &tokenTimes{arrived: make(chan struct{}, 1)}
	p := newProc(t, func(s *emulator.Set) map[string]http.Handler {
		s.Ruckus.TokenTTL = ttl
		tt.h = s.Ruckus
		return map[string]http.Handler{"ruckus": tt}
	})
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := p.command(t, "exec", "--serve", "ruckus", "--", self)
	cmd.Env = append(cmd.Env, "TB_EXEC_CHILD=caller", "TB_EXEC_FOR="+(3*ttl+time.Second).String())
	out, err := cmd.Output()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	if code != 7 || !strings.Contains(string(out), "failed=0") || !strings.Contains(string(out), "token-set=true") {
		t.Fatalf("exec --serve: exit %d, child said %q (%v)", code, out, err)
	}
	t.Logf("child: %s", strings.TrimSpace(string(out)))
	if n := len(tt.snapshot()); n < 3 {
		t.Errorf("%d tokens issued over three lifetimes, want the token renewed", n)
	}

	// A signal to tokenbroker goes to the child, whose exit code is ours.
	cmd = p.command(t, "exec", "--serve", "ruckus", "--", self)
	cmd.Env = append(cmd.Env, "TB_EXEC_CHILD=signal")
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	stdout.Read(buf) // "ready"
	cmd.Process.Signal(syscall.SIGTERM)
	err = cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 42 {
		t.Errorf("after SIGTERM: %v, want the child's exit 42", err)
	}
}
