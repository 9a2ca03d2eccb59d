package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/tokenbroker/tokenbroker"
	"github.com/tokenbroker/tokenbroker/failure"
)

// maxImport bounds what `import` reads: a token file is a few hundred bytes.
const maxImport = 1 << 20

func (a *app) importCommand() *cobra.Command {
	var force, seed bool
	cmd := &cobra.Command{
		Use:   "import PROFILE FILE|-  |  import PROFILE --refresh-token",
		Short: "Store a token JSON downloaded from the vendor (Aruba Central offline token), or take in the configured refresh_token once",
		Args: func(cmd *cobra.Command, args []string) error {
			if seed {
				return cobra.ExactArgs(1)(cmd, args)
			}
			return cobra.ExactArgs(2)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := a.load()
			if err != nil {
				return err
			}
			if seed {
				t, err := b.TakeSeed(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "%s: refresh_token taken in, %s\n", args[0], expiresIn(t))
				return nil
			}
			var r io.Reader = a.stdin
			if args[1] != "-" {
				f, err := os.Open(args[1])
				if err != nil {
					return failure.New(failure.Config, "cannot read %s: %v", args[1], err)
				}
				defer f.Close()
				r = f
			}
			data, err := io.ReadAll(io.LimitReader(r, maxImport))
			if err != nil {
				return failure.New(failure.Config, "cannot read %s: %v", args[1], err)
			}
			t, err := b.Import(cmd.Context(), args[0], data, tokenbroker.ImportOptions{Force: force})
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "%s: token imported, %s\n", args[0], expiresIn(t))
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "take in a file that plainly is another vendor's token")
	cmd.Flags().BoolVar(&seed, "refresh-token", false, "take in the profile's configured refresh_token (once: it is single-use)")
	return cmd
}
