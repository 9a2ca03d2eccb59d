package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
)

func (a *app) auditCommand() *cobra.Command {
	var asJSON bool
	var limit int
	cmd := &cobra.Command{
		Use:   "audit [PROFILE]",
		Short: "Show the audit log: obtain, refresh, revoke, import and login events (never secrets)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := a.load()
			if err != nil {
				return err
			}
			profile := ""
			if len(args) == 1 {
				profile = args[0]
			}
			events, err := b.Events(cmd.Context(), profile, limit)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a, events)
			}
			w := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "TIME\tPROFILE\tACTION\tGRANT\tOUTCOME\tERROR CLASS\tPID\tCLIENT")
			for _, e := range events {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", e.Time.UTC().Format(time.RFC3339), e.Profile, e.Action,
					dash(e.Grant), e.Outcome, dash(e.ErrorClass), e.PID, dash(e.Client))
			}
			return w.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON (with the error messages)")
	cmd.Flags().IntVar(&limit, "limit", 100, "at most this many events, newest first")
	return cmd
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
