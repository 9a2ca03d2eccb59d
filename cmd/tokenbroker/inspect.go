package main

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/failure"
	"github.com/tokenbroker/tokenbroker/provider"
	"github.com/tokenbroker/tokenbroker/token"
)

// inspection is what `inspect` shows: facts about a token, never a secret.
type inspection struct {
	Profile         string         `json:"profile"`
	Tenant          *config.Tenant `json:"tenant,omitempty"`        // PROFILE/TENANT: the MSP's token, for this tenant
	TenantHeader    string         `json:"tenant_header,omitempty"` // the vendor's header that names it
	Vendor          string         `json:"vendor"`
	Grant           string         `json:"grant"`
	TokenType       string         `json:"token_type,omitempty"`
	Scopes          []string       `json:"scopes,omitempty"`
	ObtainedAt      string         `json:"obtained_at,omitempty"`
	ExpiresAt       string         `json:"expires_at,omitempty"`
	ExpiresIn       string         `json:"expires_in"`
	HasRefreshToken bool           `json:"has_refresh_token"`
	RefreshExpires  string         `json:"refresh_token_expires_at,omitempty"`
	Generation      int64          `json:"generation"`
	Claims          map[string]any `json:"jwt_claims,omitempty"`
	Introspection   map[string]any `json:"introspection,omitempty"` // RFC 7662, when the server has the endpoint
	Extra           map[string]any `json:"extra,omitempty"`
}

func (a *app) inspectCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "inspect PROFILE",
		Short: "Show the stored token's claims, expiry, scopes and grant (never secrets)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := a.load()
			if err != nil {
				return err
			}
			prof, tenant, err := b.Tenant(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			name := prof.Name
			p, err := b.Provider(name)
			if err != nil {
				return err
			}
			t, err := b.Stored(cmd.Context(), name)
			if err != nil {
				return err
			}
			if t == nil {
				return &failure.Error{Kind: failure.Other, Profile: name, Msg: "no token stored",
					Hint: "run `tokenbroker token " + name + "` (or `login`/`import`) first"}
			}
			in := inspect(name, p.Describe().Vendor, t)
			if tenant != nil {
				in.Tenant, in.TenantHeader = tenant, p.Describe().TenantHeader
			}
			if ip, ok := p.(provider.Introspector); ok {
				m, err := ip.Introspect(cmd.Context(), t)
				if err != nil {
					a.warn(err.Error())
				}
				in.Introspection = m
			}
			if asJSON {
				return writeJSON(a, in)
			}
			printInspection(a, in)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func inspect(name, vendor string, t *token.Token) inspection {
	in := inspection{
		Profile: name, Vendor: vendor, Grant: t.Grant, TokenType: t.TokenType,
		Scopes: strings.Fields(t.Scope), HasRefreshToken: t.RefreshToken != "",
		Generation: t.Generation, Extra: t.Extra, ExpiresIn: expiresIn(t),
	}
	if !t.ObtainedAt.IsZero() {
		in.ObtainedAt = t.ObtainedAt.UTC().Format(time.RFC3339)
	}
	if !t.Expiry.IsZero() {
		in.ExpiresAt = t.Expiry.UTC().Format(time.RFC3339)
	}
	if !t.RefreshExpiry.IsZero() {
		in.RefreshExpires = t.RefreshExpiry.UTC().Format(time.RFC3339)
	}
	if claims, ok := token.Claims(t.AccessToken); ok {
		in.Claims = claims
	}
	return in
}

func printInspection(a *app, in inspection) {
	row := func(k string, v any) {
		if f, ok := v.(float64); ok && f == float64(int64(f)) {
			v = int64(f) // JSON numbers such as exp print as integers
		}
		fmt.Fprintf(a.stdout, "%-22s %v\n", k, v)
	}
	row("profile", in.Profile)
	if in.Tenant != nil {
		row("tenant", strings.TrimSpace(in.Tenant.ID+" "+in.Tenant.Name)+" (the MSP's token, with "+in.TenantHeader+")")
	}
	row("vendor", in.Vendor)
	row("grant", in.Grant)
	row("obtained at", in.ObtainedAt)
	row("expires", in.ExpiresIn)
	row("refresh token", map[bool]string{true: "yes", false: "no"}[in.HasRefreshToken])
	if in.RefreshExpires != "" {
		row("refresh token expires", in.RefreshExpires)
	}
	if len(in.Scopes) > 0 {
		row("scopes", strings.Join(in.Scopes, " "))
	}
	row("generation", in.Generation)
	for _, group := range []struct {
		title string
		m     map[string]any
	}{{"claim", in.Claims}, {"field", in.Extra}, {"introspection", in.Introspection}} {
		keys := make([]string, 0, len(group.m))
		for k := range group.m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			row(group.title+" "+k, group.m[k])
		}
	}
}
