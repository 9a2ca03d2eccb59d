package config

import (
	"fmt"
	"os"
	"strings"

	"github.com/tokenbroker/tokenbroker/failure"
)

// Secret is a config value that may be a reference: `env:NAME` reads an
// environment variable, `file:PATH` reads a file (a trailing newline is
// trimmed from both), `exec:COMMAND ARGS` runs a command (`op read ...`)
// and takes its output,
// anything else is the value itself (allowed, with a warning).
type Secret string

// IsSet reports whether anything was configured.
func (s Secret) IsSet() bool { return s != "" }

// Inline reports whether the value is written in the config itself.
func (s Secret) Inline() bool {
	return s != "" && !strings.HasPrefix(string(s), "env:") && !strings.HasPrefix(string(s), "file:") && !strings.HasPrefix(string(s), "exec:")
}

// Resolve returns the secret's value. Errors name the variable or file, never
// a value.
func (s Secret) Resolve() (string, error) {
	v := string(s)
	switch {
	case strings.HasPrefix(v, "env:"):
		name := strings.TrimPrefix(v, "env:")
		val, ok := os.LookupEnv(name)
		if !ok || val == "" {
			return "", failure.New(failure.Config, "environment variable %s is not set: export it or change the reference", name)
		}
		// Trimmed as a file's value is: a variable made from a file (a
		// Kubernetes secret) keeps its trailing newline.
		return strings.TrimRight(val, "\r\n"), nil
	case strings.HasPrefix(v, "exec:"):
		return resolveExec(strings.TrimPrefix(v, "exec:"))
	case strings.HasPrefix(v, "file:"):
		path := expandHome(strings.TrimPrefix(v, "file:"))
		b, err := os.ReadFile(path)
		if err != nil {
			return "", failure.New(failure.Config, "cannot read secret file %s: %v", path, unwrapPathError(err))
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	return v, nil
}

// String never prints the value, so a Secret that reaches a log by mistake
// shows only its reference.
func (s Secret) String() string {
	if s.Inline() {
		return "(inline secret)"
	}
	return string(s)
}

// GoString hides inline values from %#v too.
func (s Secret) GoString() string { return fmt.Sprintf("config.Secret(%q)", s.String()) }

func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

func expandHome(p string) string {
	if strings.HasPrefix(p, "~/") {
		if home, err := os.UserHomeDir(); err == nil {
			return home + p[1:]
		}
	}
	return p
}
