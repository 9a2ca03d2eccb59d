package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/emulator"
	"github.com/tokenbroker/tokenbroker/internal/onecore"
	"github.com/tokenbroker/tokenbroker/internal/pgtest"
	"github.com/tokenbroker/tokenbroker/store/seal"
	"github.com/tokenbroker/tokenbroker/store/sqlite"
	"github.com/tokenbroker/tokenbroker/token"
)

// The tests in this file run the built binary as real OS processes.

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// binary builds tokenbroker once per test run, into a directory any user
// may enter (the read-only test runs it as another user).
func binary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tokenbroker-bin-")
		if err != nil {
			binErr = err
			return
		}
		os.Chmod(dir, 0o755)
		binPath = filepath.Join(dir, "tokenbroker")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	if os.Getenv("TB_EXEC_CHILD") != "" {
		os.Exit(execChild()) // this binary is a child of `exec --serve`
	}
	if onecore.Cut {
		runtime.SetDefaultGOMAXPROCS() // main's package imports it: the tests get every core
	}
	code := m.Run()
	pgtest.Stop()
	if binPath != "" {
		os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// proc is a world for processes: a state directory, a master key and a
// config with one profile per emulator.
type proc struct {
	set    *emulator.Set
	dir    string
	config string
	key    []byte
	env    []string
}

func newProcBench(b *testing.B) *proc { return newProc(b, nil) }

func newProc(t testing.TB, handler func(*emulator.Set) map[string]http.Handler) *proc {
	t.Helper()
	set, err := emulator.Start("127.0.0.1", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(set.Close)
	urls := map[string]string{"aruba": set.URLs["aruba-central"], "ruckus": set.URLs["ruckus-one"]}
	if handler != nil {
		for name, h := range handler(set) {
			srv := httptest.NewServer(h)
			t.Cleanup(srv.Close)
			urls[name] = srv.URL
		}
	}
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	os.Chmod(filepath.Dir(dir), 0o755) // the read-only test runs the binary as another user
	p := &proc{set: set, dir: dir, key: make([]byte, 32)}
	for i := range p.key {
		p.key[i] = byte(rand.N(256))
	}
	p.config = filepath.Join(dir, "config.yaml")
	cfg := fmt.Sprintf(`state: sqlite:%s
profiles:
  aruba:
    provider: aruba-central
    base_url: %s
    client_id: %s
    client_secret: env:TB_ARUBA_SECRET
  ruckus:
    provider: ruckus-one
    base_url: %s
    tenant_id: %s
    client_id: %s
    client_secret: env:TB_RUCKUS_SECRET
`, p.statePath(), urls["aruba"], set.Aruba.ClientID, urls["ruckus"], set.Ruckus.TenantID, set.Ruckus.ClientID)
	if err := os.WriteFile(p.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	p.env = append(os.Environ(),
		"TOKENBROKER_KEY="+base64.StdEncoding.EncodeToString(p.key),
		"TB_ARUBA_SECRET="+set.Aruba.ClientSecret,
		"TB_RUCKUS_SECRET="+set.Ruckus.ClientSecret,
	)
	return p
}

func (p *proc) statePath() string { return filepath.Join(p.dir, "state", "state.db") }

func (p *proc) command(t testing.TB, args ...string) *exec.Cmd {
	return p.commandOf(binary(t), args...)
}

// commandOf is command for another build of tokenbroker.
func (p *proc) commandOf(bin string, args ...string) *exec.Cmd {
	cmd := exec.Command(bin, append([]string{"--config", p.config}, args...)...)
	cmd.Env = p.env
	return cmd
}

// run runs the binary to completion.
func (p *proc) run(t testing.TB, args ...string) result {
	t.Helper()
	return p.runOf(t, binary(t), args...)
}

// runOf runs another build of tokenbroker to completion.
func (p *proc) runOf(t testing.TB, bin string, args ...string) result {
	t.Helper()
	cmd := p.commandOf(bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return result{code, out.String(), errb.String()}
}

// stored reads the state as the test, with the same key.
func (p *proc) stored(t testing.TB, profile string) *token.Token {
	t.Helper()
	s, err := seal.New(p.key)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(p.statePath(), s)
	if err != nil {
		t.Fatalf("the state does not open: %v", err)
	}
	defer db.Close()
	tok, err := db.Get(context.Background(), profile)
	if err != nil {
		t.Fatalf("the state does not read: %v", err)
	}
	return tok
}

func TestFiftyProcessesShareOneTokenRequest(t *testing.T) {
	p := newProc(t, nil)
	const n = 50
	results := make([]result, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i] = p.run(t, "token", "ruckus")
		}()
	}
	close(start)
	wg.Wait()
	for i, r := range results {
		if r.code != 0 || strings.Contains(r.stderr, "locked") {
			t.Fatalf("process %d: exit %d: %s", i, r.code, r.stderr)
		}
		if r.stdout != results[0].stdout || strings.TrimSpace(r.stdout) == "" {
			t.Fatalf("process %d printed another token", i)
		}
	}
	if got := p.set.Ruckus.TokenRequests(); got != 1 {
		t.Fatalf("%d token requests reached the emulator, want exactly 1", got)
	}
}

// TestNoPlaintextInStateFiles looks for every secret in the state file, its
// WAL and its shared-memory file, while they exist.
func TestNoPlaintextInStateFiles(t *testing.T) {
	p := newProc(t, nil)
	mustOK(t, p.run(t, "token", "ruckus"))
	// Hold the database open so the WAL and -shm files stay after the children exit.
	s, _ := seal.New(p.key)
	holder, err := sqlite.Open(p.statePath(), s)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	offline := filepath.Join(p.dir, "offline.json")
	os.WriteFile(offline, p.set.Aruba.IssueOfflineToken(), 0o600)
	mustOK(t, p.run(t, "import", "aruba", offline))
	mustOK(t, p.run(t, "refresh", "aruba"))
	ruckusAT := strings.TrimSpace(mustOK(t, p.run(t, "token", "ruckus")).stdout)
	aruba := p.stored(t, "aruba")
	secrets := map[string]string{
		"ruckus access token": ruckusAT, "aruba access token": aruba.AccessToken,
		"aruba refresh token": aruba.RefreshToken, "aruba previous refresh token": aruba.PrevRefreshToken,
		"aruba client secret": p.set.Aruba.ClientSecret, "ruckus client secret": p.set.Ruckus.ClientSecret,
	}
	files := 0
	for _, suffix := range []string{"", "-wal", "-shm"} {
		b, err := os.ReadFile(p.statePath() + suffix)
		if err != nil {
			t.Fatalf("state file%s: %v", suffix, err)
		}
		files++
		for what, secret := range secrets {
			if secret == "" {
				t.Fatalf("%s is empty: the test would prove nothing", what)
			}
			if bytes.Contains(b, []byte(secret)) {
				t.Errorf("the %s is in state.db%s in plain text", what, suffix)
			}
		}
	}
	if files != 3 {
		t.Fatalf("checked %d files, want 3", files)
	}
}

// rotationWatch wraps the Aruba emulator: it counts refreshes the vendor
// completed and delays each answer, widening the window between the
// vendor's rotation and the client's commit, where a kill loses a token.
type rotationWatch struct {
	h       http.Handler
	rotated atomic.Int64
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
}

func (s *statusRecorder) WriteHeader(c int)           { s.status = c }
func (s *statusRecorder) Write(b []byte) (int, error) { return s.body.Write(b) }

func (rw *rotationWatch) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &statusRecorder{ResponseWriter: w, status: 200}
	rw.h.ServeHTTP(rec, r)
	if r.URL.Path == "/oauth2/token" && r.URL.Query().Get("grant_type") == "refresh_token" && rec.status == 200 {
		rw.rotated.Add(1)
		time.Sleep(time.Duration(rand.N(8)) * time.Millisecond) // the answer is on its way
	}
	w.WriteHeader(rec.status)
	w.Write(rec.body.Bytes())
}

// TestCrashConsistency kills `tokenbroker refresh` with SIGKILL at random
// points, hundreds of times. The state must always open and hold a refresh
// token the vendor accepts, except when the kill fell between the vendor's
// rotation and the commit: those are counted, and each must be reported as
// "re-login needed" (exit 3), never as corruption.
func TestCrashConsistency(t *testing.T) {
	cycles := 200
	if testing.Short() {
		cycles = 40
	}
	watch := &rotationWatch{}
	p := newProc(t, func(s *emulator.Set) map[string]http.Handler {
		s.Aruba.StrictRotation = true // the old refresh token dies at once: losses are possible
		watch.h = s.Aruba
		return map[string]http.Handler{"aruba": watch}
	})
	offline := filepath.Join(p.dir, "offline.json")
	reimport := func() {
		os.WriteFile(offline, p.set.Aruba.IssueOfflineToken(), 0o600)
		mustOK(t, p.run(t, "import", "aruba", offline))
	}
	reimport()
	// Calibrate the kill window on one uninterrupted refresh.
	began := time.Now()
	mustOK(t, p.run(t, "refresh", "aruba"))
	window := 2 * time.Since(began)

	var completed, killedBefore, killedAfterCommit, lost int
	for i := range cycles {
		before := p.stored(t, "aruba")
		rotatedBefore := watch.rotated.Load()
		cmd := p.command(t, "refresh", "aruba")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		timer := time.AfterFunc(time.Duration(rand.N(int64(window))), func() { cmd.Process.Signal(syscall.SIGKILL) })
		err := cmd.Wait()
		timer.Stop()
		after := p.stored(t, "aruba") // fails the test if the state does not open or read
		rotated := watch.rotated.Load() > rotatedBefore
		committed := after.Generation > before.Generation
		switch {
		case err == nil:
			completed++
		case p.set.Aruba.ValidRefreshToken(after.RefreshToken):
			if committed {
				killedAfterCommit++
			} else {
				killedBefore++
			}
		default:
			// The only allowed loss: the vendor rotated, the kill came before the commit.
			if !rotated || committed {
				t.Fatalf("cycle %d: stored refresh token refused although rotated=%v committed=%v", i, rotated, committed)
			}
			lost++
			r := p.run(t, "refresh", "aruba")
			if r.code != 3 || !strings.Contains(r.stderr, "re-login needed") {
				t.Fatalf("cycle %d: after a lost rotation: exit %d %q, want 3 and \"re-login needed\"", i, r.code, r.stderr)
			}
			// The refusal is kept (the tokens themselves unchanged), so the
			// refused refresh token is not sent again.
			if again := p.stored(t, "aruba"); again.RefreshToken != after.RefreshToken || again.AccessToken != after.AccessToken || again.RefreshRejected.IsZero() {
				t.Fatalf("cycle %d: the failed refresh changed the tokens or did not record the refusal", i)
			}
			if r := p.run(t, "refresh", "aruba"); r.code != 3 || !strings.Contains(r.stderr, "nothing was sent") {
				t.Fatalf("cycle %d: a second refresh after the refusal: exit %d %q", i, r.code, r.stderr)
			}
			reimport()
			continue
		}
		if !p.set.Aruba.ValidRefreshToken(p.stored(t, "aruba").RefreshToken) {
			t.Fatalf("cycle %d: the stored refresh token is not accepted", i)
		}
	}
	t.Logf("%d cycles: %d completed, %d killed before the vendor rotated or after a retry, %d killed after the commit, %d lost in the rotation window (each reported as re-login needed)",
		cycles, completed, killedBefore, killedAfterCommit, lost)
	if completed+killedBefore+killedAfterCommit+lost != cycles {
		t.Fatal("cycles unaccounted for")
	}
}

func TestBadStateIsReportedAndLeftIntact(t *testing.T) {
	p := newProc(t, nil)
	good := strings.TrimSpace(mustOK(t, p.run(t, "token", "ruckus")).stdout)

	// A wrong master key: a clear error naming the profile, exit 1, nothing overwritten.
	right := p.env
	p.env = append(append([]string{}, right...), "TOKENBROKER_KEY="+base64.StdEncoding.EncodeToString(make([]byte, 32)))
	r := p.run(t, "token", "ruckus")
	if r.code != 1 || !strings.Contains(r.stderr, `profile "ruckus"`) || !strings.Contains(r.stderr, "master key") {
		t.Errorf("wrong key: exit %d %q", r.code, r.stderr)
	}
	if r := p.run(t, "refresh", "ruckus"); r.code != 1 {
		t.Errorf("refresh with a wrong key: exit %d %q, want 1 (never a new token over an unreadable one)", r.code, r.stderr)
	}
	p.env = right
	if got := strings.TrimSpace(mustOK(t, p.run(t, "token", "ruckus")).stdout); got != good {
		t.Error("the token changed after the wrong-key runs")
	}
	if n := p.set.Ruckus.TokenRequests(); n != 1 {
		t.Errorf("%d token requests, want 1", n)
	}

	// A state file readable by others is refused with the fix.
	os.Chmod(p.statePath(), 0o644)
	if r := p.run(t, "token", "ruckus"); r.code != 2 || !strings.Contains(r.stderr, "chmod 600") {
		t.Errorf("0644 state file: exit %d %q", r.code, r.stderr)
	}
	os.Chmod(p.statePath(), 0o600)

	// A corrupt state file: a clear error, exit 1, the file left as it was.
	garbage := bytes.Repeat([]byte("not a database "), 300)
	os.Remove(p.statePath() + "-wal")
	os.Remove(p.statePath() + "-shm")
	if err := os.WriteFile(p.statePath(), garbage, 0o600); err != nil {
		t.Fatal(err)
	}
	r = p.run(t, "token", "ruckus")
	t.Logf("corrupt: %s", r.stderr)
	if r.code != 1 || !strings.Contains(r.stderr, "corrupt") || !strings.Contains(r.stderr, p.statePath()) {
		t.Errorf("corrupt state: exit %d %q", r.code, r.stderr)
	}
	if b, _ := os.ReadFile(p.statePath()); !bytes.Equal(b, garbage) {
		t.Error("the corrupt state file was changed")
	}
}
