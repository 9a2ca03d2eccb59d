package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tokenbroker/tokenbroker"
)

func (a *app) refreshCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "refresh PROFILE",
		Short: "Renew the token now, even if it is still fresh",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := a.load()
			if err != nil {
				return err
			}
			t, err := b.Token(cmd.Context(), args[0], tokenbroker.TokenOptions{Force: true})
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "%s: renewed by %s grant, %s\n", args[0], t.Grant, expiresIn(t))
			return nil
		},
	}
}
