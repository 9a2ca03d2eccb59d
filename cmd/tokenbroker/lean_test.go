package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/emulator"
)

// TestASecondInterruptQuitsAtOnce: the first SIGINT to a `token` whose
// vendor does not answer makes it wait for the answer (see
// TestAnInterruptedRenewalIsStillStored) and say so; the second ends it.
func TestASecondInterruptQuitsAtOnce(t *testing.T) {
	p, asked, _ := heldVendor(t) // never answers before the test ends
	cmd, lines := tokenAsked(t, p, asked)
	cmd.Process.Signal(syscall.SIGINT)
	said := waitFor(t, cmd, lines, "interrupt again")
	cmd.Process.Signal(syscall.SIGINT)
	err, ended := exitWithin(cmd, 10*time.Second)
	if !ended {
		t.Fatal("a second SIGINT did not end token")
	}
	if ee, ok := err.(*exec.ExitError); !ok || !ee.Sys().(syscall.WaitStatus).Signaled() {
		t.Errorf("after a second SIGINT token ended with %v, want the signal; stderr: %q", err, said)
	}
}

// tokenAsked starts `token ruckus` and returns once its token request has
// reached the vendor, with the lines of its stderr.
func tokenAsked(t *testing.T, p *proc, asked <-chan struct{}) (*exec.Cmd, <-chan string) {
	t.Helper()
	cmd := p.command(t, "token", "ruckus")
	lines := stderrLines(t, cmd)
	select {
	case <-asked:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatal("the token request never reached the vendor")
	}
	return cmd, lines
}

// exitWithin waits for cmd to end, and kills it if it has not within d
// (ended false).
func exitWithin(cmd *exec.Cmd, d time.Duration) (err error, ended bool) {
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err, true
	case <-time.After(d):
		cmd.Process.Kill()
		return nil, false
	}
}

// stderrLines starts cmd and hands out the lines of its stderr.
func stderrLines(t *testing.T, cmd *exec.Cmd) <-chan string {
	t.Helper()
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	return lines
}

// waitFor reads lines until one contains want, and returns those read;
// it fails the test if cmd ends or says nothing of the kind first.
func waitFor(t *testing.T, cmd *exec.Cmd, lines <-chan string, want string) []string {
	t.Helper()
	var said []string
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				cmd.Wait()
				t.Fatalf("token exited before saying %q, so before the vendor answered; stderr: %q", want, said)
			}
			said = append(said, l)
			if strings.Contains(l, want) {
				return said
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("token did not say %q; stderr: %q", want, said)
		}
	}
}

// TestOnlyAWriteArmsTheInterruptHandler checks when `token` arms it: not
// for a stored token handed out as it is, but for anything that may send.
func TestOnlyAWriteArmsTheInterruptHandler(t *testing.T) {
	p := newProc(t, nil)
	if r := p.run(t, "token", "ruckus"); r.code != 0 {
		t.Fatalf("token: exit %d: %s", r.code, r.stderr)
	}
	for _, kv := range p.env {
		if k, v, ok := strings.Cut(kv, "="); ok && (strings.HasPrefix(k, "TB_") || k == "TOKENBROKER_KEY") {
			t.Setenv(k, v)
		}
	}
	for _, c := range []struct {
		name   string
		minTTL time.Duration
		arms   bool
	}{
		{"ruckus", 0, false},               // stored and fresh
		{"ruckus", 1000 * time.Hour, true}, // renewed first: --min-ttl asks for more than is left
		{"aruba", 0, true},                 // nothing stored yet
		{"ruckus/some-tenant", 0, true},
		{"nosuch", 0, true},
	} {
		a := &app{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard, configPath: p.config, interrupts: &interrupts{cancel: func() {}}}
		b, err := a.load()
		if err != nil {
			t.Fatal(err)
		}
		a.armUnlessStored(context.Background(), b, c.name, c.minTTL)
		if armed := a.interrupts.stop != nil; armed != c.arms {
			t.Errorf("token %s (min TTL %v): armed %v, want %v", c.name, c.minTTL, armed, c.arms)
		}
		a.interrupts.disarm()
		b.Close()
	}
}

