package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
)

func (a *app) clientsCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "clients",
		Short: "List serve's clients and what each may do (never their keys)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := a.loadConfig()
			if err != nil {
				return err
			}
			type row struct {
				Name     string   `json:"name"`
				May      string   `json:"may"`
				Profiles []string `json:"profiles"`
				Methods  []string `json:"methods,omitempty"`
				Paths    []string `json:"paths,omitempty"`
				Keys     int      `json:"keys"`
			}
			var rows []row
			for _, name := range cfg.ClientNames() {
				c := cfg.Clients[name]
				keys := len(c.Keys)
				if c.Key.IsSet() {
					keys++
				}
				rows = append(rows, row{name, c.May, c.Profiles, c.Methods, c.Paths, keys})
			}
			if asJSON {
				return writeJSON(a, rows)
			}
			if len(rows) == 0 {
				a.warn("no clients: every caller of serve uses the broker key (`tokenbroker clients add NAME` makes one)")
				return nil
			}
			tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "CLIENT\tMAY\tPROFILES\tMETHODS\tPATHS\tKEYS")
			for _, r := range rows {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\n", r.Name, r.May, strings.Join(r.Profiles, ","), orAll(r.Methods), orAll(r.Paths), r.Keys)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(&cobra.Command{
		Use:   "add NAME",
		Short: "Make a new random client key: the key once on stdout, the YAML to paste on stderr",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b := make([]byte, 32)
			rand.Read(b)
			key := "tbc_" + base64.RawURLEncoding.EncodeToString(b)
			h := sha256.Sum256([]byte(key))
			fmt.Fprintln(a.stdout, key)
			fmt.Fprintf(a.stderr, `# the key above is shown once; give it to the client. Paste under clients: (only its hash is kept):
clients:
  %s:
    key: sha256:%s
    profiles: [PROFILE]          # patterns; a profile covers its tenants, msp/acme names one
    may: proxy                   # proxy (never reads a token) or token
`, args[0], hex.EncodeToString(h[:]))
			return nil
		},
	})
	return cmd
}

func orAll(v []string) string {
	if len(v) == 0 {
		return "all"
	}
	return strings.Join(v, ",")
}
