package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeOp puts an `op` on PATH that prints the secret for one item (an
// argument with spaces, as 1Password's are), counts its runs, fails with a
// message for another item (after printing to stdout, which must never be
// shown), prints nothing for a third, and hangs for a fourth.
func fakeOp(t *testing.T) (runs func() int) {
	dir := t.TempDir()
	count := filepath.Join(dir, "runs")
	script := `#!/bin/sh
echo x >> ` + count + `
case "$2" in
"op://Private/Aruba Central/secret") printf 's3cret-from-op\n' ;;
"op://Private/gone") echo "leaked-stdout"; echo "[ERROR] item not found" >&2; exit 1 ;;
"op://Private/empty") ;;
"op://Private/slow") sleep 5 ;;
esac
`
	if err := os.WriteFile(filepath.Join(dir, "op"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	ForgetExecSecrets()
	t.Cleanup(ForgetExecSecrets)
	return func() int { b, _ := os.ReadFile(count); return strings.Count(string(b), "x") }
}

func TestExecSecrets(t *testing.T) {
	runs := fakeOp(t)
	s := Secret(`exec:op read "op://Private/Aruba Central/secret"`)
	if s.Inline() || s.String() != string(s) {
		t.Errorf("an exec: reference is shown as %q (inline %v)", s.String(), s.Inline())
	}
	for range 2 {
		if v, err := s.Resolve(); err != nil || v != "s3cret-from-op" {
			t.Fatalf("resolve: %q %v", v, err)
		}
	}
	if n := runs(); n != 1 {
		t.Errorf("the command ran %d times for two uses, want 1 (cached)", n)
	}
	ForgetExecSecrets() // a reload reads it again
	s.Resolve()
	if n := runs(); n != 2 {
		t.Errorf("after a reload the command ran %d times in all, want 2", n)
	}

	_, err := Secret("exec:op read op://Private/gone").Resolve()
	if err == nil || !strings.Contains(err.Error(), "item not found") || strings.Contains(err.Error(), "leaked-stdout") || !strings.Contains(err.Error(), "exec:op read op://Private/gone") {
		t.Errorf("a failing command: %v", err)
	}
	if _, err := Secret("exec:op read op://Private/empty").Resolve(); err == nil || !strings.Contains(err.Error(), "printed nothing") {
		t.Errorf("a command that prints nothing: %v", err)
	}
	old := execTimeout
	execTimeout = 200 * time.Millisecond
	defer func() { execTimeout = old }()
	if _, err := Secret("exec:op read op://Private/slow").Resolve(); err == nil || !strings.Contains(err.Error(), "did not finish") {
		t.Errorf("a command that hangs: %v", err)
	}
	if _, err := Secret("exec:no-such-command-here").Resolve(); err == nil || !strings.Contains(err.Error(), "could not run") {
		t.Errorf("a command that is not there: %v", err)
	}
}

// A config others can write may not run commands.
func TestExecSecretInAConfigOthersCanWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	os.WriteFile(path, []byte("profiles:\n  a: {provider: static, api_key: 'exec:op read op://x'}\n"), 0o666)
	os.Chmod(path, 0o666)
	_, err := Load(path, true)
	if err == nil || !strings.Contains(err.Error(), "chmod go-w") || !strings.Contains(err.Error(), "profiles.a.api_key") {
		t.Fatalf("exec: in a config others can write: %v", err)
	}
	os.Chmod(path, 0o644)
	if _, err := Load(path, true); err != nil {
		t.Fatalf("the same config, 0644: %v", err)
	}
}
