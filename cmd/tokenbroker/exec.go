package main

import (
	"errors"
	"os"
	"os/exec"
	"time"

	"github.com/spf13/cobra"

	"github.com/tokenbroker/tokenbroker"
	"github.com/tokenbroker/tokenbroker/failure"
	"github.com/tokenbroker/tokenbroker/sink"
)

func (a *app) execCommand() *cobra.Command {
	var minTTL time.Duration
	var serve bool
	cmd := &cobra.Command{
		Use:   "exec [--serve] PROFILE -- CMD [ARGS...]",
		Short: "Run CMD with TOKENBROKER_TOKEN, TOKENBROKER_BASE_URL and TOKENBROKER_HEADERS set",
		Long: `Run CMD with the profile's token in its environment. Without --serve, tokenbroker
replaces itself with CMD: the token lives only as long as the vendor allows (two hours
at Aruba), so a long-running CMD should use --serve. With --serve, CMD runs as a child
beside a proxy on a random loopback port with a random key, as long as CMD lives:
$TOKENBROKER_PROXY_URL/PATH reaches the vendor's PATH with a live token, sent with
Authorization: Bearer $TOKENBROKER_PROXY_KEY. Signals go to CMD; its exit code is ours.`,
		Args: cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.ArgsLenAtDash() != 1 {
				return usageError{errors.New("usage: tokenbroker exec PROFILE -- CMD [ARGS...]")}
			}
			b, err := a.load()
			if err != nil {
				return err
			}
			name := args[0]
			h, err := b.Handout(cmd.Context(), name, tokenbroker.TokenOptions{MinTTL: minTTL})
			if err != nil {
				return err
			}
			prof, tenant, _ := b.Tenant(cmd.Context(), name) // Handout resolved it
			p, _ := b.Provider(prof.Name)
			t := &sink.Token{Profile: name, AccessToken: h.AccessToken, ExpiresAt: h.ExpiresAt, Headers: h.Headers, BaseURL: p.Describe().APIBase}
			if tenant != nil {
				t.Tenant = tenant.ID
			}
			env := append(os.Environ(), sink.Env(t)...)
			if serve {
				a.useAllCores()
				return execServe(b, prof.Name, tenant, args[1:], env)
			}
			path, err := exec.LookPath(args[1])
			if err != nil {
				return &failure.Error{Kind: failure.Config, Msg: "cannot run " + args[1], Err: err}
			}
			b.Close() // nothing of ours stays open in the child
			// Replace this process, so signals and the exit code are the child's own.
			return replaceWith(path, args[1:], env)
		},
	}
	cmd.Flags().DurationVar(&minTTL, "min-ttl", 10*time.Minute, "renew first when less than this is left, so the command starts with a fresh token")
	cmd.Flags().BoolVar(&serve, "serve", false, "run CMD as a child with a local proxy that keeps its token alive (TOKENBROKER_PROXY_URL, TOKENBROKER_PROXY_KEY)")
	return cmd
}
