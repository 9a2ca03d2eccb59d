package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tokenbroker/tokenbroker/store/seal"
)

// keyRow is a row of `rekey --status --json`.
type keyRow struct {
	ID      string `json:"id"`
	State   string `json:"state"`
	Records int    `json:"records"`
}

func keyStatus(t *testing.T, p *proc) map[string]keyRow {
	t.Helper()
	r := mustOK(t, p.run(t, "rekey", "--status", "--json"))
	var rows []keyRow
	if err := json.Unmarshal([]byte(r.stdout), &rows); err != nil {
		t.Fatalf("rekey --status --json: %v\n%s", err, r.stdout)
	}
	out := map[string]keyRow{}
	for _, k := range rows {
		out[k.ID] = k
	}
	return out
}

// TestRekeyUnderLoadWithThreeReplicas rotates the master key of a
// PostgreSQL state while three serve replicas hand out tokens to callers
// and renew short-lived ones: the replicas, started with the old key,
// follow the rotation; they are restarted one by one with the new key;
// the old key is retired; no caller sees a failure at any point, and a
// process still given the old key is told what to do.
func TestRekeyUnderLoadWithThreeReplicas(t *testing.T) {
	p, ruckus, _, _ := postgresProc(t, 2*time.Second)
	oldKey := p.key
	newKey, _ := seal.NewKey()
	oldID, newID := seal.KeyID(oldKey), seal.KeyID(newKey)
	p.env = append(p.env, "TB_NEW_KEY="+base64.StdEncoding.EncodeToString(newKey))

	var live atomic.Pointer[[]*replica]
	reps := startReplicas(t, p, 3)
	live.Store(&reps)

	var ok, failures atomic.Int64
	var firstErr atomic.Value
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for i := range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			paths := []string{"/v1/profiles/ruckus/token", "/v1/profiles/aruba/token"}
			for ctx.Err() == nil {
				rs := *live.Load()
				r := rs[rand.N(len(rs))]
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, r.base+paths[i%2], nil)
				req.Header.Set("Authorization", "Bearer "+replicaKey)
				resp, err := http.DefaultClient.Do(req)
				if ctx.Err() != nil {
					return
				}
				if err != nil && !slices.Contains(*live.Load(), r) {
					continue // taken out of the rotation while this call was sent: as a load balancer would, try another
				}
				if err != nil {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprintf("%s: %d %s", paths[i%2], resp.StatusCode, b))
					continue
				}
				ok.Add(1)
			}
		}()
	}
	// The waits below poll what other processes did, every 20 ms.
	ticks := time.NewTicker(20 * time.Millisecond)
	defer ticks.Stop()
	// served waits until callers got n more answers: each phase is under load.
	served := func(what string, n int64) {
		t.Helper()
		base := ok.Load()
		deadline := time.Now().Add(30 * time.Second)
		for ok.Load() < base+n {
			if time.Now().After(deadline) {
				t.Fatalf("%s: callers got only %d answers in 30 s", what, ok.Load()-base)
			}
			<-ticks.C
		}
	}
	renewed := func(what string) {
		t.Helper()
		base := len(ruckus.snapshot())
		deadline := time.Now().Add(30 * time.Second)
		for len(ruckus.snapshot()) == base {
			if time.Now().After(deadline) {
				t.Fatalf("%s: no RUCKUS renewal in 30 s", what)
			}
			<-ticks.C
		}
	}
	served("before", 500)

	r := mustOK(t, p.run(t, "rekey", "--new-key", "env:TB_NEW_KEY"))
	if !strings.Contains(r.stdout, "under key "+newID+" (was "+oldID+")") {
		t.Fatalf("rekey said: %s", r.stdout)
	}
	// The replicas, all still on the old key, renew and serve: what they
	// write is sealed under the new key.
	renewed("after rekey")
	served("after rekey", 500)
	ks := keyStatus(t, p)
	if ks[newID].State != "primary" || ks[oldID].State != "accepted" || ks[oldID].Records != 0 || ks[newID].Records < 2 {
		t.Fatalf("after rekey and renewals: %+v", ks)
	}

	// A rolling restart onto the new key.
	for i := range 3 {
		rs := append([]*replica{}, *live.Load()...)
		old := rs[i]
		rest := append(append([]*replica{}, rs[:i]...), rs[i+1:]...)
		live.Store(&rest)
		old.cmd.Process.Signal(syscall.SIGTERM)
		old.cmd.Wait()
		cmd, base, log := startServe(t, p, "TOKENBROKER_API_KEY="+replicaKey, "TOKENBROKER_KEY="+base64.StdEncoding.EncodeToString(newKey))
		rs[i] = &replica{cmd, base, log}
		live.Store(&rs)
		served(fmt.Sprintf("after restarting replica %d", i), 200)
	}

	// Retiring needs the new key where it runs, and a while after rekey.
	if r := p.run(t, "rekey", "--retire"); r.code == 0 || !strings.Contains(r.stderr, "started with key "+oldID) {
		t.Fatalf("retire with the old key configured: %d %s", r.code, r.stderr)
	}
	p.env = append(p.env, "TOKENBROKER_KEY="+base64.StdEncoding.EncodeToString(newKey))
	deadline := time.Now().Add(30 * time.Second)
	for {
		r = p.run(t, "rekey", "--retire")
		if r.code == 0 || !strings.Contains(r.stderr, "retry in") || time.Now().After(deadline) {
			break
		}
		<-ticks.C
	}
	mustOK(t, r)
	renewed("after retire")
	served("after retire", 500)
	stop()
	wg.Wait()
	if failures.Load() != 0 {
		t.Fatalf("%d calls failed during the rotation, first: %v", failures.Load(), firstErr.Load())
	}
	ks = keyStatus(t, p)
	if ks[newID].State != "primary" || ks[oldID].State != "retired" || ks[newID].Records < 2 || ks["?"].Records != 0 {
		t.Fatalf("after retire: %+v", ks)
	}
	for _, r := range *live.Load() {
		if strings.Contains(r.log.String(), "level=ERROR") {
			t.Errorf("a replica logged an error:\n%s", r.log)
		}
	}
	// A process still given the old key is refused, told which key to use.
	stale := p.commandOf(binary(t), "token", "ruckus")
	stale.Env = append(append([]string{}, p.env...), "TOKENBROKER_KEY="+base64.StdEncoding.EncodeToString(oldKey))
	out, err := stale.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "sealed under key "+newID) || !strings.Contains(string(out), oldID+" was retired") {
		t.Fatalf("token with the retired key: %v\n%s", err, out)
	}
	// So is a replica started with it, at once rather than on every call.
	staleServe := p.commandOf(binary(t), "serve", "--listen", "127.0.0.1:0")
	staleServe.Env = stale.Env
	out, err = staleServe.CombinedOutput()
	if ee, isExit := err.(*exec.ExitError); !isExit || ee.ExitCode() != 2 || !strings.Contains(string(out), "sealed under key "+newID) {
		t.Fatalf("serve with the retired key: %v\n%s", err, out)
	}
	t.Logf("%d answers, 0 failures, through rekey, a rolling restart and retire", ok.Load())
}

