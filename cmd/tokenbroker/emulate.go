package main

import (
	"fmt"
	"net"
	"sort"

	"github.com/spf13/cobra"

	"github.com/tokenbroker/tokenbroker/emulator"
)

func (a *app) emulateCommand() *cobra.Command {
	var listen string
	cmd := &cobra.Command{
		Use:         "emulate",
		Annotations: map[string]string{allCores: ""},
		Short:       "Serve the vendor emulators on loopback; print their URLs (stderr) and a ready config (stdout)",
		Args:        cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, _, err := net.SplitHostPort(listen); err != nil {
				return usageError{fmt.Errorf("--listen %q: want HOST:PORT", listen)}
			}
			set, err := emulator.Start(listen, nil)
			if err != nil {
				return err
			}
			defer set.Close()
			names := make([]string, 0, len(set.URLs))
			for n := range set.URLs {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				fmt.Fprintf(a.stderr, "%-16s %s\n", n, set.URLs[n])
			}
			fmt.Fprint(a.stdout, set.ConfigYAML())
			fmt.Fprintln(a.stderr, "emulators running; Ctrl-C stops them")
			<-cmd.Context().Done()
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:9001", "host and first port; the emulators take consecutive ports from it (0: random ports)")
	return cmd
}
