package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/tokenbroker/tokenbroker"
)

func (a *app) tokenCommand() *cobra.Command {
	var asJSON, idToken bool
	var minTTL time.Duration
	cmd := &cobra.Command{
		Use:         "token PROFILE",
		Annotations: map[string]string{quickRun: ""},
		Short:       "Print a valid access token, obtained or refreshed as needed",
		Args:        cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := a.load()
			if err != nil {
				return err
			}
			a.armUnlessStored(cmd.Context(), b, args[0], minTTL)
			h, err := b.Handout(cmd.Context(), args[0], tokenbroker.TokenOptions{MinTTL: minTTL, IDToken: idToken})
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSON(a, h)
			}
			if idToken {
				_, err = fmt.Fprintln(a.stdout, h.IDToken)
				return err
			}
			_, err = fmt.Fprintln(a.stdout, h.AccessToken)
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON with access_token, token_type, expires_at and headers")
	cmd.Flags().DurationVar(&minTTL, "min-ttl", 0, "refresh first when less than this is left (e.g. 10m)")
	cmd.Flags().BoolVar(&idToken, "id-token", false, "print the OpenID id_token the server sent with the token (with --json: add it)")
	return cmd
}

func writeJSON(a *app, v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
