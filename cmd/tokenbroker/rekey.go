package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/tokenbroker/tokenbroker"
	"github.com/tokenbroker/tokenbroker/config"
	"github.com/tokenbroker/tokenbroker/failure"
	"github.com/tokenbroker/tokenbroker/server"
	"github.com/tokenbroker/tokenbroker/store"
	"github.com/tokenbroker/tokenbroker/store/seal"
)

// retireAfter is how long after a rotation `rekey --retire` waits: every
// running serve reads the state's keys within one server.KeysEvery.
const retireAfter = 3 * server.KeysEvery

func (a *app) rekeyCommand() *cobra.Command {
	var newKey string
	var retire, status, asJSON bool
	cmd := &cobra.Command{
		Use:   "rekey --new-key REF | --retire | --status",
		Short: "Rotate the master key: re-seal every stored secret under a new key, then retire the old one",
		Long: `rekey --new-key REF re-seals every stored secret under the key REF names
(env:NAME, file:PATH or exec:COMMAND, base64 of 32 bytes) in one transaction.
Processes still holding the old key keep serving: they learn the new key from
the state. When the master key is the key file beside the state, the file
gets the new key (made at random when --new-key is not given).

rekey --retire, run with the new key configured, makes the old key open
nothing any more; rekey --status lists the keys and what each seals.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			n := 0
			for _, b := range []bool{newKey != "", retire, status} {
				if b {
					n++
				}
			}
			if n > 1 {
				return usageError{errors.New("rekey takes one of --new-key, --retire and --status")}
			}
			cfg, err := a.loadConfig()
			if err != nil {
				return err
			}
			keyDir, err := tokenbroker.MasterKeyDir(cfg)
			if err != nil {
				return err
			}
			if n == 0 && keyDir == "" {
				return usageError{errors.New("rekey needs --new-key REF (the master key is given by `key:` or $TOKENBROKER_KEY), --retire or --status")}
			}
			st, err := tokenbroker.OpenStore(cfg)
			if err != nil {
				return err
			}
			defer st.Close()
			rk, ok := st.(store.Rekeyer)
			if !ok {
				return failure.New(failure.Config, "state %s: this store cannot rotate its master key", cfg.State)
			}
			ctx := cmd.Context()
			switch {
			case status:
				return a.keyStatus(ctx, rk, asJSON)
			case retire:
				return a.retireKeys(ctx, rk)
			}
			return a.rekey(ctx, rk, newKey, keyDir)
		},
	}
	cmd.Flags().StringVar(&newKey, "new-key", "", "the new master key: env:NAME, file:PATH or exec:COMMAND")
	cmd.Flags().BoolVar(&retire, "retire", false, "retire every key but the current one (run with the new key configured)")
	cmd.Flags().BoolVar(&status, "status", false, "list the state's keys and how many records each seals")
	cmd.Flags().BoolVar(&asJSON, "json", false, "with --status: print JSON")
	return cmd
}

func (a *app) rekey(ctx context.Context, rk store.Rekeyer, ref, keyDir string) error {
	var k []byte
	var err error
	if ref == "" {
		k, err = seal.NewKey()
	} else {
		k, err = resolveKey(ref)
	}
	if err != nil {
		return err
	}
	rot, err := rk.Rekey(ctx, k)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "re-sealed %d records under key %s (was %s); key %s still opens them until it is retired\n",
		rot.Resealed, rot.Primary, rot.Previous, rot.Previous)
	if keyDir != "" {
		if err := seal.ReplaceKeyFile(keyDir, k); err != nil {
			// The state keeps the new key sealed under the old one, so
			// the old key file still opens everything meanwhile.
			return &failure.Error{Kind: failure.Other, Err: err, Msg: "the state was rekeyed, but the key file in " + keyDir + " could not be replaced",
				Hint: "it still holds key " + rot.Previous + ", which opens the state until it is retired: fix the directory, then run `tokenbroker rekey` again (do not retire before)"}
		}
		fmt.Fprintf(a.stdout, "the key file in %s holds the new key\n", keyDir)
	} else {
		fmt.Fprintf(a.stdout, "next: set `key:` (or $TOKENBROKER_KEY) to %s for every replica; running replicas follow at once, restarted ones need it\n", ref)
	}
	fmt.Fprintf(a.stdout, "then, from %s on: tokenbroker rekey --retire\n", time.Now().Add(retireAfter).Format(time.TimeOnly))
	return nil
}

func resolveKey(ref string) ([]byte, error) {
	if config.Secret(ref).Inline() {
		return nil, usageError{errors.New("--new-key takes a reference (env:NAME, file:PATH or exec:COMMAND), never the key itself: a command line is seen by every user of the machine and kept in shell histories")}
	}
	text, err := config.Secret(ref).Resolve()
	if err != nil {
		return nil, &failure.Error{Kind: failure.Config, Msg: "--new-key", Err: err}
	}
	k, err := seal.DecodeKey(text, "--new-key "+config.Secret(ref).String())
	if err != nil {
		return nil, &failure.Error{Kind: failure.Config, Msg: err.Error()}
	}
	return k, nil
}

func (a *app) retireKeys(ctx context.Context, rk store.Rekeyer) error {
	rot, err := rk.RetireKeys(ctx, retireAfter)
	if err != nil {
		return err
	}
	fmt.Fprintf(a.stdout, "retired %v; %d records re-sealed under key %s, which alone opens the state now\n", rot.Retired, rot.Resealed, rot.Primary)
	return nil
}

func (a *app) keyStatus(ctx context.Context, rk store.Rekeyer, asJSON bool) error {
	ks, err := rk.Keys(ctx)
	if err != nil {
		return err
	}
	type row struct {
		ID      string    `json:"id"`
		State   string    `json:"state"`
		Since   time.Time `json:"since,omitzero"`
		Records int       `json:"records"`
	}
	var rows []row
	for _, e := range ks.Entries {
		rows = append(rows, row{e.ID, e.State, e.At.UTC(), ks.Sealing[e.ID]})
	}
	if len(rows) == 0 { // never rotated: the one key in use
		for id, n := range ks.Sealing {
			if id != "?" {
				rows = append(rows, row{ID: id, State: store.KeyPrimary, Records: n})
			}
		}
	}
	if n := ks.Sealing["?"]; n > 0 {
		rows = append(rows, row{ID: "?", State: "unreadable", Records: n})
	}
	if asJSON {
		return json.NewEncoder(a.stdout).Encode(rows)
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "KEY\tSTATE\tSINCE\tRECORDS")
	for _, r := range rows {
		since := "-"
		if !r.Since.IsZero() {
			since = r.Since.Format(time.DateTime)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\n", r.ID, r.State, since, r.Records)
	}
	return tw.Flush()
}
