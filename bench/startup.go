package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/tokenbroker/tokenbroker"
	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/store"
)

// startupRounds is how many rounds the start-up runs alternate in: many
// short ones, so that a slow spell of a shared VM weighs on every command
// alike and the ratios stay put (with 5 rounds the same binaries moved by
// 10% between runs of the bench).
const startupRounds = 30

// startupProfiles is how many profiles the `status` run reports.
const startupProfiles = 100

// command is one whole process the start-up section times.
type command struct {
	name string
	argv []string
}

// startup times whole processes, as a script pays for them: tokenbroker
// built as the README installs it (CGO_ENABLED=0), a Go hello-world and a
// Go program that reads one row of SQLite with the same driver, each run
// `runs` times in alternating rounds (like hyperfine -N: fork, exec, wait,
// no shell). It returns the mean wall time of each command.
func startup(dir, tokenURL string, runs int) (map[string]time.Duration, []command, error) {
	root, err := moduleRoot()
	if err != nil {
		return nil, nil, err
	}
	bin := filepath.Join(dir, "bin")
	for name, pkg := range map[string]string{"tokenbroker": "./cmd/tokenbroker", "hello": "./bench/startup/hello", "sqlitefloor": "./bench/startup/sqlitefloor"} {
		cmd := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(bin, name), pkg)
		cmd.Dir, cmd.Env = root, append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, nil, fmt.Errorf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	state := filepath.Join(dir, "startup", "state.db")
	cfgPath := filepath.Join(dir, "startup", "config.yaml")
	var y strings.Builder
	fmt.Fprintf(&y, "state: sqlite:%s\nprofiles:\n", state)
	profiles := map[string]*config.Profile{}
	for i := range startupProfiles {
		name := fmt.Sprintf("p%03d", i)
		fmt.Fprintf(&y, "  %s:\n    provider: oauth2\n    token_url: %s\n    client_id: id-%d\n    client_secret: secret-%d\n", name, tokenURL, i, i)
		profiles[name] = &config.Profile{Name: name, Provider: "oauth2", TokenURL: tokenURL, ClientID: config.Secret(fmt.Sprint("id-", i)), ClientSecret: config.Secret(fmt.Sprint("secret-", i))}
	}
	if err := os.MkdirAll(filepath.Dir(state), 0o700); err != nil {
		return nil, nil, err
	}
	if err := os.WriteFile(cfgPath, []byte(y.String()), 0o600); err != nil {
		return nil, nil, err
	}
	// The same state, through a config that names one profile.
	onePath := filepath.Join(dir, "startup", "one.yaml")
	one := fmt.Sprintf("state: sqlite:%s\nprofiles:\n  p000:\n    provider: oauth2\n    token_url: %s\n    client_id: id-0\n    client_secret: secret-0\n", state, tokenURL)
	if err := os.WriteFile(onePath, []byte(one), 0o600); err != nil {
		return nil, nil, err
	}
	// Every profile holds a valid token, so each run below is a cache hit.
	cfg := &config.Config{State: "sqlite:" + state, Profiles: profiles}
	b := tokenbroker.New(cfg, tokenbroker.Options{OpenStore: func() (store.Store, error) { return tokenbroker.OpenStore(cfg) }})
	for _, name := range cfg.Names() {
		if _, err := b.Token(context.Background(), name, tokenbroker.TokenOptions{}); err != nil {
			b.Close()
			return nil, nil, err
		}
	}
	b.Close()

	cmds := []command{
		{"Go hello-world", []string{filepath.Join(bin, "hello")}},
		{"Go program reading one SQLite row", []string{filepath.Join(bin, "sqlitefloor"), state}},
		{"tokenbroker version", []string{filepath.Join(bin, "tokenbroker"), "version"}},
		{"tokenbroker token p000 (cache hit, 1 profile configured)", []string{filepath.Join(bin, "tokenbroker"), "--config", onePath, "token", "p000"}},
		{fmt.Sprintf("tokenbroker token p000 (cache hit, %d profiles configured)", startupProfiles), []string{filepath.Join(bin, "tokenbroker"), "--config", cfgPath, "token", "p000"}},
		{fmt.Sprintf("tokenbroker status (%d profiles)", startupProfiles), []string{filepath.Join(bin, "tokenbroker"), "--config", cfgPath, "status"}},
	}
	samples := map[string][]time.Duration{}
	rounds := startupRounds
	for round := range rounds {
		for _, c := range cmds {
			n := runs / rounds
			if round < runs%rounds {
				n++
			}
			for range n {
				d, err := timeRun(c.argv)
				if err != nil {
					return nil, nil, fmt.Errorf("%s: %v", c.name, err)
				}
				samples[c.name] = append(samples[c.name], d)
			}
		}
	}
	means := map[string]time.Duration{}
	for name, s := range samples {
		means[name] = trimmedMean(s)
	}
	return means, cmds, nil
}

// moduleRoot is the directory of tokenbroker's go.mod, so the bench builds
// the same packages from the root (go run ./bench) and from its test.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil || strings.TrimSpace(string(out)) == "" {
		return "", fmt.Errorf("cannot find tokenbroker's go.mod: %v", err)
	}
	return filepath.Dir(strings.TrimSpace(string(out))), nil
}

// timeRun runs argv once, its output discarded, and returns its wall time.
func timeRun(argv []string) (time.Duration, error) {
	cmd := exec.Command(argv[0], argv[1:]...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("%v: %s", err, stderr.String())
	}
	return d, nil
}

// trimmedMean is the mean without the slowest and fastest tenth, which on
// a shared machine are other processes' doing.
func trimmedMean(s []time.Duration) time.Duration {
	s = append([]time.Duration(nil), s...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	cut := len(s) / 10
	s = s[cut : len(s)-cut]
	var sum time.Duration
	for _, d := range s {
		sum += d
	}
	return sum / time.Duration(len(s))
}

// reportStartup writes the start-up section.
func reportStartup(rep *report, means map[string]time.Duration, cmds []command, runs int) {
	rep.section("CLI start-up", fmt.Sprintf("Whole processes, fork to exit, %d runs of each in %d alternating rounds (the fastest and slowest tenth left out); every binary built with `CGO_ENABLED=0 go build -trimpath`, as the README installs tokenbroker. The main config has %d profiles, each holding a valid token; a second names only the first of them.", runs, startupRounds, startupProfiles))
	hello := means[cmds[0].name]
	rep.printf("| command | mean | / hello-world |\n|---|---|---|\n")
	for _, c := range cmds {
		rep.printf("| %s | %s | %.2f |\n", c.name, means[c.name].Round(10*time.Microsecond), float64(means[c.name])/float64(hello))
	}
	tok, tok100, status := means[cmds[3].name], means[cmds[4].name], means[cmds[5].name]
	rep.printf("\n**token on a cache hit / hello-world: %.2f** with one profile configured, %.2f with %d (aim: at most 3.0; Google's oauth2l was measured at 3.1). **status of %d profiles / token with the same config: %.2f** (aim: under 2).\n",
		float64(tok)/float64(hello), float64(tok100)/float64(hello), startupProfiles, startupProfiles, float64(status)/float64(tok100))
}
