package emulator

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Vendor keys of Set.URLs, in the order Start assigns ports.
var vendorKeys = []string{"aruba-central", "ruckus-one", "ringcentral", "workspace-one", "catalyst-center", "mist", "meraki"}

// Set is every emulator running on loopback, one HTTP server (and port) each, as
// `tokenbroker emulate`, `tokenbroker demo` and tests use them.
type Set struct {
	Aruba        *Aruba
	Ruckus       *Ruckus
	RingCentral  *RingCentral
	WorkspaceOne *WorkspaceOne
	Catalyst     *CatalystCenter
	Mist, Meraki *StaticKeyAPI
	// URLs maps "aruba-central", "ruckus-one", "ringcentral", "workspace-one",
	// "catalyst-center", "mist" and "meraki" to http://HOST:PORT.
	URLs map[string]string

	servers []*http.Server
	wg      sync.WaitGroup
	close   sync.Once
}

// Start runs every emulator on its own server. addrHost is the host to listen on
// ("127.0.0.1" when empty); each server gets a random port, unless addrHost carries a port
// ("127.0.0.1:9000"), in which case the servers take consecutive ports from it in the order
// aruba-central, ruckus-one, ringcentral, workspace-one, catalyst-center, mist, meraki, so that
// `emulate --listen` gives stable URLs. now is the shared clock (time.Now when nil).
// RingCentral runs as the production environment.
func Start(addrHost string, now Clock) (*Set, error) {
	if now == nil {
		now = time.Now
	}
	host, basePort, err := splitListen(addrHost)
	if err != nil {
		return nil, err
	}
	s := &Set{
		Aruba:        NewAruba(now),
		Ruckus:       NewRuckus(now),
		RingCentral:  NewRingCentral(now, "production"),
		WorkspaceOne: NewWorkspaceOne(now),
		Catalyst:     NewCatalystCenter(now),
		Mist:         NewStaticKeyAPI("Token", "mist-emulator-api-key"),
		Meraki:       NewStaticKeyAPI("Bearer", "meraki-emulator-api-key"),
		URLs:         make(map[string]string, len(vendorKeys)),
	}
	handlers := map[string]http.Handler{
		"aruba-central":   s.Aruba,
		"ruckus-one":      s.Ruckus,
		"ringcentral":     s.RingCentral,
		"workspace-one":   s.WorkspaceOne,
		"catalyst-center": s.Catalyst,
		"mist":            s.Mist,
		"meraki":          s.Meraki,
	}
	for i, key := range vendorKeys {
		port := 0
		if basePort > 0 {
			port = basePort + i
		}
		l, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("emulator: listen for %s: %w", key, err)
		}
		srv := &http.Server{Handler: handlers[key], ReadHeaderTimeout: 10 * time.Second}
		s.servers = append(s.servers, srv)
		s.URLs[key] = "http://" + l.Addr().String()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			_ = srv.Serve(l) // returns http.ErrServerClosed once Close runs
		}()
	}
	return s, nil
}

// splitListen reads "host" or "host:port" (IPv6 hosts with or without brackets).
func splitListen(addr string) (host string, port int, err error) {
	if addr == "" {
		return "127.0.0.1", 0, nil
	}
	h, p, splitErr := net.SplitHostPort(addr)
	if splitErr != nil {
		// No port: a bare host, maybe a bracketed or bare IPv6 literal.
		return strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]"), 0, nil
	}
	port, err = strconv.Atoi(p)
	if err != nil || port < 0 || port+len(vendorKeys) > 65536 {
		return "", 0, fmt.Errorf("emulator: bad listen address %q", addr)
	}
	if h == "" {
		h = "127.0.0.1"
	}
	return h, port, nil
}

// Close stops every server, drops open connections and waits for the serve loops to end.
// It is safe to call more than once.
func (s *Set) Close() {
	s.close.Do(func() {
		for _, srv := range s.servers {
			_ = srv.Close() // an error closing a listener of a dying set cannot be acted upon
		}
		s.wg.Wait()
	})
}

// ConfigYAML returns a ready tokenbroker config with one profile per emulator, pointing at
// the running servers with base_url and carrying the emulators' test credentials inline.
func (s *Set) ConfigYAML() string {
	q := func(v string) string {
		b, _ := json.Marshal(v) // a JSON string is a valid YAML double-quoted scalar
		return string(b)
	}
	var b strings.Builder
	profile := func(name string, fields ...string) {
		fmt.Fprintf(&b, "  %s:\n", name)
		for i := 0; i+1 < len(fields); i += 2 {
			fmt.Fprintf(&b, "    %s: %s\n", fields[i], q(fields[i+1]))
		}
	}
	b.WriteString("# tokenbroker config for the emulators started by `tokenbroker emulate` or `demo`.\n")
	b.WriteString("# The credentials are emulator test values, inline on purpose.\n")
	b.WriteString("profiles:\n")
	a := s.Aruba
	profile("aruba",
		"provider", "aruba-central",
		"base_url", s.URLs["aruba-central"],
		"client_id", a.ClientID,
		"client_secret", a.ClientSecret,
		"customer_id", a.CustomerID,
		"username", a.Username,
		"password", a.Password)
	r := s.Ruckus
	profile("ruckus",
		"provider", "ruckus-one",
		"base_url", s.URLs["ruckus-one"],
		"tenant_id", r.TenantID,
		"client_id", r.ClientID,
		"client_secret", r.ClientSecret)
	rc := s.RingCentral
	profile("ringcentral",
		"provider", "ringcentral",
		"base_url", s.URLs["ringcentral"],
		"client_id", rc.ClientID,
		"client_secret", rc.ClientSecret,
		"jwt", rc.JWT,
		"environment", rc.Environment)
	ws := s.WorkspaceOne
	profile("workspace-one",
		"provider", "workspace-one",
		"base_url", s.URLs["workspace-one"],
		"client_id", ws.ClientID,
		"client_secret", ws.ClientSecret)
	c := s.Catalyst
	profile("catalyst",
		"provider", "oauth2",
		"base_url", s.URLs["catalyst-center"],
		"token_url", s.URLs["catalyst-center"]+"/dna/system/api/v1/auth/token",
		"grant", "client_credentials",
		"auth_style", "basic",
		"client_id", c.Username,
		"client_secret", c.Password,
		"token_field", "Token",
		"header", "X-Auth-Token: {token}")
	profile("mist",
		"provider", "static",
		"base_url", s.URLs["mist"],
		"api_key", s.Mist.Key,
		"header", "Authorization: "+s.Mist.Scheme+" {token}")
	profile("meraki",
		"provider", "static",
		"base_url", s.URLs["meraki"],
		"api_key", s.Meraki.Key,
		"header", "Authorization: "+s.Meraki.Scheme+" {token}")
	return b.String()
}
