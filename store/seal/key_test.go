package seal

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

const makeKeyHint = "head -c 32 /dev/urandom | base64"

// alphabetKey is a key whose standard base64 holds '+' and '/', so that the
// URL alphabet ('-', '_') differs from it.
func alphabetKey(t *testing.T) []byte {
	t.Helper()
	var k []byte
	for len(k) < KeySize {
		k = append(k, 0xfb, 0xef, 0xbe, 0xff, 0xff, 0xff)
	}
	k = k[:KeySize]
	std := base64.StdEncoding.EncodeToString(k)
	if !strings.Contains(std, "+") || !strings.Contains(std, "/") || !strings.HasSuffix(std, "=") {
		t.Fatalf("test key %q does not exercise both alphabets and padding", std)
	}
	return k
}

func TestDecodeKeyEncodings(t *testing.T) {
	k := alphabetKey(t)
	for name, text := range map[string]string{
		"std padded":          base64.StdEncoding.EncodeToString(k),
		"std raw":             base64.RawStdEncoding.EncodeToString(k),
		"url padded":          base64.URLEncoding.EncodeToString(k),
		"url raw":             base64.RawURLEncoding.EncodeToString(k),
		"std with newline":    base64.StdEncoding.EncodeToString(k) + "\n",
		"url with whitespace": "  " + base64.RawURLEncoding.EncodeToString(k) + "\r\n",
	} {
		got, err := DecodeKey(text, "test")
		if err != nil {
			t.Errorf("%s %q: %v", name, text, err)
			continue
		}
		if !bytes.Equal(got, k) {
			t.Errorf("%s: got %x, want %x", name, got, k)
		}
	}
}

func TestDecodeKeyRejects(t *testing.T) {
	for name, text := range map[string]string{
		"16 bytes":   base64.StdEncoding.EncodeToString(make([]byte, 16)),
		"31 bytes":   base64.StdEncoding.EncodeToString(make([]byte, 31)),
		"33 bytes":   base64.StdEncoding.EncodeToString(make([]byte, 33)),
		"empty":      "",
		"not base64": "this is not base64 at all!",
		"hex of 32":  strings.Repeat("0f", 32), // valid base64, but 48 bytes
	} {
		const source = "$TOKENBROKER_KEY"
		got, err := DecodeKey(text, source)
		if err == nil {
			t.Errorf("%s: got key %x, want an error", name, got)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, source) || !strings.Contains(msg, makeKeyHint) {
			t.Errorf("%s: got error %q, want it to name %q and say %q", name, msg, source, makeKeyHint)
		}
	}
}

func TestCheckPrivate(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		mode os.FileMode
		ok   bool
	}{{0o600, true}, {0o400, true}, {0o644, false}, {0o640, false}, {0o604, false}, {0o660, false}} {
		path := filepath.Join(dir, "f"+c.mode.String())
		if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(path, c.mode); err != nil {
			t.Fatal(err)
		}
		err := CheckPrivate(path, "key file")
		if c.ok {
			if err != nil {
				t.Errorf("mode %04o: got %v, want nil", c.mode, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("mode %04o: got nil, want an error", c.mode)
			continue
		}
		if msg := err.Error(); !strings.Contains(msg, "chmod 600") || !strings.Contains(msg, path) {
			t.Errorf("mode %04o: got %q, want it to contain %q and the path", c.mode, msg, "chmod 600")
		}
	}
	if err := CheckPrivate(filepath.Join(dir, "missing"), "key file"); err == nil {
		t.Errorf("missing file: got nil, want an error")
	}
}

func TestFileKeyCreatesThenReuses(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	k1, err := FileKey(dir)
	if err != nil {
		t.Fatalf("FileKey: %v", err)
	}
	if len(k1) != KeySize {
		t.Fatalf("key length: got %d, want %d", len(k1), KeySize)
	}
	path := filepath.Join(dir, KeyFileName)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fi.Mode().Perm(), os.FileMode(0o600); got != want {
		t.Errorf("key file mode: got %04o, want %04o", got, want)
	}
	di, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := di.Mode().Perm(); got&0o077 != 0 {
		t.Errorf("key directory mode: got %04o, want no access for others", got)
	}
	text, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := DecodeKey(string(text), path); err != nil || !bytes.Equal(got, k1) {
		t.Errorf("key file content decodes to %x, %v, want %x", got, err, k1)
	}
	k2, err := FileKey(dir)
	if err != nil {
		t.Fatalf("second FileKey: %v", err)
	}
	if !bytes.Equal(k1, k2) {
		t.Errorf("second FileKey: got %x, want the first key %x", k2, k1)
	}
	if _, err := New(k1); err != nil {
		t.Errorf("New(FileKey): %v", err)
	}
	assertNoTempFiles(t, dir)
}

func TestFileKeyRefusesReadableKeyFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, KeyFileName)
	if err := os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(make([]byte, KeySize))), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if k, err := FileKey(dir); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("FileKey with a 0644 key file: got %x, %v, want an error saying chmod 600", k, err)
	}
}

func TestFileKeyConcurrentFirstUse(t *testing.T) {
	for round := 0; round < 5; round++ {
		dir := filepath.Join(t.TempDir(), "fresh")
		const n = 20
		keys := make([][]byte, n)
		errs := make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				keys[i], errs[i] = FileKey(dir)
			}()
		}
		close(start)
		wg.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("round %d goroutine %d: %v", round, i, errs[i])
			}
			if !bytes.Equal(keys[i], keys[0]) {
				t.Fatalf("round %d goroutine %d: got key %x, want the same key as goroutine 0 (%x)", round, i, keys[i], keys[0])
			}
		}
		again, err := FileKey(dir)
		if err != nil || !bytes.Equal(again, keys[0]) {
			t.Fatalf("round %d: FileKey afterwards: got %x, %v, want %x", round, again, err, keys[0])
		}
		assertNoTempFiles(t, dir)
	}
}

func assertNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if len(names) != 1 || names[0] != KeyFileName {
		t.Errorf("files in the key directory: got %q, want only %q", names, KeyFileName)
	}
}
