package config

import (
	"fmt"
	"sync"

	"go.yaml.in/yaml/v3"
)

// source is the text a Config was parsed from. The line of each profile is
// found only when an error needs it: parsing the file a second time for
// positions would cost every CLI run (yaml.v3 reads about 2.5 µs a line).
type source struct {
	path  string
	data  []byte
	once  sync.Once
	lines map[string]int // profile name -> line of its key
}

func (s *source) line(profile string) int {
	s.once.Do(func() {
		s.lines = map[string]int{}
		var doc yaml.Node
		if yaml.Unmarshal(s.data, &doc) != nil || len(doc.Content) == 0 {
			return
		}
		top := doc.Content[0]
		for i := 0; i+1 < len(top.Content); i += 2 {
			if top.Content[i].Value != "profiles" {
				continue
			}
			profiles := top.Content[i+1]
			for j := 0; j+1 < len(profiles.Content); j += 2 {
				s.lines[profiles.Content[j].Value] = profiles.Content[j].Line
			}
		}
	})
	return s.lines[profile]
}

// Location says where the profile is defined, "config.yaml line 12" (or
// "line 12" for a config parsed from bytes); "" for one built in code.
func (p *Profile) Location() string {
	if p.src == nil {
		return ""
	}
	n := p.src.line(p.Name)
	switch {
	case n == 0:
		return p.src.path
	case p.src.path == "":
		return fmt.Sprintf("line %d", n)
	}
	return fmt.Sprintf("%s line %d", p.src.path, n)
}
