package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/tokenbroker/tokenbroker/demo"
	"github.com/tokenbroker/tokenbroker/failure"
)

func (a *app) demoCommand() *cobra.Command {
	return &cobra.Command{
		Use:         "demo",
		Annotations: map[string]string{allCores: ""},
		Short:       "Run every vendor flow end to end against the emulators and print a table",
		Args:        cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rows, err := demo.Run(cmd.Context())
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "PROFILE\tVENDOR\tSTEP\tRESULT\tDETAIL")
			failed := 0
			for _, r := range rows {
				result := "ok"
				if !r.OK {
					result, failed = "FAIL", failed+1
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", r.Profile, r.Vendor, r.Step, result, r.Detail)
			}
			w.Flush()
			fmt.Fprintf(a.stdout, "\n%d passed, %d failed\n", len(rows)-failed, failed)
			if failed > 0 {
				return failure.New(failure.Other, "%d of %d demo steps failed", failed, len(rows))
			}
			return nil
		},
	}
}
