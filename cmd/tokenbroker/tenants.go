package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tokenbroker/tokenbroker/config"
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
			if asJSON {
				out := map[string]any{"profile": name, "tenants": append([]config.Tenant{}, list...)}
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
			fmt.Fprintln(tw, "NAME\tID")
			for _, t := range list {
				fmt.Fprintf(tw, "%s\t%s\n", t.Name, t.ID)
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
