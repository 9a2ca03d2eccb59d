package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/tokenbroker/tokenbroker/status"
)

func (a *app) statusCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:         "status",
		Annotations: map[string]string{quickRun: ""},
		Short:       "Show every profile: state, expiry, refresh-token expiry, last refresh, last error",
		Args:        cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			b, err := a.load()
			if err != nil {
				return err
			}
			rows, err := status.Of(cmd.Context(), b)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a, rows)
			}
			w := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "PROFILE\tVENDOR\tSTATE\tEXPIRES IN\tREFRESH TOKEN EXPIRES IN\tLAST REFRESH\tLAST ERROR\tNEXT")
			for _, r := range rows {
				vendor := r.Vendor
				if r.Tenants > 0 {
					vendor += fmt.Sprintf(" (MSP, %d tenants)", r.Tenants)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Profile, vendor, r.State,
					until(r.ExpiresAt), until(r.RefreshExpiresAt), ago(r.LastRefresh), short(r.LastError), r.NextAction)
			}
			return w.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func until(t *time.Time) string {
	if t == nil {
		return "-"
	}
	d := time.Until(*t)
	if d < 0 {
		return "expired"
	}
	return round(d)
}

func ago(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return round(time.Since(*t)) + " ago"
}

func short(s string) string {
	if s == "" {
		return "-"
	}
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}
