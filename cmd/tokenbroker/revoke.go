package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func (a *app) revokeCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "revoke PROFILE",
		Short: "Revoke the token at the vendor where it can, then forget it locally",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := a.load()
			if err != nil {
				return err
			}
			atVendor, err := b.Revoke(cmd.Context(), args[0], a.prompter())
			if err != nil {
				return err
			}
			if atVendor {
				fmt.Fprintf(a.stdout, "%s: revoked at the vendor and forgotten locally\n", args[0])
			} else {
				fmt.Fprintf(a.stdout, "%s: forgotten locally (not revoked at the vendor)\n", args[0])
			}
			return nil
		},
	}
}
