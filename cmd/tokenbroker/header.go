package main

import (
	"fmt"
	"sort"

	"github.com/spf13/cobra"
)

func (a *app) headerCommand() *cobra.Command {
	return &cobra.Command{
		Use:         "header PROFILE",
		Annotations: map[string]string{quickRun: ""},
		Short:       "Print the header line(s) to send, tenant headers included",
		Args:        cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := a.load()
			if err != nil {
				return err
			}
			a.armUnlessStored(cmd.Context(), b, args[0], 0)
			h, err := b.Headers(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			names := make([]string, 0, len(h))
			for k := range h {
				names = append(names, k)
			}
			sort.Strings(names)
			for _, k := range names {
				fmt.Fprintf(a.stdout, "%s: %s\n", k, h[k][0]) // the name as the vendor spells it
			}
			return nil
		},
	}
}
