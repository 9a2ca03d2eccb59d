package config

import (
	"fmt"
	"net"
	"strings"

	"github.com/tokenbroker/tokenbroker/failure"
)

// Sink is a file that holds a profile's (or tenant's) current token,
// rewritten on every renewal (`sinks:`).
type Sink struct {
	File   string `yaml:"file" json:"file"`
	Format string `yaml:"format" json:"format"` // token | header | json | env | template
	// Mode is the file's permission bits, octal (default "0600").
	Mode         string `yaml:"mode" json:"mode,omitempty"`
	Template     string `yaml:"template" json:"-"`
	TemplateFile string `yaml:"template_file" json:"-"`
}

// Sink formats.
const (
	SinkToken    = "token"
	SinkHeader   = "header"
	SinkJSON     = "json"
	SinkEnv      = "env"
	SinkTemplate = "template"
)

// checkSinks refuses sinks that could not be written as asked.
func checkSinks(owner string, sinks []Sink) error {
	for i, s := range sinks {
		if s.File == "" {
			return failure.New(failure.Config, "%s: sinks[%d] has no `file`", owner, i)
		}
		switch s.Format {
		case SinkToken, SinkHeader, SinkJSON, SinkEnv:
			if s.Template != "" || s.TemplateFile != "" {
				return failure.New(failure.Config, "%s: sink %s: `template` goes with format: template", owner, s.File)
			}
		case SinkTemplate:
			if (s.Template == "") == (s.TemplateFile == "") {
				return failure.New(failure.Config, "%s: sink %s: format template needs `template:` or `template_file:` (one of them)", owner, s.File)
			}
		default:
			return failure.New(failure.Config, "%s: sink %s: format %q, want token, header, json, env or template", owner, s.File, s.Format)
		}
		if _, err := s.FileMode(); err != nil {
			return failure.New(failure.Config, "%s: sink %s: %v", owner, s.File, err)
		}
	}
	return nil
}

// FileMode is the sink's permission bits.
func (s Sink) FileMode() (uint32, error) {
	if s.Mode == "" {
		return 0o600, nil
	}
	var m uint32
	if _, err := fmt.Sscanf(s.Mode, "%o", &m); err != nil || m > 0o777 || m&0o111 != 0 {
		return 0, fmt.Errorf("mode %q, want octal permission bits without execute, such as \"0600\"", s.Mode)
	}
	return m, nil
}

// checkProxyListen refuses proxy_listen addresses that are no host:port,
// or that two profiles or tenants share.
func (c *Config) checkProxyListen() error {
	seen := map[string]string{}
	check := func(who, addr string) error {
		if addr == "" {
			return nil
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return failure.New(failure.Config, "%s: proxy_listen %q, want HOST:PORT such as 127.0.0.1:8431", who, addr)
		}
		if other, dup := seen[addr]; dup && !strings.HasSuffix(addr, ":0") {
			return failure.New(failure.Config, "%s and %s both have proxy_listen %s", other, who, addr)
		}
		seen[addr] = who
		return nil
	}
	for _, name := range c.Names() {
		p := c.Profiles[name]
		if err := check("profile "+name, p.ProxyListen); err != nil {
			return err
		}
		for _, t := range p.Tenants.List {
			if err := check("tenant "+name+"/"+t.ID, t.ProxyListen); err != nil {
				return err
			}
		}
	}
	return nil
}
