package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// BenchmarkProcessTokenHit times a whole `tokenbroker token P` process whose
// token is already stored: what a script pays per call. Compare with
// BenchmarkProcessHelloWorld, a Go program that only prints, measured the
// same way in the same run.
func BenchmarkProcessTokenHit(b *testing.B) {
	p := newProcBench(b)
	if r := p.run(b, "token", "ruckus"); r.code != 0 {
		b.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for b.Loop() {
		cmd := p.command(b, "token", "ruckus")
		if err := cmd.Run(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkProcessHelloWorld(b *testing.B) {
	dir := b.TempDir()
	src := filepath.Join(dir, "main.go")
	os.WriteFile(src, []byte("package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello\") }\n"), 0o600)
	bin := filepath.Join(dir, "hello")
	if out, err := exec.Command("go", "build", "-o", bin, src).CombinedOutput(); err != nil {
		b.Fatalf("%v %s", err, out)
	}
	for b.Loop() {
		if err := exec.Command(bin).Run(); err != nil {
			b.Fatal(err)
		}
	}
}
