package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/store"
)

func (a *app) tenantsCommand() *cobra.Command {
	var asJSON, refresh bool
	cmd := &cobra.Command{
		Use:   "tenants PROFILE",
		Short: "List an MSP profile's tenants (call one as PROFILE/TENANT, by name or id)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := a.load()
			if err != nil {
				return err
			}
			name := args[0]
			var list []config.Tenant
			var at time.Time
			if refresh {
				list, err = b.DiscoverTenants(cmd.Context(), name)
				at = time.Now()
			} else {
				list, at, err = b.Tenants(cmd.Context(), name)
			}
			if err != nil {
				return err
			}
			// serve's counts of the calls it proxied for each tenant (it adds
			// them to the state every 30 s).
			var calls map[string]store.TenantCall
			if st, err := b.Store(); err == nil {
				if tc, ok := st.(store.TenantCalls); ok {
					calls, _ = tc.TenantCalls(cmd.Context(), name)
				}
			}
			type row struct {
				config.Tenant
				Calls    int64  `json:"calls"`
				LastCall string `json:"last_call,omitempty"`
			}
			rows := make([]row, len(list))
			for i, t := range list {
				rows[i].Tenant = t
				if c, ok := calls[t.ID]; ok {
					rows[i].Calls, rows[i].LastCall = c.Calls, c.Last.UTC().Format(time.RFC3339)
				}
			}
			if asJSON {
				out := map[string]any{"profile": name, "tenants": rows}
				if !at.IsZero() {
					out["discovered_at"] = at.UTC().Format(time.RFC3339)
				}
				return writeJSON(a, out)
			}
			p, _ := b.Config().Profile(name)
			if len(list) == 0 {
				if p.Tenants.Discover {
					a.warn(fmt.Sprintf("profile %q: no tenants discovered yet; run `tokenbroker tenants %s --refresh`", name, name))
				} else {
					a.warn(fmt.Sprintf("profile %q has no tenants", name))
				}
				return nil
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tID\tCALLS\tLAST CALL")
			for _, r := range rows {
				last := "-"
				if r.LastCall != "" {
					last = r.LastCall
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", r.Name, r.ID, r.Calls, last)
			}
			tw.Flush()
			if !at.IsZero() {
				fmt.Fprintf(a.stdout, "%d tenants, discovered %s\n", len(list), at.UTC().Format(time.RFC3339))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&refresh, "refresh", false, "ask the vendor for the list now (`tenants: discover`)")
	return cmd
}