// TestRekeyOfAKeyFileState rotates a SQLite state whose key is the key
// file beside it, while serve holds it open: the key file gets a new key,
// serve keeps serving, and the CLI reads with the new file.
func TestRekeyOfAKeyFileState(t *testing.T) {
	p := newProc(t, nil)
	var env []string
	for _, e := range p.env {
		if !strings.HasPrefix(e, "TOKENBROKER_KEY=") {
			env = append(env, e)
		}
	}
	p.env = env
	first := mustOK(t, p.run(t, "token", "ruckus")).stdout
	keyFile := filepath.Join(filepath.Dir(p.statePath()), seal.KeyFileName)
	before, err := os.ReadFile(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	cmd, base, log := startServe(t, p, "TOKENBROKER_API_KEY="+replicaKey)
	defer cmd.Process.Kill()
	if code, body := apiGet(t, base+"/v1/profiles/ruckus/token", replicaKey); code != 200 {
		t.Fatalf("serve: %d %s", code, body)
	}

	if r := p.run(t, "rekey", "--retire"); r.code == 0 || !strings.Contains(r.stderr, "never rekeyed") {
		t.Fatalf("retire before any rotation: %d %s", r.code, r.stderr)
	}
	r := mustOK(t, p.run(t, "rekey"))
	after, _ := os.ReadFile(keyFile)
	if string(after) == string(before) || !strings.Contains(r.stdout, "key file") {
		t.Fatalf("the key file was not replaced: %s", r.stdout)
	}
	if fi, _ := os.Stat(keyFile); fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v", fi.Mode().Perm())
	}
	if got := mustOK(t, p.run(t, "token", "ruckus")).stdout; got != first {
		t.Fatalf("after rekey the CLI reads another token")
	}
	if code, body := apiGet(t, base+"/v1/profiles/ruckus/token", replicaKey); code != 200 {
		t.Fatalf("serve after rekey: %d %s", code, body)
	}
	if r := p.run(t, "rekey", "--retire"); r.code == 0 || !strings.Contains(r.stderr, "retry in") {
		t.Fatalf("retire at once: %d %s", r.code, r.stderr)
	}
	inline := base64.StdEncoding.EncodeToString(make([]byte, 32))
	if r := p.run(t, "rekey", "--new-key", inline); r.code != 2 || !strings.Contains(r.stderr, "never the key itself") || strings.Contains(r.stdout+r.stderr, inline) {
		t.Fatalf("rekey with the key on the command line: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if r := p.run(t, "rekey", "--new-key", "env:NOT_SET_ANYWHERE"); r.code != 2 || !strings.Contains(r.stderr, "NOT_SET_ANYWHERE") {
		t.Fatalf("rekey with an unset reference: %d %s", r.code, r.stderr)
	}
	if strings.Contains(log.String(), "level=ERROR") {
		t.Errorf("serve logged an error:\n%s", log)
	}
}

// TestMigrateCommand moves a state to a new SQLite file: the token reads
// the same from there, and the same location on both sides is refused.
func TestMigrateCommand(t *testing.T) {
	p := newProc(t, nil)
	first := mustOK(t, p.run(t, "token", "ruckus")).stdout
	to := "sqlite:" + filepath.Join(p.dir, "moved", "state.db")
	r := mustOK(t, p.run(t, "migrate", "--from", "sqlite:"+p.statePath(), "--to", to))
	if !strings.Contains(r.stdout, "moved 1 tokens") {
		t.Fatalf("migrate said: %s", r.stdout)
	}
	if got := mustOK(t, p.run(t, "--state", to, "token", "ruckus")).stdout; got != first {
		t.Fatalf("the moved state hands out another token")
	}
	if r := p.run(t, "migrate", "--from", to, "--to", to); r.code != 2 || !strings.Contains(r.stderr, "the same state") {
		t.Fatalf("migrate onto itself: %d %s", r.code, r.stderr)
	}
}