// TestServingCommandsGetEveryCore checks the pre-run hook: the CLI runs on
// one P (internal/onecore), and a command that serves gets the default back.
func TestServingCommandsGetEveryCore(t *testing.T) {
	if _, set := os.LookupEnv("GOMAXPROCS"); set {
		t.Skip("GOMAXPROCS is set in the environment")
	}
	def := runtime.GOMAXPROCS(0)
	defer runtime.GOMAXPROCS(def)
	if def == 1 {
		t.Skip("one CPU: nothing to tell apart")
	}
	a := &app{}
	root := a.rootCommand()
	for _, c := range []struct {
		args []string
		want int
	}{
		{[]string{"token", "p"}, 1},
		{[]string{"status"}, 1},
		{[]string{"serve"}, def},
		{[]string{"demo"}, def},
		{[]string{"emulate"}, def},
	} {
		runtime.GOMAXPROCS(1)
		a.coresCut = true
		cmd, _, err := root.Find(c.args)
		if err != nil {
			t.Fatal(err)
		}
		a.prepare(cmd)
		if got := runtime.GOMAXPROCS(0); got != c.want {
			t.Errorf("%s: GOMAXPROCS %d, want %d", strings.Join(c.args, " "), got, c.want)
		}
		runtime.GOMAXPROCS(def)
	}
}

// internal/onecore must run before the heavy package inits, or they run
// on two Ps and the change costs a P's teardown (GODEBUG=inittrace=1
// prints the inits in the order they run).
func TestOneCoreRunsBeforeTheHeavyInits(t *testing.T) {
	cmd := exec.Command(binary(t), "version")
	cmd.Env = append(os.Environ(), "GODEBUG=inittrace=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("version: %v\n%s", err, out)
	}
	order := map[string]int{}
	for i, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 1 && f[0] == "init" {
			order[f[1]] = i
		}
	}
	oc, ok := order["github.com/tokenbroker/tokenbroker/internal/onecore"]
	if !ok {
		t.Fatalf("internal/onecore did not run:\n%s", out)
	}
	for _, heavy := range []string{"modernc.org/libc", "modernc.org/sqlite/lib", "net/http", "go.yaml.in/yaml/v3"} {
		if at, ok := order[heavy]; ok && at < oc {
			t.Errorf("%s ran before internal/onecore", heavy)
		}
	}
}

// TestAnInterruptedRenewalIsStillStored interrupts a `token` whose vendor
// has the request but has not answered: the vendor may already have
// rotated the refresh token it was sent, so the CLI waits for the answer
// and stores it before it exits.
func TestAnInterruptedRenewalIsStillStored(t *testing.T) {
	p, asked, release := heldVendor(t)
	cmd, lines := tokenAsked(t, p, asked)
	cmd.Process.Signal(syscall.SIGINT)
	said := waitFor(t, cmd, lines, "interrupt again")
	release()
	for l := range lines {
		said = append(said, l)
	}
	err := cmd.Wait()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Errorf("token exited with %v after SIGINT, want exit 1; stderr: %q", err, said)
	}
	if tok := p.stored(t, "ruckus"); tok == nil || tok.AccessToken == "" {
		t.Errorf("the vendor's answer was not stored: %+v", tok)
	}
}

// TestServeStoresARenewalInFlightAtSIGTERM stops serve while the vendor
// has a token request: serve drains, then waits for that answer and stores
// it before it closes the state (a rolling restart at a renewal).
func TestServeStoresARenewalInFlightAtSIGTERM(t *testing.T) {
	p, asked, release := heldVendor(t)
	const key = "serve-test-key"
	cmd, base, log := startServe(t, p, "TOKENBROKER_API_KEY="+key)
	ctx, leave := context.WithCancel(context.Background())
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/profiles/ruckus/token", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	<-asked
	leave() // the caller gives up; the renewal runs on
	cmd.Process.Signal(syscall.SIGTERM)
	log.waitFor(t, "stopped")
	release()
	if err, ended := exitWithin(cmd, 60*time.Second); !ended {
		t.Fatal("serve did not exit after SIGTERM")
	} else if err != nil {
		t.Errorf("serve exited with %v after SIGTERM; log:\n%s", err, log)
	}
	if tok := p.stored(t, "ruckus"); tok == nil || tok.AccessToken == "" {
		t.Errorf("the vendor's answer was not stored; log:\n%s", log)
	}
}

// heldVendor is a proc whose RUCKUS endpoint holds each request until
// release (called at the test's end too, before the emulators close), and
// says when the first arrives.
func heldVendor(t *testing.T) (p *proc, asked <-chan struct{}, release func()) {
	arrived, held := make(chan struct{}, 1), make(chan struct{})
	p = newProc(t, func(set *emulator.Set) map[string]http.Handler {
		return map[string]http.Handler{"ruckus": http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case arrived <- struct{}{}:
			default:
			}
			<-held
			set.Ruckus.ServeHTTP(w, r)
		})}
	})
	release = sync.OnceFunc(func() { close(held) })
	t.Cleanup(release)
	return p, arrived, release
}
