// Command tokenbroker obtains, stores, refreshes and hands out API access
// tokens. Only results go to stdout, so `| jq` works; diagnostics go to stderr.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tokenbroker/tokenbroker/failure"
	"github.com/tokenbroker/tokenbroker/internal/onecore"
)

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	a := &app{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, coresCut: onecore.Cut, interrupts: &interrupts{cancel: cancel}}
	code := a.run(ctx, os.Args[1:])
	a.interrupts.disarm()
	os.Exit(code)
}

// run executes one command line and returns the exit code DESIGN.md fixes.
// In-process callers (the tests) get no interrupt handler.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr}
	return a.run(ctx, args)
}

func (a *app) run(ctx context.Context, args []string) int {
	stdin, stderr := a.stdin, a.stderr
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(a.stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	a.closeBroker(ctx)
	if err == nil {
		return 0
	}
	var code exitCode
	if errors.As(err, &code) {
		return int(code) // exec --serve: the child's own, said by the child
	}
	var ue usageError
	if errors.As(err, &ue) || isCobraUsage(err) {
		fmt.Fprintf(stderr, "tokenbroker: %v\nRun 'tokenbroker --help' for usage.\n", err)
		return 2
	}
	fmt.Fprintf(stderr, "tokenbroker: %v\n", err)
	return failure.KindOf(err).ExitCode()
}

// usageError marks bad command-line use (exit 2).
type usageError struct{ error }

// isCobraUsage recognises cobra's own argument and flag errors.
func isCobraUsage(err error) bool {
	msg := err.Error()
	for _, s := range []string{"unknown command", "unknown flag", "unknown shorthand", "accepts ", "requires at least", "flag needs an argument", "invalid argument"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:           "tokenbroker",
		Short:         "Obtain, store, refresh and hand out API access tokens",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRun: func(cmd *cobra.Command, _ []string) {
			a.prepare(cmd)
		},
	}
	root.PersistentFlags().StringVar(&a.configPath, "config", "", "config file (default $TOKENBROKER_CONFIG, else $XDG_CONFIG_HOME/tokenbroker/config.yaml)")
	root.PersistentFlags().StringVar(&a.statePath, "state", "", "state location, overriding the config's `state` (sqlite:PATH)")
	root.PersistentFlags().StringVar(&a.logLevel, "log-level", "info", "debug, info, warn or error (serve)")
	root.AddCommand(
		a.tokenCommand(), a.headerCommand(), a.tenantsCommand(), a.clientsCommand(), a.inspectCommand(), a.statusCommand(), a.auditCommand(), a.refreshCommand(),
		a.loginCommand(), a.importCommand(), a.revokeCommand(),
		a.serveCommand(), a.curlCommand(), a.execCommand(), a.migrateCommand(), a.webhookCommand(),
		a.rekeyCommand(), a.emulateCommand(), a.demoCommand(), a.versionCommand(),
	)
	return root
}
