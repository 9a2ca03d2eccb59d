package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tokenbroker/tokenbroker"
	"github.com/tokenbroker/tokenbroker/failure"
	"github.com/tokenbroker/tokenbroker/store"
)

func (a *app) migrateCommand() *cobra.Command {
	var from, to string
	cmd := &cobra.Command{
		Use:   "migrate --from STATE --to STATE",
		Short: "Move every token and the audit log between SQLite and PostgreSQL states",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if from == "" || to == "" {
				return usageError{errors.New("migrate needs --from and --to (sqlite:PATH or postgres://...)")}
			}
			cfg, err := a.loadConfig()
			if err != nil {
				return err
			}
			if from == to {
				return failure.New(failure.Config, "--from and --to are the same state")
			}
			open := func(loc string) (store.Store, error) {
				c := *cfg
				c.State = loc
				return tokenbroker.OpenStore(&c)
			}
			src, err := open(from)
			if err != nil {
				return err
			}
			defer src.Close()
			dst, err := open(to)
			if err != nil {
				return err
			}
			defer dst.Close()
			res, err := store.Copy(cmd.Context(), src, dst)
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "moved %d tokens and %d audit events; each token was read back from the target\n", res.Tokens, res.Events)
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "the state to copy from")
	cmd.Flags().StringVar(&to, "to", "", "the state to copy to (must not hold the same profiles)")
	return cmd
}
