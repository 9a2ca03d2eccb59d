// Package sink keeps token files: a file holding a profile's current
// token in one of a few formats, rewritten whole on every renewal so that
// a reader never sees half of one, and emptied when the token is gone.
package sink

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/template"

	"github.com/tokenbroker/tokenbroker/config"
)

// Token is what a sink is written from: the token API's body and where
// it is for.
type Token struct {
	Profile     string            `json:"-"`
	Tenant      string            `json:"-"` // the tenant id, "" for a profile
	BaseURL     string            `json:"-"`
	AccessToken string            `json:"access_token"`
	TokenType   string            `json:"token_type"`
	ExpiresAt   string            `json:"expires_at,omitempty"`
	Headers     map[string]string `json:"headers"`
}

// Render is the file's content for t in the sink's format; nil t is an
// empty file (the token is gone).
func Render(s config.Sink, t *Token) ([]byte, error) {
	if t == nil {
		return nil, nil
	}
	switch s.Format {
	case config.SinkToken:
		return []byte(t.AccessToken + "\n"), nil
	case config.SinkHeader:
		return []byte(headerLines(t.Headers)), nil
	case config.SinkJSON:
		b, err := json.Marshal(t)
		return append(b, '\n'), err
	case config.SinkEnv:
		var b strings.Builder
		for _, kv := range Env(t) {
			k, v, _ := strings.Cut(kv, "=")
			fmt.Fprintf(&b, "%s=%s\n", k, shellQuote(v))
		}
		return []byte(b.String()), nil
	case config.SinkTemplate:
		text, name := s.Template, "template"
		if s.TemplateFile != "" {
			raw, err := os.ReadFile(s.TemplateFile)
			if err != nil {
				return nil, fmt.Errorf("template_file: %w", err)
			}
			text, name = string(raw), s.TemplateFile
		}
		tmpl, err := template.New(name).Option("missingkey=error").Parse(text)
		if err != nil {
			return nil, err // text/template names the line
		}
		var b bytes.Buffer
		if err := tmpl.Execute(&b, t); err != nil {
			return nil, err
		}
		return b.Bytes(), nil
	}
	return nil, fmt.Errorf("format %q", s.Format)
}

// Env is the TOKENBROKER_* variables `exec` sets for t, as KEY=value.
func Env(t *Token) []string {
	name := t.Profile
	out := []string{"TOKENBROKER_PROFILE=" + name}
	if t.Tenant != "" {
		out = append(out, "TOKENBROKER_TENANT="+t.Tenant)
	}
	return append(out,
		"TOKENBROKER_TOKEN="+t.AccessToken,
		"TOKENBROKER_BASE_URL="+t.BaseURL,
		"TOKENBROKER_HEADERS="+strings.TrimSuffix(headerLines(t.Headers), "\n"),
		"TOKENBROKER_EXPIRES_AT="+t.ExpiresAt)
}

func headerLines(h map[string]string) string {
	var lines []string
	for k, v := range h {
		lines = append(lines, k+": "+v+"\n")
	}
	sort.Strings(lines)
	return strings.Join(lines, "")
}

// shellQuote quotes v for a POSIX shell (and for env files that follow it).
func shellQuote(v string) string {
	return "'" + strings.ReplaceAll(v, "'", `'\''`) + "'"
}

// CheckDir refuses a sink whose directory others can write: they could
// swap the file for a link, or read a token left by a failed write.
func CheckDir(file string) error {
	dir := filepath.Dir(file)
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("its directory %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	return checkDirOwner(dir, fi)
}

// Write replaces file with data atomically: a temporary file in the same
// directory is written, given the mode (and the old file's owner), synced
// and renamed over it, and the directory is synced. A reader sees the old
// content or the new, never part of either.
func Write(file string, data []byte, mode os.FileMode) error {
	if err := CheckDir(file); err != nil {
		return err
	}
	dir := filepath.Dir(file)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(file)+".tmp*")
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err := tmp.Chmod(mode); err != nil {
		return err
	}
	if old, err := os.Stat(file); err == nil {
		if err := keepOwner(tmp, old); err != nil {
			return err
		}
	}
	if _, err := tmp.Write(data); err != nil {
		return err
	}
	if err := tmp.Sync(); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), file); err != nil {
		return err
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
