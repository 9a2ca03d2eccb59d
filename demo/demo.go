// Package demo runs every vendor flow end to end through a Broker against
// the emulators on loopback, for `tokenbroker demo` and as a smoke test.
package demo

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/tokenbroker/tokenbroker"
	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/emulator"
	_ "github.com/tokenbroker/tokenbroker/store/sqlite" // the demo's state
)

// Row is one step of the demo.
type Row struct {
	Profile string
	Vendor  string
	Step    string
	OK      bool
	Detail  string
}

// Run starts the emulators, runs every flow and returns one row per step.
// The error is for the demo's own set-up failing; failed steps are rows.
func Run(ctx context.Context) ([]Row, error) {
	set, err := emulator.Start("127.0.0.1", nil)
	if err != nil {
		return nil, fmt.Errorf("starting the emulators: %w", err)
	}
	defer set.Close()
	dir, err := os.MkdirTemp("", "tokenbroker-demo-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	cfg, err := Config(set)
	if err != nil {
		return nil, err
	}
	cfg.State = "sqlite:" + filepath.Join(dir, "state.db")
	st, err := tokenbroker.OpenStore(cfg)
	if err != nil {
		return nil, err
	}
	b := tokenbroker.New(cfg, tokenbroker.Options{Store: st})
	defer b.Close()
	r := &runner{ctx: ctx, b: b, cfg: cfg}
	r.aruba(set)
	r.arubaMSP()
	r.simple("ruckus", "/venues", true)
	r.ringcentral()
	r.simple("workspace-one", "/SAAS/jersey/manager/api/scim/Users", true)
	r.simple("catalyst", "/dna/intent/api/v1/network-device", false)
	r.simple("mist", "/api/v1/self", false)
	r.simple("meraki", "/api/v1/self", false)
	return r.rows, nil
}

// Config is the emulators' ready config plus the profiles the demo adds: an
// Aruba MSP login and delegated tenants.
func Config(set *emulator.Set) (*config.Config, error) {
	cfg, err := config.Parse([]byte(set.ConfigYAML()))
	if err != nil {
		return nil, fmt.Errorf("the emulators' config: %w", err)
	}
	msp := *cfg.Profiles["aruba"]
	msp.Name = "aruba-msp"
	msp.ClientID = config.Secret(set.Aruba.MSPClientID)
	msp.ClientSecret = config.Secret(set.Aruba.MSPClientSecret)
	msp.MSP = true
	cfg.Profiles[msp.Name] = &msp
	cfg.Profiles["ruckus"].DelegateTenant = set.Ruckus.DelegatedTenants[0]
	return cfg, nil
}

type runner struct {
	ctx  context.Context
	b    *tokenbroker.Broker
	cfg  *config.Config
	rows []Row
}

// step records one step; it returns whether the step passed.
func (r *runner) step(profile, name string, fn func() (string, error)) bool {
	vendor := profile
	if p, err := r.b.Provider(profile); err == nil {
		vendor = p.Describe().Vendor
	}
	detail, err := fn()
	if err != nil {
		detail = err.Error()
	}
	r.rows = append(r.rows, Row{Profile: profile, Vendor: vendor, Step: name, OK: err == nil, Detail: detail})
	return err == nil
}

func (r *runner) obtain(profile string, force bool) (*tokenbroker.Token, string, error) {
	t, err := r.b.Token(r.ctx, profile, tokenbroker.TokenOptions{Force: force})
	if err != nil {
		return nil, "", err
	}
	return t, describe(t), nil
}

func describe(t *tokenbroker.Token) string {
	s := "grant " + t.Grant
	if !t.Expiry.IsZero() {
		s += fmt.Sprintf(", expires in %s", time.Until(t.Expiry).Round(time.Second))
	}
	if t.RefreshToken != "" {
		s += ", with refresh token"
	}
	return s
}

// api calls the profile's protected API with the broker's headers and
// expects want.
func (r *runner) api(profile, path string, want int) (string, error) {
	p, err := r.b.Provider(profile)
	if err != nil {
		return "", err
	}
	h, err := r.b.Headers(r.ctx, profile)
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(r.ctx, http.MethodGet, p.Describe().APIBase+path, nil)
	if err != nil {
		return "", err
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != want {
		return "", fmt.Errorf("GET %s answered %d, want %d", path, resp.StatusCode, want)
	}
	return fmt.Sprintf("GET %s -> %d", path, resp.StatusCode), nil
}

// simple is the flow of a vendor with a non-interactive grant: obtain, call
// the API, renew, call again.
func (r *runner) simple(profile, path string, renew bool) {
	if !r.step(profile, "obtain", func() (string, error) { _, d, err := r.obtain(profile, false); return d, err }) {
		return
	}
	r.step(profile, "call API", func() (string, error) { return r.api(profile, path, http.StatusOK) })
	if !renew {
		return
	}
	var before string
	if t, err := r.b.Stored(r.ctx, profile); err == nil && t != nil {
		before = t.AccessToken
	}
	r.step(profile, "renew", func() (string, error) {
		t, d, err := r.obtain(profile, true)
		if err == nil && t.AccessToken == before {
			err = fmt.Errorf("the renewed token is the old one")
		}
		return d, err
	})
	r.step(profile, "call API after renew", func() (string, error) { return r.api(profile, path, http.StatusOK) })
}

func (r *runner) aruba(set *emulator.Set) {
	const p, path = "aruba", "/monitoring/v1/aps"
	if !r.step(p, "import offline token", func() (string, error) {
		t, err := r.b.Import(r.ctx, p, set.Aruba.IssueOfflineToken(), tokenbroker.ImportOptions{})
		if err != nil {
			return "", err
		}
		return describe(t), nil
	}) {
		return
	}
	r.step(p, "call API", func() (string, error) { return r.api(p, path, http.StatusOK) })
	r.step(p, "refresh (rotates refresh token)", func() (string, error) {
		before, _ := r.b.Stored(r.ctx, p)
		t, d, err := r.obtain(p, true)
		if err == nil && before != nil && t.RefreshToken == before.RefreshToken {
			err = fmt.Errorf("the refresh token did not rotate")
		}
		return d, err
	})
	r.step(p, "call API after refresh", func() (string, error) { return r.api(p, path, http.StatusOK) })
	r.step(p, "login (CSRF + auth code)", func() (string, error) {
		t, err := r.b.Login(r.ctx, p, nil)
		if err != nil {
			return "", err
		}
		return describe(t), nil
	})
	r.step(p, "call API after login", func() (string, error) { return r.api(p, path, http.StatusOK) })
	r.revoke(p, path, http.StatusUnauthorized)
}

func (r *runner) arubaMSP() {
	const p = "aruba-msp"
	if !r.step(p, "MSP login (client credentials for customer)", func() (string, error) {
		t, err := r.b.Login(r.ctx, p, nil)
		if err != nil {
			return "", err
		}
		return describe(t), nil
	}) {
		return
	}
	r.step(p, "call API", func() (string, error) { return r.api(p, "/monitoring/v1/aps", http.StatusOK) })
	r.step(p, "refresh with minted credentials", func() (string, error) { _, d, err := r.obtain(p, true); return d, err })
}

func (r *runner) ringcentral() {
	const p, path = "ringcentral", "/restapi/v1.0/account/~"
	r.simple(p, path, true)
	r.revoke(p, path, http.StatusUnauthorized)
}

// revoke revokes and checks that the old token is refused.
func (r *runner) revoke(profile, path string, want int) {
	old, err := r.b.Stored(r.ctx, profile)
	if err != nil || old == nil {
		return
	}
	if !r.step(profile, "revoke", func() (string, error) {
		at, err := r.b.Revoke(r.ctx, profile, nil)
		if err != nil {
			return "", err
		}
		if !at {
			return "", fmt.Errorf("not revoked at the vendor")
		}
		return "revoked at the vendor, forgotten locally", nil
	}) {
		return
	}
	r.step(profile, "revoked token refused", func() (string, error) {
		p, _ := r.b.Provider(profile)
		req, _ := http.NewRequestWithContext(r.ctx, http.MethodGet, p.Describe().APIBase+path, nil)
		for k, v := range p.Headers(old) {
			req.Header[k] = v
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return "", err
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			return "", fmt.Errorf("the revoked token got %d, want %d", resp.StatusCode, want)
		}
		return fmt.Sprintf("GET %s -> %d", path, resp.StatusCode), nil
	})
}
