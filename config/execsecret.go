package config

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/google/shlex"

	"github.com/tokenbroker/tokenbroker/failure"
)

// execTimeout bounds an `exec:` secret's command (a variable for tests).
var execTimeout = 10 * time.Second

// execCache keeps each `exec:` secret's value for the process's life:
// commands such as `op read` may prompt or be slow, and run once.
var execCache struct {
	mu sync.Mutex
	m  map[string]string
}

// ForgetExecSecrets makes the next use of each `exec:` secret run its
// command again (serve calls it on SIGHUP).
func ForgetExecSecrets() {
	execCache.mu.Lock()
	execCache.m = nil
	execCache.mu.Unlock()
}

// resolveExec runs an `exec:COMMAND ARGS` reference: the words are split by
// the shell's quoting rules but run without a shell; the value is its
// standard output, trimmed. On failure the error names the command and
// shows its standard error, never its output.
func resolveExec(line string) (string, error) {
	execCache.mu.Lock()
	v, ok := execCache.m[line]
	execCache.mu.Unlock()
	if ok {
		return v, nil
	}
	words, err := shlex.Split(line)
	if err != nil || len(words) == 0 {
		return "", failure.New(failure.Config, "exec:%s: not a command (%v)", line, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), execTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, words[0], words[1:]...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &limited{&stdout, 64 << 10}, &limited{&stderr, 4 << 10}
	cmd.WaitDelay = time.Second // its children may hold the pipes open after it is killed
	err = cmd.Run()
	switch {
	case ctx.Err() != nil:
		return "", failure.New(failure.Config, "exec:%s did not finish within %s", line, execTimeout)
	case err != nil:
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = "(nothing on its standard error)"
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "", failure.New(failure.Config, "exec:%s failed (%v): %s", line, ee.ProcessState, msg)
		}
		return "", failure.New(failure.Config, "exec:%s could not run: %v", line, err)
	}
	v = strings.TrimSpace(stdout.String())
	if v == "" {
		return "", failure.New(failure.Config, "exec:%s printed nothing on its standard output", line)
	}
	execCache.mu.Lock()
	if execCache.m == nil {
		execCache.m = map[string]string{}
	}
	execCache.m[line] = v
	execCache.mu.Unlock()
	return v, nil
}

// limited keeps at most n bytes of what is written to it.
type limited struct {
	b *bytes.Buffer
	n int
}

func (l *limited) Write(p []byte) (int, error) {
	if room := l.n - l.b.Len(); room > 0 {
		l.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// checkExecSafe refuses `exec:` references in a config file that others
// than its owner can write: they could make tokenbroker run their command.
func (c *Config) checkExecSafe(path string) error {
	var refs []string
	for _, name := range c.Names() {
		for field, s := range c.Profiles[name].secrets() {
			if strings.HasPrefix(string(s), "exec:") {
				refs = append(refs, fmt.Sprintf("profiles.%s.%s", name, field))
			}
		}
	}
	for _, name := range c.ClientNames() {
		for _, k := range append([]Secret{c.Clients[name].Key}, c.Clients[name].Keys...) {
			if strings.HasPrefix(string(k), "exec:") {
				refs = append(refs, "clients."+name+".key")
			}
		}
	}
	if strings.HasPrefix(string(c.Key), "exec:") {
		refs = append(refs, "key")
	}
	if len(refs) == 0 {
		return nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil
	}
	if perm := fi.Mode().Perm(); perm&0o022 != 0 {
		return failure.New(failure.Config, "%s: %s runs a command (exec:), but others can write this file (mode %04o), so they could make tokenbroker run theirs: run `chmod go-w %s`",
			path, refs[0], perm, path)
	}
	return nil
}
