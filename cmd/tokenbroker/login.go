package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/tokenbroker/tokenbroker/provider"
)

func (a *app) loginCommand() *cobra.Command {
	var noBrowser bool
	cmd := &cobra.Command{
		Use:   "login PROFILE",
		Short: "Run an interactive grant (Aruba Central login, CSRF and auth code) and store the token",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := a.load()
			if err != nil {
				return err
			}
			t, err := b.Login(cmd.Context(), args[0], a.prompter())
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "%s: logged in, token stored, %s\n", args[0], expiresIn(t))
			return nil
		},
	}
	cmd.Flags().BoolVar(&noBrowser, "no-browser", false, "print the authorization URL instead of opening a browser")
	return cmd
}

// terminalPrompter asks on the terminal: the label on stderr, the answer
// from stdin, without echo for secrets.
type terminalPrompter struct {
	in  *os.File
	out io.Writer
	rd  *bufio.Reader
}

// prompter returns a Prompter when stdin is a terminal, else nil: scripts
// must configure secrets rather than hang on a prompt.
func (a *app) prompter() provider.Prompter {
	f, ok := a.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return &terminalPrompter{in: f, out: a.stderr, rd: bufio.NewReader(f)}
}

func (p *terminalPrompter) Prompt(label string, secret bool) (string, error) {
	fmt.Fprintf(p.out, "%s: ", label)
	if secret {
		b, err := term.ReadPassword(int(p.in.Fd()))
		fmt.Fprintln(p.out)
		return string(b), err
	}
	line, err := p.rd.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", err
	}
	return strings.TrimSpace(line), nil
}
