package main

import (
	"archive/tar"
	"compress/gzip"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Two releases of one commit are the same bytes, and the binary inside
// says its version.
func TestReleaseIsReproducible(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command twice")
	}
	if _, err := exec.Command("git", "rev-parse", "HEAD").Output(); err != nil {
		t.Skip("not in a git checkout")
	}
	t.Chdir("../..")
	a, b := t.TempDir(), t.TempDir()
	for _, dir := range []string{a, b} {
		if err := release("v0.0.1-test", dir, []string{"linux/amd64"}); err != nil {
			t.Fatal(err)
		}
	}
	sa, _ := os.ReadFile(filepath.Join(a, "SHA256SUMS"))
	sb, _ := os.ReadFile(filepath.Join(b, "SHA256SUMS"))
	if len(sa) == 0 || string(sa) != string(sb) {
		t.Fatalf("two releases differ:\n%s\n%s", sa, sb)
	}
	f, err := os.Open(filepath.Join(a, "tokenbroker_0.0.1-test_linux_amd64.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	bin := filepath.Join(t.TempDir(), "tokenbroker")
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatal("no binary in the archive:", err)
		}
		if h.Name == "tokenbroker" {
			out, _ := os.Create(bin)
			io.Copy(out, tr)
			out.Close()
			os.Chmod(bin, 0o755)
			break
		}
	}
	v, err := exec.Command(bin, "version").Output()
	if err != nil || !strings.HasPrefix(string(v), "tokenbroker v0.0.1-test, commit ") || !strings.Contains(string(v), "linux/amd64") {
		t.Errorf("the released binary says %q (%v)", v, err)
	}
}
