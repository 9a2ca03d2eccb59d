package main

import (
	"encoding/json"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// A release build says its version, the commit it came from, the Go
// version and the platform.
func TestVersionIdentifiesTheBuild(t *testing.T) {
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skip("not in a git checkout:", err)
	}
	bin := filepath.Join(t.TempDir(), "tokenbroker")
	build := exec.Command("go", "build", "-buildvcs=true", "-ldflags", "-X main.version=v9.9.9", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version", "--json").Output()
	if err != nil {
		t.Fatal(err)
	}
	var b buildInfo
	if err := json.Unmarshal(out, &b); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if b.Version != "v9.9.9" || b.Revision != strings.TrimSpace(string(head)) || b.Time == "" || b.Go != runtime.Version() || b.Platform != runtime.GOOS+"/"+runtime.GOARCH {
		t.Errorf("version --json: %+v (HEAD %s)", b, head)
	}
	text, _ := exec.Command(bin, "version").Output()
	if !strings.HasPrefix(string(text), "tokenbroker v9.9.9, commit "+string(head[:12])) {
		t.Errorf("version: %q", text)
	}
}
