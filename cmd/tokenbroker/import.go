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
	var force bool
	cmd := &cobra.Command{
		Use:   "import PROFILE FILE|-",
		Short: "Store a token JSON downloaded from the vendor (Aruba Central offline token)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := a.load()
			if err != nil {
				return err
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
	return cmd
}
